"""Serve a classifier page written by ``cifar export --web DIR`` on localhost (static files only).

The page runs the model in the browser; this server only hands out its files, with the MIME
types browsers insist on for ES modules and WebAssembly (``application/wasm`` is required for
streaming compilation). Inference never happens here.
"""

from __future__ import annotations

import functools
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cifar.errors import ConfigError

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".tflite": "application/octet-stream",
}


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("CIFAR_WEB_LOG"):
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """Say nothing when the browser went away mid-file; report anything else as before.

        Browsers cancel downloads they no longer need (a reload, a page closed while the
        WebAssembly runtime loads), and ``socketserver`` would print a traceback for each.
        """
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000):
    """An HTTP server for ``directory`` (a page folder with ``index.html``); not started yet.

    Raises:
        ConfigError: the folder is not a page written by ``cifar export --web``.
    """
    folder = Path(directory)
    if not (folder / "index.html").is_file() or not (folder / "app-config.json").is_file():
        raise ConfigError(
            f"{folder} is not a classifier page (no index.html / app-config.json); write one "
            "with `cifar export RUN_DIR --web DIR` or `cifar export MODEL.tflite --web DIR`"
        )
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        return _Server((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve_web(directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``directory`` until interrupted."""
    server = make_server(directory, host, port)
    print(f"serving {directory} at http://{host}:{server.server_address[1]}/ (Ctrl+C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
