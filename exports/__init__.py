"""Export trained models to SavedModel, TFLite and ONNX, verified in their real runtimes.

``Exporter`` is imported lazily so the light modules (``exports.formats`` for the CLI's argument
parsing, ``exports.web``) never pull in TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exports.exporter import Exporter

__all__ = ["Exporter"]


def __getattr__(name: str) -> type:
    """Import ``Exporter`` (and with it TensorFlow) only when it is asked for."""
    if name == "Exporter":
        from exports.exporter import Exporter

        return Exporter
    raise AttributeError(f"module 'exports' has no attribute {name!r}")
