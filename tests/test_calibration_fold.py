"""cifar.calibration.fold: T folded into the final Dense layer, checked in Keras and in TFLite."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifar.calibration import softmax
from cifar.calibration.fold import final_softmax_dense, fold_temperature
from cifar.errors import ConfigError, ModelError
from cifar.inference.keras_model import build_inference_model
from cifar.models import create_model

TEMPERATURE = 0.4  # sharpens: probabilities far from uniform, a real test of the kernel scaling


def logits_of(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The final Dense layer's pre-activation, computed apart from the model (float64)."""
    dense = final_softmax_dense(model)
    features = keras.Model(model.inputs, dense.input).predict(images, verbose=0)
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    return features.astype(np.float64) @ kernel + bias


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    """The custom CNN (random weights, 3 classes, 32x32): expected probabilities, then folded.

    (A MobileNetV2 without ImageNet weights is no test here: its random, un-normalised
    activations fade to about 1e-13 by the head, so every image gets the same logits.)
    """
    keras.utils.set_random_seed(0)
    model = create_model("custom_cnn", num_classes=3, input_size=32)
    dense = model.get_layer("probabilities")
    rng = np.random.default_rng(0)
    dense.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in dense.get_weights()])
    images = np.random.default_rng(1).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    expected = softmax(logits_of(model, images), TEMPERATURE)
    assert fold_temperature(model, TEMPERATURE) is model
    return model, images, expected, tmp_path_factory.mktemp("fold")


def test_folded_keras_model_gives_softmax_of_logits_over_t(folded):
    model, images, expected, _ = folded
    probs = model.predict(images, verbose=0)
    assert expected.max(axis=1).min() < 0.9 and expected.max() > 0.5  # not degenerate
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_folded_tflite_export_gives_the_same_probabilities(folded):
    from cifar.inference.runtimes import TFLiteRuntime
    from exports.to_savedmodel import write_savedmodel
    from exports.to_tflite import write_tflite

    model, images, expected, root = folded
    write_savedmodel(build_inference_model(model, 32), root / "sm")
    write_tflite(root / "sm", root / "model.tflite", "float32")
    probs = TFLiteRuntime(root / "model.tflite").predict(images)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def tiny(activation_layer: bool = False, activation: str = "softmax") -> keras.Model:
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation=None if activation_layer else activation)(inputs)
    if activation_layer:
        x = keras.layers.Activation("softmax")(x)
    return keras.Model(inputs, x)


def test_fold_finds_the_layer_inside_the_inference_wrapper():
    """A transfer model (nested backbone) wrapped to take 32x32 images, as exports see it."""
    model = create_model("mobilenet_v2", num_classes=3, input_size=48, weights=None)
    dense = final_softmax_dense(build_inference_model(model, 32))
    assert dense is model.get_layer("probabilities")
    kernel, bias = (w.copy() for w in dense.get_weights())
    bias += 1.0
    dense.set_weights([kernel, bias])
    fold_temperature(build_inference_model(model, 32), 2.0)
    np.testing.assert_allclose(dense.get_weights()[0], kernel / 2, rtol=1e-6)
    np.testing.assert_allclose(dense.get_weights()[1], bias / 2, rtol=1e-6)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda: tiny(activation="linear"), "Dense with activation linear"),
        (lambda: tiny(activation_layer=True), "is a Activation, not a Dense"),
        (
            lambda: keras.Model(i := keras.Input((4,)), [keras.layers.Dense(2, "softmax")(i)] * 2),
            "2 outputs",
        ),
    ],
)
def test_fold_refuses_a_model_without_a_dense_softmax_output(model, message):
    with pytest.raises(ModelError, match=message):
        fold_temperature(model(), 1.5)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "hot", None])
def test_fold_refuses_a_bad_temperature(bad):
    model = tiny()
    before = model.get_weights()
    with pytest.raises(ConfigError, match="finite positive"):
        fold_temperature(model, bad)
    assert all((a == b).all() for a, b in zip(before, model.get_weights(), strict=True))


def test_fold_works_on_a_sequential_model_and_refuses_an_unbuilt_one():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = softmax(logits_of(model, x), 3.0)
    np.testing.assert_allclose(
        fold_temperature(model, 3.0).predict(x, verbose=0), expected, atol=1e-6
    )
    with pytest.raises(ModelError, match="never built"):
        fold_temperature(keras.Sequential([keras.layers.Dense(3, activation="softmax")]), 2.0)
