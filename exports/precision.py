"""Which parts of a model keep float32 when the rest is quantised, chosen on training images.

Post-training quantisation of MobileNetV2 at 160x160 on upscaled 32x32 images loses more than
its ImageNet figures suggest: the first depthwise filters have weights up to 25 (56 after
BatchNorm folding) that sum to almost zero, so on smooth, upscaled images they compute small
differences of large numbers, and their folded biases cancel large means. Rounding those few
tensors moves the whole network. Two selective schemes keep exactly those parts precise:

- float16 (:func:`choose_float32_constants`): every bias and scalar, plus the weights of the
  first ``k`` layers in graph order, stay float32; ``k`` is the smallest that brings the drift
  from the float32 file (mean absolute probability difference on the representative training
  images) down to ``tolerance`` times the drift of the plain float16 file.
- int8 (:func:`choose_float_ops`): LiteRT's Quantization Debugger measures each quantised op's
  error on the representative images; ops whose RMSE exceeds ``threshold`` quantisation steps
  (the debugger guide's rule) run in float, at most ``max_ops`` of them, worst first.

Neither looks at the test set.
"""

from __future__ import annotations

import csv
import io
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from exports.tflite_graph import Float16Constant, float16_constants, restore_float32


def predict_bytes(model: bytes, images: np.ndarray) -> np.ndarray:
    """Probabilities of a ``.tflite`` model given as bytes (LiteRT, with its quantisation)."""
    from cifar.inference.tflite_runner import TFLiteClassifier

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.tflite"
        path.write_bytes(model)
        classifier = TFLiteClassifier(path)
        return classifier.predict(images.astype(classifier.input_dtype))


def _drift(model: bytes, images: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(np.abs(predict_bytes(model, images) - reference)))


def choose_float32_constants(
    float16_model: bytes,
    float32_model: bytes,
    images: np.ndarray,
    tolerance: float = 0.25,
) -> tuple[list[Float16Constant], dict]:
    """The float16 constants to restore to float32, and how the choice was made.

    Args:
        float16_model: the plain float16 conversion.
        float32_model: the float32 conversion of the same SavedModel (the reference).
        images: representative training images (uint8 N x S x S x 3).
        tolerance: accepted drift, as a fraction of the plain float16 file's drift.

    Returns:
        the constants to restore, and a summary for ``metadata.json``.
    """
    constants = float16_constants(float16_model, float32_model)
    reference = predict_bytes(float32_model, images)
    layers = sorted({c.position for c in constants if not c.vector})
    plain = _drift(float16_model, images, reference)
    target = max(tolerance * plain, 1e-6)  # a plain file that is already exact stays as it is

    def chosen(k: int) -> list[Float16Constant]:
        early = set(layers[:k])
        return [c for c in constants if c.vector or c.position in early]

    cache: dict[int, float] = {}

    def drift(k: int) -> float:
        if k not in cache:
            cache[k] = _drift(restore_float32(float16_model, float32_model, chosen(k)), images,
                              reference)  # fmt: skip
        return cache[k]

    # Smallest k with drift(k) <= target; drift(len(layers)) is 0, so the search ends.
    low, high = 0, len(layers)
    while low < high:
        mid = (low + high) // 2
        if drift(mid) <= target:
            high = mid
        else:
            low = mid + 1
    keep = chosen(low)
    summary = {
        "float32_constants": len(keep),
        "float32_elements": int(sum(c.size for c in keep)),
        "float16_elements": int(sum(c.size for c in constants if c not in keep)),
        "float32_layers": low,
        "drift_plain_float16": round(plain, 6),
        "drift_mixed": round(drift(low), 6),
        "tolerance": tolerance,
        "chosen_on": f"{len(images)} representative training images",
    }
    return keep, summary


def representative_batches(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """One float32 image at a time, as the converter's calibration expects."""
    for image in images:
        yield [image[None].astype(np.float32)]


def choose_float_ops(
    converter,
    images: np.ndarray,
    threshold: float = 0.7,
    max_ops: int = 3,
    debug_images: int = 64,
) -> tuple[bytes, list[str], list[dict]]:
    """Calibrate ``converter`` once and rank its quantised ops by error (Quantization Debugger).

    Args:
        converter: a ``TFLiteConverter`` set up for integer quantisation with a
            representative dataset.
        images: the representative training images (the debugger runs the first
            ``debug_images`` of them).
        threshold: RMSE, in quantisation steps of the op's output, above which an op runs in
            float.
        max_ops: at most this many ops run in float (0: none; full-integer).

    Returns:
        the calibrated model (for ``mlir_quantize``), the output tensor names of the chosen ops,
        and every op's statistics, worst first.
    """
    import tensorflow as tf

    def debug_data() -> Iterator[list[np.ndarray]]:
        return representative_batches(images[:debug_images])

    with warnings.catch_warnings():
        # The debugger runs TensorFlow's own (deprecated) interpreter; the files it produces are
        # checked in LiteRT by the caller.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=debug_data
        )
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    stats = []
    for row in csv.DictReader(dump):
        scale = float(row["scale"] or 0.0)
        rmse = float(np.sqrt(float(row["mean_squared_error"])))
        stats.append(
            {
                "op": row["tensor_name"],
                "type": row["op_name"],
                "rmse_steps": round(rmse / scale, 4) if scale else 0.0,
            }
        )
    stats.sort(key=lambda s: s["rmse_steps"], reverse=True)
    chosen = [s["op"] for s in stats if s["rmse_steps"] > threshold][:max_ops]
    return debugger.calibrated_model, chosen, stats


def quantize_calibrated(calibrated: bytes, float_ops: list[str], io_dtype) -> bytes:
    """The integer model from a calibrated one, ``float_ops`` left in float, I/O in ``io_dtype``."""
    from tensorflow.lite.python import convert

    return convert.mlir_quantize(
        calibrated,
        input_data_type=io_dtype,
        output_data_type=io_dtype,
        denylisted_nodes=list(float_ops) or None,
    )
