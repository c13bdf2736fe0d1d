"""Transfer models from Keras Applications: one table of backbones, one builder, one head.

Every entry builds ``keras.applications.<application>(include_top=False)`` as a nested layer
named ``backbone`` (what the freezing policies and the activation cache look for), puts the
family's own input scaling in front of it (or keeps the one Keras builds into the graph), and
adds the classification head: GlobalAveragePooling, Dense ReLU, Dropout, Dense softmax. Every
model takes raw 0-255 RGB, so exported files need no preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from cifar.finetuning import BACKBONE
from cifar.models.layers import CaffePreprocess
from cifar.models.registry import register_model
from cifar.models.weights import build_with_weights, resolve_weights

# How a family wants its 0-255 RGB input (keras.applications.<family>.preprocess_input):
SCALINGS = {
    "minus1_1": "scaled to [-1, 1] in front of the backbone",
    "caffe": "caffe style in front of the backbone: RGB to BGR, ImageNet mean subtracted",
    "in_graph": "scaled by the backbone's own first layers (Keras builds them in)",
}


@dataclass(frozen=True)
class Backbone:
    """One Keras Applications image model as a registry entry.

    Args:
        name: registry name (``model.name``).
        application: constructor in ``keras.applications`` (e.g. ``"EfficientNetV2B0"``).
        family: module of ``keras.applications`` whose ``preprocess_input`` it expects.
        input_size: default square input size (the size its ImageNet weights were trained at,
            160 for the mobile networks as in TensorFlow's transfer-learning tutorial).
        scaling: a key of ``SCALINGS``.
        options: extra constructor arguments.
        weights_env: an environment variable naming a local weights file (``"imagenet"``).
    """

    name: str
    application: str
    family: str
    input_size: int
    scaling: str
    options: dict[str, Any] = field(default_factory=dict)
    weights_env: str | None = None

    def constructor(self) -> Callable[..., keras.Model]:
        """The ``keras.applications`` function that builds this backbone."""
        return getattr(keras.applications, self.application)


_IN_GRAPH = {"include_preprocessing": True}

BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in [
        Backbone("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 160, "minus1_1",
                 weights_env="MOBILENETV2_WEIGHTS"),
        Backbone("mobilenet_v3_small", "MobileNetV3Small", "mobilenet_v3", 160, "in_graph",
                 _IN_GRAPH),
        Backbone("mobilenet_v3_large", "MobileNetV3Large", "mobilenet_v3", 160, "in_graph",
                 _IN_GRAPH),
        *(
            Backbone(f"efficientnet_b{i}", f"EfficientNetB{i}", "efficientnet", size, "in_graph")
            for i, size in enumerate((224, 240, 260, 300))
        ),
        *(
            Backbone(f"efficientnetv2_b{i}", f"EfficientNetV2B{i}", "efficientnet_v2", size,
                     "in_graph", _IN_GRAPH)
            for i, size in enumerate((224, 240, 260, 300))
        ),
        Backbone("resnet50", "ResNet50", "resnet50", 224, "caffe"),
        Backbone("vgg16", "VGG16", "vgg16", 224, "caffe"),
        Backbone("convnext_tiny", "ConvNeXtTiny", "convnext", 224, "in_graph", _IN_GRAPH),
    ]
}  # fmt: skip


def scaling_layer(backbone: Backbone) -> keras.layers.Layer | None:
    """The layer putting raw 0-255 RGB into the backbone's range (None: the backbone does it)."""
    if backbone.scaling == "minus1_1":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_minus1_1")
    if backbone.scaling == "caffe":
        return CaffePreprocess(name="caffe_bgr_mean")
    return None


def build_backbone(
    backbone: Backbone, input_size: int, weights: str | None = "imagenet"
) -> keras.Model:
    """The Keras application without its top, named ``backbone``, with the requested weights."""
    source = resolve_weights(weights, backbone.weights_env)
    hint = (
        f" For {backbone.name}, {backbone.weights_env} may also name the file."
        if backbone.weights_env
        else ""
    )

    def construct(weights):
        return backbone.constructor()(
            input_shape=(input_size, input_size, 3),
            include_top=False,
            weights=weights,
            **backbone.options,
        )

    base = build_with_weights(construct, source, backbone.application, hint)
    base.name = BACKBONE
    return base


def build_transfer_model(
    backbone: Backbone,
    num_classes: int = 10,
    input_size: int | None = None,
    weights: str | None = "imagenet",
    head_units: int = 128,
    dropout: float = 0.3,
    **_,
) -> keras.Model:
    """``backbone`` (ImageNet weights) + GAP, Dense ReLU, Dropout, Dense softmax; raw 0-255 in.

    ``head_units=0`` leaves the hidden Dense layer out (GAP, Dropout, Dense softmax): a linear
    head on the backbone's features, the usual choice when the whole top of the backbone trains.
    """
    size = input_size or backbone.input_size
    base = build_backbone(backbone, size, weights)
    inputs = keras.Input((size, size, 3), name="image")
    scale = scaling_layer(backbone)
    x = scale(inputs) if scale is not None else inputs
    # No training=False here: a frozen BatchNorm layer runs in inference mode anyway (Keras 3),
    # and a policy with train_bn=True lets the unfrozen ones adapt their statistics.
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if head_units:
        x = keras.layers.Dense(head_units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{backbone.name}_classifier")


def _register(backbone: Backbone) -> None:
    def builder(**kwargs) -> keras.Model:
        return build_transfer_model(backbone, **kwargs)

    builder.__doc__ = (
        f"{backbone.application} (Keras Applications, ImageNet weights) + GAP, Dense 128 ReLU, "
        f"Dropout 0.3, Dense softmax; input {SCALINGS[backbone.scaling]}."
    )
    register_model(backbone.name, default_input_size=backbone.input_size)(builder)


for _backbone in BACKBONES.values():
    _register(_backbone)
