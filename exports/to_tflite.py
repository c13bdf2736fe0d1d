"""LiteRT (TFLite) conversion from the exported SavedModel: float32, float16, dynamic, int8.

Every variant is converted from the exported SavedModel's ``serving_default`` signature (the
route LiteRT recommends), so all files come from the one graph that was verified as the
SavedModel. (``TFLiteConverter.from_keras_model``, reported to fail on Keras 3 models, converts
them with TF 2.21 and Keras 3.15, but would trace the model a second time.)

With ``selective=True`` (the default) the float16 and int8 files keep the few numerically
sensitive parts of the model in float32 (:mod:`exports.precision`, chosen on the representative
training images); ``selective=False`` gives the plain converter output. Every file is written
in the compact serialisation of :func:`exports.tflite_graph.compact`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from exports.precision import (
    choose_float32_constants,
    choose_float_ops,
    quantize_calibrated,
    representative_batches,
)
from exports.tflite_graph import compact, restore_float32
from exports.to_savedmodel import SERVING_SIGNATURE

MODES = ("float32", "float16", "dynamic", "int8")


def _converter(saved_model_dir: Path) -> tf.lite.TFLiteConverter:
    return tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[SERVING_SIGNATURE]
    )


def write_tflite(
    saved_model_dir: Path,
    path: Path,
    mode: str,
    representative: np.ndarray | None = None,
    selective: bool = True,
) -> dict:
    """Convert ``saved_model_dir`` to a ``.tflite`` file at ``path``.

    Args:
        saved_model_dir: a SavedModel written by :func:`exports.to_savedmodel.write_savedmodel`.
        path: where to write the flatbuffer.
        mode: ``float32``; ``float16`` weights; ``dynamic`` (int8 weights, float activations);
            ``int8`` integer with uint8 input and output (needs ``representative``).
        representative: uint8 N x S x S x 3 training images: calibrate the int8 activation
            ranges and choose what stays float32 (float16 and int8).
        selective: keep the numerically sensitive parts in float32 (float16: biases and the
            first layers; int8: the ops with the largest quantisation error, at most 3).

    Returns:
        the conversion settings recorded in ``metadata.json``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown TFLite mode {mode!r}; expected one of {', '.join(MODES)}")
    settings: dict = {"mode": mode}
    if mode == "int8":
        model = _int8(saved_model_dir, representative, selective, settings)
    else:
        converter = _converter(saved_model_dir)
        if mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        model = converter.convert()
        if mode == "float16" and selective and representative is not None:
            float32 = _converter(saved_model_dir).convert()
            keep, summary = choose_float32_constants(model, float32, representative)
            model = restore_float32(model, float32, keep)
            settings["selective_float32"] = summary
    path.write_bytes(compact(model))
    return settings


def _int8(
    saved_model_dir: Path, representative: np.ndarray | None, selective: bool, settings: dict
) -> bytes:
    if representative is None or len(representative) == 0:
        raise ValueError("int8 quantisation needs representative training images")
    converter = _converter(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: representative_batches(representative)
    # Builtin int8 kernels only: conversion fails loudly rather than falling back to float.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    settings["representative_images"] = int(len(representative))
    if not selective:
        return converter.convert()
    calibrated, float_ops, stats = choose_float_ops(converter, representative)
    settings["float_ops"] = float_ops
    settings["largest_op_errors"] = stats[:5]
    return quantize_calibrated(calibrated, float_ops, tf.uint8)
