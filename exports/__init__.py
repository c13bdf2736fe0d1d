"""Export trained models to SavedModel, TFLite and ONNX, verified in their real runtimes.

``Exporter`` is imported lazily so ``python -m exports.tflite_runner`` (the on-device runner)
never pulls in TensorFlow.
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
