"""What image size a model, a model config or a run takes: the one rule, asked by everything.

The trainer, ``cifar data``, the runtimes (and so the predictor, ``cifar evaluate`` and the
serving stack), the export and the report all ask :func:`input_size`, so no other module states
a size of its own.

Example:
    >>> input_size(Path("runs/photos-20250101-120000"))   # decoded at 224: its files take 224
    224
    >>> input_size(ModelConfig("mobilenet_v2"))            # the registered default
    160
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["input_size"]


def input_size(of: Any) -> int | None:
    """The side of the square RGB images ``of`` takes, or None when ``of`` does not record it.

    Args:
        of: one of
            - a run folder, or a model file in one (``RUN/best_model.keras``), or a run's
              parsed ``metrics.json``: the size its
              model files take, i.e. the stored image size the run recorded
              (``model.source_size``: 32 for CIFAR-10, whose images the files resize inside;
              the decode size for a photo folder). None if there is no finished run.
            - a Keras model (anything with ``input_shape``): the side of its input.
            - a model config (``name`` and ``input_size``, e.g. ``cifar.config.ModelConfig``):
              the network's input side, the configured size else the model's registered default.
    """
    if isinstance(of, (str, os.PathLike)):
        return input_size(_run_metrics(Path(of)))
    if isinstance(of, Mapping):
        size = (of.get("model") or {}).get("source_size")
        return int(size) if isinstance(size, int) and size > 0 else None
    if hasattr(of, "input_shape"):
        return int(of.input_shape[1])
    if hasattr(of, "name") and hasattr(of, "input_size"):
        from cifar.models import default_input_size

        return int(of.input_size or default_input_size(of.name))
    raise TypeError(f"cannot tell the input size of a {type(of).__name__}")


def _run_metrics(path: Path) -> dict:
    """metrics.json of the run folder ``path``, or of the folder holding file ``path`` ({})."""
    from cifar.run_files import METRICS_FILE, read_optional_json

    # No finished run there, or a half-written file: no recorded size.
    return read_optional_json((path if path.is_dir() else path.parent) / METRICS_FILE) or {}
