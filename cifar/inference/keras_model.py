"""Keras models made ready for inference: raw stored-size images in, probabilities out."""

from __future__ import annotations

from collections.abc import Callable

import keras


def build_inference_model(model: keras.Model, source_size: int = 32) -> keras.Model:
    """Wrap ``model`` so it takes raw 0-255 RGB images of ``source_size`` (32 for CIFAR-10).

    The wrapper resizes (bilinear, exactly as the training pipeline does) to the model's own
    input size, so exported files and servers accept the CIFAR image as it is stored; the model
    scales pixels itself. Dropout and other training-only behaviour are off (``training=False``).
    """
    size = model.input_shape[1]
    inputs = keras.Input((source_size, source_size, 3), name="image", dtype="float32")
    x = inputs
    if size != source_size:
        x = resize_layer(size)(x)
    outputs = model(x, training=False)
    return keras.Model(inputs, outputs, name=f"{model.name}_inference")


def resize_layer(size: int) -> keras.layers.Layer:
    """The resize from stored images to a model's input: bilinear, as the training pipeline."""
    return keras.layers.Resizing(size, size, interpolation="bilinear", name="resize")


def compiled_predict_step(model: keras.Model) -> Callable:
    """A ``tf.function`` computing ``model(x, training=False)`` for any batch size."""
    import tensorflow as tf

    size = model.input_shape[1:]
    spec = tf.TensorSpec((None, *size), tf.float32)
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])
