"""MobileNetV2 (ImageNet weights, no top) with the reference classification head."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from cifar.errors import ModelError
from cifar.finetuning import BACKBONE
from cifar.models.registry import register_model

WEIGHTS_ENV = "MOBILENETV2_WEIGHTS"


def resolve_weights(weights: str | None) -> str | None:
    """``"imagenet"`` -> ``$MOBILENETV2_WEIGHTS`` if set (offline), else Keras's download."""
    if weights is None or str(weights).lower() in ("none", ""):
        return None
    if weights == "imagenet":
        local = os.environ.get(WEIGHTS_ENV)
        return local if local else "imagenet"
    if not Path(weights).is_file():
        raise ModelError(f"MobileNetV2 weights file {weights} does not exist")
    return str(weights)


@register_model("mobilenet_v2", default_input_size=160)
def mobilenet_v2(
    num_classes: int = 10,
    input_size: int = 160,
    weights: str | None = "imagenet",
    head_units: int = 128,
    dropout: float = 0.3,
    **_,
) -> keras.Model:
    """MobileNetV2 base (ImageNet weights) + GAP, Dense 128 ReLU, Dropout 0.3, Dense softmax."""
    resolved = resolve_weights(weights)
    try:
        base = keras.applications.MobileNetV2(
            input_shape=(input_size, input_size, 3), include_top=False, weights=resolved
        )
    except Exception as exc:  # download failure, bad h5 file, shape mismatch
        hint = (
            f" Set {WEIGHTS_ENV} or model.weights to a local "
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 file."
            if resolved == "imagenet"
            else ""
        )
        raise ModelError(
            f"could not load MobileNetV2 weights {resolved!r}: {type(exc).__name__}: {exc}.{hint}"
        ) from exc
    base.name = BACKBONE
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # MobileNetV2 expects [-1, 1]; scaling inside the model keeps exports preprocessing-free.
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_minus1_1")(inputs)
    # No training=False here: a frozen BatchNorm layer runs in inference mode anyway (Keras 3),
    # and a policy with train_bn=True lets the unfrozen ones adapt their statistics.
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(head_units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2_classifier")
