"""Selective precision for float16 and int8 files, and the compact TFLite serialisation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_weights

from exports.precision import (
    choose_float32_constants,
    choose_float_ops,
    predict_bytes,
    quantize_calibrated,
)
from exports.tflite_graph import compact, float16_constants, restore_float32


@pytest.fixture(scope="module")
def cnn_files(trained_cnn, tmp_path_factory):
    """The trained CNN's SavedModel and its plain float32, float16 and int8 conversions."""

    from cifar.inference.keras_model import build_inference_model
    from exports.to_savedmodel import write_savedmodel
    from exports.to_tflite import write_tflite

    model, data = trained_cnn
    root = tmp_path_factory.mktemp("precision")
    write_savedmodel(build_inference_model(model, 32), root / "sm")
    files = {"sm": root / "sm", "data": data, **_plain_float_files(root / "sm")}
    write_tflite(root / "sm", root / "int8.tflite", "int8", data.x_train[:64], selective=False)
    files["int8"] = (root / "int8.tflite").read_bytes()
    return files


def _plain_float_files(saved_model) -> dict[str, bytes]:
    """The converter's own float32 and float16 files of ``saved_model`` (nothing kept float32)."""
    import tensorflow as tf

    files = {}
    for mode in ("float32", "float16"):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        if mode == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        files[mode] = converter.convert()
    return files


