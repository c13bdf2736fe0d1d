"""SavedModel export with named serving signatures (float32 and uint8 image inputs)."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

SERVING_SIGNATURE = "serving_default"
UINT8_SIGNATURE = "serving_uint8"
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


def write_savedmodel(inference_model: keras.Model, path: Path) -> dict:
    """Write ``inference_model`` (raw S x S x 3 RGB 0..255 in) as a SavedModel at ``path``.

    Two signatures share one graph: ``serving_default`` takes float32 pixels (what the TFLite
    converter and most servers use) and ``serving_uint8`` takes uint8 images as decoded. Both
    return ``{"probabilities": float32 N x C}``. Only the inference graph is traced
    (``training=False``), so no augmentation or dropout op can reach the file.

    Returns:
        the signature description recorded in ``metadata.json``.
    """
    size = int(inference_model.input_shape[1])
    shape = [None, size, size, 3]

    def serve(image):
        return {OUTPUT_NAME: inference_model(image, training=False)}

    def serve_uint8(image):
        return serve(tf.cast(image, tf.float32))

    archive = keras.export.ExportArchive()
    archive.track(inference_model)
    archive.add_endpoint(
        SERVING_SIGNATURE, serve, input_signature=[tf.TensorSpec(shape, tf.float32, INPUT_NAME)]
    )
    archive.add_endpoint(
        UINT8_SIGNATURE, serve_uint8, input_signature=[tf.TensorSpec(shape, tf.uint8, INPUT_NAME)]
    )
    archive.write_out(str(path), verbose=False)
    return {
        "signatures": {SERVING_SIGNATURE: "float32", UINT8_SIGNATURE: "uint8"},
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
    }
