"""Frozen BatchNorm folded into its convolution: same function, same gradients, same variables."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cifar.activations import split_model
from cifar.finetuning import get_policy
from cifar.models import create_model
from cifar.models.folding import FoldedConvBatchNorm, fold_frozen_batchnorm


def _randomise_statistics(model: keras.Model, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics, so folding has something to fold."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 1, c))
            layer.moving_variance.assign(rng.uniform(0.2, 3, c))
            layer.gamma.assign(rng.uniform(0.5, 1.5, c))
            layer.beta.assign(rng.normal(0, 0.5, c))


def _small_model() -> keras.Model:
    x = inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="conv")(x)
    x = keras.layers.BatchNormalization(name="conv_bn", trainable=False)(x)
    x = keras.layers.ReLU(6.0)(x)
    skip = x
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)  # with bias
    x = keras.layers.BatchNormalization(name="dw_bn", trainable=False)(x)
    x = keras.layers.ReLU(6.0)(x)  # else the trainable BatchNorm cancels the biases' gradients
    branch = keras.layers.Conv2D(6, 1, use_bias=False, name="shared_out")(x)  # read twice
    x = keras.layers.Add()([branch, keras.layers.BatchNormalization(trainable=False)(branch)])
    x = keras.layers.Conv2D(6, 1, use_bias=False, name="trains_bn")(x)
    x = keras.layers.BatchNormalization(name="trainable_bn")(x)  # trains: not folded
    y = keras.layers.Add()(
        [keras.layers.GlobalAveragePooling2D()(x), keras.layers.Flatten()(skip)[:, :6]]
    )
    model = keras.Model(inputs, keras.layers.Dense(3)(y))
    _randomise_statistics(model)
    return model


def _loss_and_grads(model: keras.Model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.categorical_crossentropy(y, model(x, training=True), from_logits=True)
        )
    return loss, tape.gradient(loss, model.trainable_variables)


def test_folding_keeps_the_function_gradients_and_variables():
    model = _small_model()
    folded, count = fold_frozen_batchnorm(model)
    assert count == 2  # conv + conv_bn, dw + dw_bn; the shared and the trainable ones stay
    names = {layer.name for layer in folded.layers}
    assert {"conv_folded", "dw_folded", "shared_out", "trainable_bn"} <= names
    assert "conv_bn" not in names and "dw" not in names
    # the same variables, in the same order (the optimizer's slots follow this order)
    assert [id(v) for v in folded.trainable_variables] == [id(v) for v in model.trainable_variables]
    x = np.random.default_rng(1).normal(0, 1, (5, 8, 8, 4)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 1, 0], 3)
    np.testing.assert_allclose(folded(x), model(x), rtol=1e-5, atol=1e-5)
    loss_f, grads_f = _loss_and_grads(folded, x, y)
    loss_m, grads_m = _loss_and_grads(model, x, y)
    np.testing.assert_allclose(loss_f, loss_m, rtol=1e-6)
    for gf, gm in zip(grads_f, grads_m, strict=True):
        _assert_close_gradient(gf, gm)


def test_folding_leaves_models_without_frozen_pairs_alone():
    model = _small_model()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
    assert fold_frozen_batchnorm(model) == (model, 0)


def test_mobilenet_tail_is_folded_and_trains_like_the_full_model():
    """The cached phase-2 tail folds every frozen pair and takes the full model's step."""
    model = create_model("mobilenet_v2", weights=None, input_size=64, dropout=0.0)
    _randomise_statistics(model)
    get_policy("unfreeze_last(50)").apply(model)
    split = split_model(model)
    folded = [x for x in split.tail._flatten_layers() if isinstance(x, FoldedConvBatchNorm)]
    assert len(folded) == 19  # blocks 11-16 (expand, depthwise, project) and Conv_1
    x = np.random.default_rng(2).uniform(0, 255, (6, 64, 64, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 3, 4, 5], 10)
    cached = split.prefix(x, training=False)
    np.testing.assert_allclose(split.tail(cached), model(x, training=False), atol=1e-5)
    with tf.GradientTape() as tape:
        loss_t = keras.losses.categorical_crossentropy(y, split.tail(cached, training=True))
    grads_t = tape.gradient(loss_t, split.tail.trainable_variables)
    with tf.GradientTape() as tape:
        loss_m = keras.losses.categorical_crossentropy(y, model(x, training=True))
    grads = tape.gradient(loss_m, model.trainable_variables)
    grads_m = {id(v): g for v, g in zip(model.trainable_variables, grads, strict=True)}
    for v, g in zip(split.tail.trainable_variables, grads_t, strict=True):
        _assert_close_gradient(g, grads_m[id(v)])


def _assert_close_gradient(actual, expected) -> None:
    """Equal up to float32 reordering: within 1e-4 of the gradient's own largest entry."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