def _int8_converter(saved_model, images):
    import tensorflow as tf

    from exports.precision import representative_batches

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: representative_batches(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter


def _op_types(model: bytes) -> list[str]:
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    return [
        flatbuffer_utils.opcode_to_name(obj, op.opcodeIndex) for op in obj.subgraphs[0].operators
    ]


def test_compact_shares_repeated_vectors_and_computes_the_same(cnn_files):
    images = cnn_files["data"].x_test[:32]
    plain_int8 = cnn_files["int8"]
    # write_tflite stores files compacted already; compacting again changes nothing.
    assert len(compact(plain_int8)) == len(plain_int8)
    from tensorflow.lite.tools import flatbuffer_utils

    loose = flatbuffer_utils.convert_object_to_bytearray(
        flatbuffer_utils.convert_bytearray_to_object(bytearray(plain_int8))
    )
    assert len(plain_int8) < len(loose)  # per-channel zero points are stored once
    np.testing.assert_array_equal(predict_bytes(plain_int8, images), predict_bytes(loose, images))


def test_restoring_float16_constants_interpolates_between_the_two_files(cnn_files):
    f16, f32 = cnn_files["float16"], cnn_files["float32"]
    images = cnn_files["data"].x_test[:32]
    constants = float16_constants(f16, f32)
    assert any(c.vector for c in constants) and any(not c.vector for c in constants)
    assert [c.position for c in constants] == sorted(c.position for c in constants)
    everything = restore_float32(f16, f32, constants)
    assert "DEQUANTIZE" not in _op_types(everything) and "DEQUANTIZE" in _op_types(f16)
    np.testing.assert_allclose(
        predict_bytes(everything, images), predict_bytes(f32, images), atol=1e-7
    )
    np.testing.assert_allclose(
        predict_bytes(restore_float32(f16, f32, []), images), predict_bytes(f16, images), atol=1e-7
    )
    # Only the restored constants grow: the rest of the file stays float16.
    assert len(f16) < len(restore_float32(f16, f32, constants[:2])) < len(everything)
    assert len(everything) < 1.01 * len(f32)


def test_mismatched_models_are_refused(cnn_files, trained_cnn):
    import keras
    import tensorflow as tf

    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    converter = tf.lite.TFLiteConverter.from_keras_model(other)
    with pytest.raises(ValueError, match="different graphs|differs"):
        float16_constants(cnn_files["float16"], converter.convert())


def test_float32_constants_are_chosen_to_meet_the_tolerance(cnn_files):
    f16, f32 = cnn_files["float16"], cnn_files["float32"]
    images = cnn_files["data"].x_train[:64]
    keep, summary = choose_float32_constants(f16, f32, images, tolerance=0.25)
    assert summary["drift_mixed"] <= max(0.25 * summary["drift_plain_float16"], 1e-6) + 1e-9
    vectors = {c for c in float16_constants(f16, f32) if c.vector}
    assert vectors <= set(keep) and len(keep) == summary["float32_constants"]
    reference = predict_bytes(f32, images)
    measured = np.mean(np.abs(predict_bytes(restore_float32(f16, f32, keep), images) - reference))
    assert measured == pytest.approx(summary["drift_mixed"], abs=1e-6)
    # A zero tolerance can only be met by restoring every layer's weights.
    keep_all, strict = choose_float32_constants(f16, f32, images, tolerance=0.0)
    assert strict["float16_elements"] == 0 or strict["drift_mixed"] <= 1e-6
    assert len(keep_all) >= len(keep)


def test_int8_ops_left_in_float_are_the_worst_and_io_stays_uint8(cnn_files):
    data = cnn_files["data"]
    converter = _int8_converter(cnn_files["sm"], data.x_train[:64])
    calibrated, chosen, stats = choose_float_ops(converter, data.x_train[:64], threshold=0.0,
                                                 max_ops=1, debug_images=16)  # fmt: skip
    assert [s["rmse_steps"] for s in stats] == sorted(
        (s["rmse_steps"] for s in stats), reverse=True
    )
    assert chosen == [stats[0]["op"]]
    import tensorflow as tf

    mixed = quantize_calibrated(calibrated, chosen, tf.uint8)
    full = quantize_calibrated(calibrated, [], tf.uint8)
    assert _op_types(mixed).count("DEQUANTIZE") > _op_types(full).count("DEQUANTIZE")
    probs = predict_bytes(mixed, data.x_test[:32])  # uint8 in, dequantised out
    assert probs.shape == (32, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05)
    _, none, _ = choose_float_ops(converter, data.x_train[:64], threshold=1e9, debug_images=16)
    assert none == []


@pytest.mark.slow
@requires_weights
def test_selective_files_track_mobilenet_closer_than_plain_ones(weights_path, small_data, tmp_path):
    """ImageNet MobileNetV2 at 96x96 on upscaled 32x32 images: the case the scheme is for."""
    import keras

    from cifar.inference.keras_model import build_inference_model
    from cifar.models import create_model
    from exports.to_savedmodel import write_savedmodel
    from exports.to_tflite import write_tflite

    keras.utils.set_random_seed(0)
    model = create_model("mobilenet_v2", input_size=96, weights=weights_path)
    write_savedmodel(build_inference_model(model, 32), tmp_path / "sm")
    train, test = small_data.x_train[:96], small_data.x_test[:200]
    write_tflite(tmp_path / "sm", tmp_path / "f32.tflite", "float32")
    reference = predict_bytes((tmp_path / "f32.tflite").read_bytes(), test)
    drift = {}
    for mode in ("float16", "int8"):
        for selective in (False, True):
            path = tmp_path / f"{mode}-{selective}.tflite"
            write_tflite(tmp_path / "sm", path, mode, train, selective=selective)
            drift[mode, selective] = np.mean(
                np.abs(predict_bytes(path.read_bytes(), test) - reference)
            )
    assert drift["float16", True] < 0.5 * drift["float16", False]
    assert drift["int8", True] < drift["int8", False]


def test_restoring_one_of_two_identical_constants_keeps_the_other(tmp_path):
    """A float16 tensor read by several DEQUANTIZE ops (a trained ConvNeXt's float16 file has
    them: equal LayerScale factors stored once) keeps its data while one of them is restored.

    The two equal kernels below become one constant with two readers; the helper gives each
    reader its own DEQUANTIZE of the same float16 tensor, as in the ConvNeXt file."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.ReLU()(keras.layers.Conv2D(32, 1)(inputs))
    twins = [keras.layers.Conv2D(32, 1, use_bias=False) for _ in range(2)]
    x = twins[1](keras.layers.ReLU()(twins[0](x)))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    kernel = np.random.default_rng(0).normal(0, 0.2, size=(1, 1, 32, 32)).astype("float32")
    for twin in twins:
        twin.set_weights([kernel])
    model.export(str(tmp_path / "sm"), verbose=False)
    files = _plain_float_files(tmp_path / "sm")
    files["float16"] = _share_equal_float16_constants(files["float16"])
    constants = float16_constants(files["float16"], files["float32"])
    x = np.random.default_rng(1).uniform(0, 255, size=(4, 8, 8, 3)).astype("float32")
    expected = np.asarray(model(x))
    scale = np.abs(expected).max()  # outputs reach ~60: float16 weights move them by ~1e-3 of it
    for keep in constants:
        restored = restore_float32(files["float16"], files["float32"], [keep])
        np.testing.assert_allclose(
            predict_bytes(restored, x), expected, rtol=1e-2, atol=2e-3 * scale
        )


def _share_equal_float16_constants(model: bytes) -> bytes:
    """``model`` with a float16 constant read by two consumers given a second DEQUANTIZE op on
    the same float16 tensor, one per consumer, as converted ConvNeXt files have."""
    import copy

    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    graph = obj.subgraphs[0]
    for index, op in enumerate(graph.operators):
        if flatbuffer_utils.opcode_to_name(obj, op.opcodeIndex) != "DEQUANTIZE":
            continue
        readers = [o for o in graph.operators if op.outputs[0] in list(o.inputs)]
        if len(readers) < 2:
            continue
        graph.tensors.append(copy.deepcopy(graph.tensors[op.outputs[0]]))
        twin = copy.deepcopy(op)
        twin.outputs = [len(graph.tensors) - 1]
        last = readers[-1]
        last.inputs = [twin.outputs[0] if t == op.outputs[0] else t for t in last.inputs]
        graph.operators.insert(index + 1, twin)
        return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))
    raise AssertionError("no float16 constant has two readers")
