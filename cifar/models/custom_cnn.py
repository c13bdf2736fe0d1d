"""The from-scratch baseline: three Conv/MaxPool blocks, Dense 256, Dropout 0.5."""

from __future__ import annotations

import keras

from cifar.models.registry import register_model


@register_model("custom_cnn", default_input_size=32, any_input_size=False)
def custom_cnn(
    num_classes: int = 10, input_size: int = 32, head_units: int = 256, dropout: float = 0.5, **_
) -> keras.Model:
    """Custom CNN baseline (Conv 32/64/128 3x3 + max-pool, Dense 256, Dropout 0.5) on raw 0-255."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="scale_0_1")(inputs)
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv{filters}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{filters}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(head_units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="custom_cnn")
