"""Serve a model: the Flask prediction API (gunicorn), the Gradio demo, or the in-browser page.

The Gradio demo's options, start-up and ``python gradio_app.py`` entry point are here too
(:func:`add_gradio_arguments`, :func:`launch_gradio`, :func:`gradio_main`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


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
    add_gradio_arguments(which.add_parser("gradio", help="the Gradio web demo"))
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
        launch_gradio(args)
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


def add_gradio_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python gradio_app.py`` and ``cifar serve gradio``."""
    parser.add_argument(
        "--model", help="model file (default: $CIFAR_MODEL, else the newest run's model)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default local)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--share", action="store_true", help="also open a public gradio.live link (off)"
    )
    parser.add_argument(
        "--data-dir", help="CIFAR-10 folder for the example images (default: $CIFAR10_DIR)"
    )
    parser.add_argument(
        "--download-examples",
        action="store_true",
        help="download CIFAR-10 with Keras for the examples when no local copy is found",
    )


def launch_gradio(args: argparse.Namespace) -> None:
    """Load the model (refusing to start without one), write the examples, serve the demo."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from cifar.errors import CifarError
    from cifar.inference.predictor import Predictor
    from cifar.serving.demo import TOP_K, build_demo
    from cifar.serving.examples import write_examples

    predictor = Predictor.load(args.model, top_k=TOP_K)
    try:
        examples = write_examples(
            data_dir=args.data_dir, download=args.download_examples, run_dir=predictor.run_dir
        )
    except CifarError as exc:  # the examples are a nicety: serve without them
        print(f"no example images: {exc}")
        examples = []
    if not examples:
        print("no example images (for a CIFAR-10 model set --data-dir or $CIFAR10_DIR)")
    demo = build_demo(predictor, examples)
    print(f"serving {predictor.path} ({predictor.kind}) on http://{args.host}:{args.port}")
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            allowed_paths=[str(Path(p).parent) for p in examples[:1]],
            ssr_mode=False,
        )
    except OSError as exc:  # e.g. the port is taken
        raise CifarError(f"cannot serve on {args.host}:{args.port}: {exc}") from exc


def gradio_main(argv: list[str] | None = None) -> int:
    """Entry point of ``python gradio_app.py``: user errors print one line and exit 2."""
    from cifar.errors import CifarError

    parser = argparse.ArgumentParser(description="Gradio demo of an image classifier.")
    add_gradio_arguments(parser)
    args = parser.parse_args(argv)
    try:
        launch_gradio(args)
    except CifarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
