"""Quiet start-up: drop TensorFlow's and LiteRT's start-up lines, keep every other line.

A workaround of TensorFlow 2.21 / LiteRT defects: their C++ start-up logging ignores every
setting. ``TF_CPP_MIN_LOG_LEVEL`` (set here before TensorFlow loads, so later C++ INFO and
WARNING lines are dropped) does not reach lines written before ``absl::InitializeLog()`` runs,
nor the CUDA probe's E-level line, nor LiteRT's delegate line, which is printed with
``fprintf(stderr)``. On a CPU machine a plain ``import tensorflow`` plus the first device
query print, straight to file descriptor 2::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796462256.648464   11821 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796462256.648763   11821 cudart_stub.cc:31] Could not find cuda drivers on your
        machine, GPU will not be used.
    E0000 00:00:1796462343.764732   12671 cuda_platform.cc:52] failed call to cuInit: INTERNAL:
        CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)

(the first three twice: two shared libraries each start their own absl logging), and
creating a LiteRT interpreter prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``

So, around exactly those calls, :func:`filtered_stderr` points file descriptor 2 at a temporary
file and, afterwards, writes back every line that is not one of :data:`STARTUP_LINES`: real
warnings and errors, Python's included, still reach the terminal, in order. :func:`install`
does this for the first ``import tensorflow`` of the process (wherever it happens) and enumerates
the devices inside the same filter, so the CUDA probe runs there too. The ``cifar`` CLI and
``python gradio_app.py`` call it before anything imports TensorFlow; library users are left alone.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STARTUP_LINES", "filtered_stderr", "install", "is_startup_line"]

# C++ start-up lines of TensorFlow, XLA, CUDA and LiteRT that say nothing about the user's work.
STARTUP_LINES = re.compile(
    rb"^(?:"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:. ]+\s+\d+ \S+\.cc:\d+\] (?:"
    rb"oneDNN custom operations are on"
    rb"|Could not find cuda drivers"
    rb"|failed call to cuInit"
    rb"|Unable to register cu(?:DNN|FFT|BLAS) factory"
    rb"|computation placer already registered"
    rb"|This TensorFlow binary is optimized to use available CPU instructions"
    rb"|TF-TRT Warning: Could not find TensorRT"
    rb"|Created TensorFlow Lite XNNPACK delegate"
    rb")"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    rb"compiler flags\."
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb")"
)
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def is_startup_line(line: bytes) -> bool:
    """True for one of the known start-up lines (without or with its line end)."""
    return STARTUP_LINES.match(line.rstrip(b"\r\n")) is not None


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 inside the block; afterwards re-emit all but start-up lines.

    A file, not a pipe, holds the lines, so a chatty block can never fill a pipe and hang.
    Lines written during the block appear when it ends (in their order).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                capture.seek(0)
                kept = [ln for ln in capture.read().splitlines(True) if not is_startup_line(ln)]
                if kept:
                    os.write(2, b"".join(kept))
    finally:
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, run under :func:`filtered_stderr`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):  # noqa: ANN001, ANN201 - importlib's signature
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001
        with filtered_stderr():
            self._loader.exec_module(module)
            # The CUDA probe (cuInit) runs at the first device query: do it here, inside the
            # filter. Listing physical devices leaves them unconfigured, so strategies and
            # set_visible_devices still work afterwards.
            module.config.list_physical_devices()

    def __getattr__(self, name: str):  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with :class:`_QuietLoader`; then steps aside."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201
        if fullname != "tensorflow":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietFinder)]
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet TensorFlow's start-up for this process: set ``TF_CPP_MIN_LOG_LEVEL=2`` (unless
    set) and filter the first ``import tensorflow``. Does nothing once TensorFlow is loaded."""
    os.environ.setdefault(LOG_LEVEL_ENV, "2")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFinder())
