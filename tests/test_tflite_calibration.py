"""Calibration inside a .tflite file: T folded into the final FULLY_CONNECTED, or a monotone map
appended after it."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifar.calibration import softmax
from cifar.calibration.monotone import MonotoneMap
from cifar.errors import ConfigError, ModelError
from exports.tflite_metadata import append_files, packed_files
from exports.tflite_monotone import append_monotone_map
from exports.tflite_temperature import find_final_layer, fold_temperature_tflite

T = 0.7


def _model() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(5, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    # Trained biases are not zero (the converter drops an all-zero bias input).
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, np.linspace(-1.0, 1.0, len(bias), dtype=np.float32)])
    return model


def _logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The final Dense layer's pre-activations (what softmax divides by T)."""
    hidden = keras.Model(model.inputs, model.layers[-2].output)(x)
    kernel, bias = model.layers[-1].get_weights()
    return np.asarray(hidden, np.float64) @ kernel + bias


def _convert(model: keras.Model, mode: str) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        rows = np.random.default_rng(1).normal(size=(32, 1, 12)).astype(np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([row] for row in rows)
    return converter.convert()


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def model_and_images():
    x = np.random.default_rng(0).normal(size=(64, 12)).astype(np.float32) * 3
    return _model(), x


def test_folded_float32_file_gives_softmax_of_logits_over_t(model_and_images):
    model, x = model_and_images
    original = _convert(model, "float32")
    target = find_final_layer(original)
    assert target.dtypes == ("float32", "float32")
    folded = fold_temperature_tflite(original, T)
    expected = softmax(_logits(model, x), T)
    np.testing.assert_allclose(_run(folded, x), expected, atol=1e-5)
    # ...and the check can fail: the unfolded file is far from it.
    assert np.abs(_run(original, x) - expected).max() > 1e-2
    # Only the two constants changed, in place: the file keeps its size and every other byte.
    changed = np.flatnonzero(np.frombuffer(original, np.uint8) != np.frombuffer(folded, np.uint8))
    assert len(folded) == len(original)
    assert 0 < len(changed) <= (16 * 5 + 5) * 4


def test_float16_weights_are_scaled_where_they_are_stored(model_and_images):
    model, x = model_and_images
    original = _convert(model, "float16")
    target = find_final_layer(original)
    assert "float16" in target.dtypes  # widened at run time by a DEQUANTIZE op
    folded = fold_temperature_tflite(original, T)
    # The float16 file's own logits, divided by T (its weights are rounded to float16).
    expected = softmax(np.log(_run(original, x).astype(np.float64)), T)
    got = _run(folded, x)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_quantised_final_layer_and_bad_temperatures_are_refused(model_and_images):
    model, _ = model_and_images
    with pytest.raises(ModelError, match="quantised"):
        fold_temperature_tflite(_convert(model, "int8"), T)
    original = _convert(model, "float32")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="temperature"):
            fold_temperature_tflite(original, bad)


def test_a_model_without_softmax_is_refused():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3)(inputs)
    plain = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs)).convert()
    with pytest.raises(ModelError, match="SOFTMAX"):
        find_final_layer(plain)


MAP = MonotoneMap(knots=(-4.0, -2.0, -0.5), slopes=(0.2, 1.5, 0.6, 2.5))


@pytest.mark.parametrize("mode", ["float32", "float16"])
def test_appended_map_gives_softmax_of_g_of_log_p(model_and_images, mode):
    model, x = model_and_images
    original = append_files(_convert(model, mode), {"labels.txt": b"a\nb\nc\nd\ne\n"})
    calibrated = append_monotone_map(original, MAP)
    before, after = _run(original, x), _run(calibrated, x)
    np.testing.assert_allclose(after, MAP.apply(before), atol=1e-5)
    assert np.abs(after - before).max() > 1e-2  # the check can fail: the map does change p
    assert (after.argmax(1) == before.argmax(1)).all()
    np.testing.assert_allclose(after.sum(1), 1.0, atol=1e-5)
    # The packed files (MediaPipe's labels.txt) survive the re-serialisation.
    assert packed_files(calibrated) == {"labels.txt": b"a\nb\nc\nd\ne\n"}


def test_map_keeps_a_dynamic_batch(model_and_images):
    model, x = model_and_images
    calibrated = append_monotone_map(_convert(model, "float32"), MAP)
    np.testing.assert_allclose(_run(calibrated, x[:3]), _run(calibrated, x)[:3], atol=1e-6)


def test_map_needs_a_final_softmax():
    inputs = keras.Input((4,))
    plain = tf.lite.TFLiteConverter.from_keras_model(
        keras.Model(inputs, keras.layers.Dense(3)(inputs))
    ).convert()
    with pytest.raises(ModelError, match="SOFTMAX"):
        append_monotone_map(plain, MAP)
