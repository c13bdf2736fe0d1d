"""Serve a model: the Flask prediction API (gunicorn), the Gradio demo, or the in-browser page."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar serve api|gradio|web``."""
    from cifar.serving import DEFAULT_MAX_BATCH, DEFAULT_MAX_BYTES

    which = parser.add_subparsers(dest="app", required=True, metavar="APP")
    api = which.add_parser("api", help="the JSON prediction API (POST /predict) under gunicorn")
    api.add_argument(
        "--model", help="model file (default: $CIFAR_MODEL, else the newest run's model)"
    )
    api.add_argument("--host", default="127.0.0.1", help="interface to bind (default local)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    api.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    api.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    api.add_argument(
        "--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="images per /predict/batch"
    )
    api.add_argument(
        "--max-mb",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**20,
        help="largest request body in MiB (default %(default)s)",
    )
    api.add_argument(
        "--server",
        choices=["gunicorn", "werkzeug"],
        default="gunicorn",
        help="werkzeug: Flask's development server (no fork; for debugging)",
    )
    from cifar.serving.demo import add_arguments as add_demo_arguments

    add_demo_arguments(which.add_parser("gradio", help="the Gradio web demo"))
    web = which.add_parser(
        "web", help="the in-browser classifier page written by `cifar export --web DIR`"
    )
    web.add_argument("directory", metavar="DIR", help="the page folder")
    web.add_argument("--host", default="127.0.0.1", help="interface to bind (default local)")
    web.add_argument("--port", type=int, default=8000, help="port (default 8000)")


def run(args: argparse.Namespace) -> int:
    """Start the chosen server; it runs until interrupted."""
    from cifar.errors import ConfigError

    if args.app == "web":
        from cifar.serving.web import serve_web

        serve_web(args.directory, host=args.host, port=args.port)
        return 0
    if args.app == "gradio":
        from cifar.serving.demo import launch

        launch(args)
        return 0
    from cifar.serving.api import serve

    if args.workers < 1 or args.threads < 1 or args.max_batch < 1 or args.max_mb <= 0:
        raise ConfigError("--workers, --threads, --max-batch and --max-mb must be positive")
    serve(
        args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        max_batch=args.max_batch,
        max_bytes=int(args.max_mb * 2**20),
        server=args.server,
    )
    return 0
