"""LiteRT (TFLite) conversion from the exported SavedModel: float32, float16, dynamic, int8.

Every variant is converted from the exported SavedModel's ``serving_default`` signature (the
route LiteRT recommends), so all files come from the one graph that was verified as the
SavedModel. (``TFLiteConverter.from_keras_model``, reported to fail on Keras 3 models, converts
them with TF 2.21 and Keras 3.15, but would trace the model a second time.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from exports.to_savedmodel import SERVING_SIGNATURE

MODES = ("float32", "float16", "dynamic", "int8")


def representative_batches(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """One float32 image at a time, as the converter's calibration expects."""
    for image in images:
        yield [image[None].astype(np.float32)]


def write_tflite(
    saved_model_dir: Path, path: Path, mode: str, representative: np.ndarray | None = None
) -> dict:
    """Convert ``saved_model_dir`` to a ``.tflite`` file at ``path``.

    Args:
        saved_model_dir: a SavedModel written by :func:`exports.to_savedmodel.write_savedmodel`.
        path: where to write the flatbuffer.
        mode: ``float32``; ``float16`` weights; ``dynamic`` (int8 weights, float activations);
            ``int8`` full-integer with uint8 input and output (needs ``representative``).
        representative: uint8 N x S x S x 3 training images to calibrate activation ranges.

    Returns:
        the conversion settings recorded in ``metadata.json``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown TFLite mode {mode!r}; expected one of {', '.join(MODES)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[SERVING_SIGNATURE]
    )
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    settings: dict = {"mode": mode}
    if mode == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("full-integer quantisation needs representative training images")
        converter.representative_dataset = lambda: representative_batches(representative)
        # Builtin int8 kernels only: conversion fails loudly rather than falling back to float.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        settings["representative_images"] = int(len(representative))
    path.write_bytes(converter.convert())
    return settings
