"""Frozen BatchNorm folded into the convolution that feeds it, for faster training steps.

Why: a frozen BatchNormalization runs in inference mode, a per-channel affine map. Keras 3
applies it as separate element-wise ops after the convolution, in the forward pass and again
in the backward pass; in a cached phase-2 step of MobileNetV2 on two CPU cores element-wise
ops, mostly these, were about 15% of the kernel time, and folding makes the step 1.08x to 1.11x
faster (``benchmarks/profile_phase2.py``). Scaling the kernel by the
BatchNorm's scale inside the step and adding its shift as a bias computes the same function
with one convolution and one bias add. Nothing is stored differently: the folded layer reads
the convolution's kernel and the BatchNorm's statistics each step, gradients reach the kernel
through the product, and the full model that shares these variables is unchanged. Only the
order of float32 operations differs.
"""

from __future__ import annotations

import keras
from keras import ops

_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


class FoldedConvBatchNorm(keras.layers.Layer):
    """A 2-D (depthwise) convolution followed by a frozen BatchNormalization, as one layer.

    Args:
        conv: a ``Conv2D`` (one group) or ``DepthwiseConv2D`` layer, channels last.
        bn: the frozen ``BatchNormalization`` layer that alone reads ``conv``'s output.

    Example:
        >>> conv = keras.layers.Conv2D(8, 1, use_bias=False)
        >>> bn = keras.layers.BatchNormalization(trainable=False)
        >>> y = bn(conv(keras.Input((4, 4, 3))))
        >>> tuple(FoldedConvBatchNorm(conv, bn)(ops.ones((1, 4, 4, 3))).shape)
        (1, 4, 4, 8)
    """

    def __init__(self, conv: keras.layers.Layer, bn: keras.layers.BatchNormalization, **kwargs):
        super().__init__(name=f"{conv.name}_folded", dtype=conv.dtype_policy, **kwargs)
        self.conv, self.bn = conv, bn

    @property
    def layers(self) -> list[keras.layers.Layer]:
        """The two layers folded together (so layer walks such as MAC counts see them)."""
        return [self.conv, self.bn]

    def call(self, inputs):
        """``bn(conv(inputs))`` in inference mode, as one convolution plus a bias."""
        conv, bn = self.conv, self.bn
        scale = ops.rsqrt(bn.moving_variance + bn.epsilon)
        if bn.scale:
            scale = scale * bn.gamma
        shift = -bn.moving_mean * scale
        if bn.center:
            shift = shift + bn.beta
        if conv.use_bias:
            shift = shift + conv.bias * scale
        options = {"strides": conv.strides, "padding": conv.padding}
        options["dilation_rate"] = conv.dilation_rate
        if isinstance(conv, keras.layers.DepthwiseConv2D):
            channels, multiplier = conv.kernel.shape[2:]
            kernel = conv.kernel * ops.reshape(scale, (1, 1, channels, multiplier))
            y = ops.depthwise_conv(inputs, kernel, **options)
        else:
            y = ops.conv(inputs, conv.kernel * scale, **options)
        return y + shift

    def compute_output_spec(self, inputs):
        """What ``bn(conv(inputs))`` gives."""
        return self.bn.compute_output_spec(self.conv.compute_output_spec(inputs))


def _foldable(conv, bn) -> bool:
    """True for a convolution and a frozen, channels-last BatchNorm this module can fold."""
    return (
        isinstance(conv, _CONVS)
        and isinstance(bn, keras.layers.BatchNormalization)
        and not bn.trainable
        and conv.data_format == "channels_last"
        and getattr(conv, "groups", 1) == 1
        and bn.axis in (-1, 3)
    )


def fold_frozen_batchnorm(model: keras.Model) -> tuple[keras.Model, int]:
    """``model`` with every frozen BatchNorm folded into the convolution that alone feeds it.

    The result is a functional model sharing all of ``model``'s layers and variables (training
    it trains them), plus the number of pairs folded. A BatchNorm that trains, one fed by
    anything but a lone convolution, and any layer called more than once are left as they are.
    """
    nodes = [node for depth in model._nodes_by_depth.values() for node in depth]
    calls: dict[int, int] = {}
    readers: dict[int, list] = {}
    for node in nodes:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            readers.setdefault(id(tensor), []).append(node.operation)
    folded: dict[int, keras.layers.Layer] = {}  # id(bn) -> its convolution
    for node in nodes:
        conv = node.operation
        if len(node.output_tensors) != 1:
            continue
        after = readers.get(id(node.output_tensors[0]), [])
        if (
            len(after) == 1
            and _foldable(conv, after[0])
            and calls[id(conv)] == calls[id(after[0])] == 1
        ):
            folded[id(after[0])] = conv
    if not folded:
        return model, 0
    convs = {id(conv) for conv in folded.values()}

    def call(layer, *args, **kwargs):
        if id(layer) in convs:
            return args[0]  # computed by the folded layer that replaces its BatchNorm
        if id(layer) in folded:
            return FoldedConvBatchNorm(folded[id(layer)], layer)(args[0])
        return layer(*args, **kwargs)

    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return clone, len(folded)
