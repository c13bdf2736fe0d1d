"""The export formats: file name, runtime, and the parity each must reach to be kept."""

from __future__ import annotations

from dataclasses import dataclass

from cifar.errors import CifarError, ConfigError, ModelError


@dataclass(frozen=True)
class ExportFormat:
    """One artefact kind.

    Args:
        name: what ``--formats`` takes.
        filename: file (or folder) written in the export directory.
        runtime: ``cifar.inference.runtimes`` kind that loads it.
        input_dtype: dtype of the image input (raw 0..255 RGB either way).
        min_agreement: top-1 agreement with the Keras model below which the export fails.
        max_abs_diff: largest allowed probability difference (None: not gated).
        description: one line for docs and ``--help``.
    """

    name: str
    filename: str
    runtime: str
    input_dtype: str
    min_agreement: float
    max_abs_diff: float | None
    description: str


# Gates catch broken conversions (wrong scaling or channel order, a lost op), not quality: float32
# formats must reproduce Keras; reduced-precision ones only have to stay clearly related to it,
# because a fragile model legitimately drifts under quantisation (the smoke MobileNetV2 keeps
# 71% top-1 agreement in int8, 83% in dynamic range). The release targets (float16 >= 99.5%,
# int8 within 1 accuracy point) are checked by benchmarks/bench_export.py.
FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in [
        ExportFormat(
            "savedmodel", "saved_model", "savedmodel", "float32 or uint8", 0.999, 1e-4,
            "TensorFlow SavedModel, signatures serving_default (float32) and serving_uint8",
        ),
        ExportFormat(
            "tflite", "model_float32.tflite", "tflite", "float32", 0.999, 1e-3,
            "LiteRT float32",
        ),
        ExportFormat(
            "tflite-fp16", "model_float16.tflite", "tflite", "float32", 0.95, None,
            "LiteRT with float16 weights (about half the size, float32 compute on CPU); biases "
            "and the first, most sensitive layers stay float32",
        ),
        ExportFormat(
            "tflite-dynamic", "model_dynamic.tflite", "tflite", "float32", 0.75, None,
            "LiteRT dynamic-range: int8 weights, float activations",
        ),
        ExportFormat(
            "tflite-int8", "model_int8.tflite", "tflite", "uint8", 0.60, None,
            "LiteRT int8, uint8 input and output (calibrated on training images); the few ops "
            "with the largest quantisation error (at most 3) run in float",
        ),
        ExportFormat(
            "onnx", "model.onnx", "onnx", "float32", 0.999, 1e-3,
            "ONNX (tf2onnx), dynamic batch dimension",
        ),
    ]
}  # fmt: skip
ALIASES = {
    "tflite-float32": "tflite",
    "tflite-f32": "tflite",
    "tflite-float16": "tflite-fp16",
    "tflite-f16": "tflite-fp16",
    "tflite-dynamic-range": "tflite-dynamic",
    "tflite-full-int8": "tflite-int8",
    "saved_model": "savedmodel",
}
TFLITE_MODES = {
    "tflite": "float32",
    "tflite-fp16": "float16",
    "tflite-dynamic": "dynamic",
    "tflite-int8": "int8",
}


def parse_formats(formats: str | list[str] | None) -> list[ExportFormat]:
    """``"savedmodel,tflite"`` or a list -> formats in canonical order (None/"all": every one)."""
    if formats is None:
        return list(FORMATS.values())
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names = {ALIASES.get(n.strip().lower(), n.strip().lower()) for n in items if n.strip()}
    if "all" in names:
        return list(FORMATS.values())
    unknown = sorted(names - FORMATS.keys())
    if unknown or not names:
        raise ConfigError(
            f"unknown export format(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(FORMATS)} or all"
        )
    # SavedModel first: the TFLite files are converted from it.
    return [f for f in FORMATS.values() if f.name in names]


class ConversionError(ModelError):
    """The format cannot express this model (e.g. an op the target has no kernel for)."""


def failure_line(exc: BaseException) -> str:
    """One readable line for a failure: our own errors as they are, others with their type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # The LiteRT converter prefixes each MLIR error with a long location; keep the message.
    errors = [line.split("error: ", 1)[1] for line in lines if "error: " in line]
    text = errors[0].rsplit(")): ", 1)[-1] if errors else (lines[0] if lines else repr(exc))
    if len(text) > 400:
        text = text[:400] + "..."
    if isinstance(exc, CifarError):
        return text
    return f"{type(exc).__name__}: {text}"
