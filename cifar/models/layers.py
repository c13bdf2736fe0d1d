"""Preprocessing layers the registry's models put in front of a backbone (saved with the model)."""

from __future__ import annotations

import keras
from keras import ops

# keras.applications.imagenet_utils "caffe" mode: BGR channel means of ImageNet, 0-255 scale.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="cifar")
class CaffePreprocess(keras.layers.Layer):
    """Raw 0-255 RGB to caffe-style input: channels reversed to BGR, ImageNet mean subtracted.

    This is what ``keras.applications.resnet50.preprocess_input`` and ``vgg16.preprocess_input``
    do outside the model; as a layer it travels into exported files. It has no weights, so no
    freezing policy can make it train.
    """

    def call(self, inputs):
        """BGR minus the ImageNet channel means."""
        bgr = ops.flip(ops.cast(inputs, self.compute_dtype), axis=-1)
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        """Same shape as the input."""
        return input_shape
