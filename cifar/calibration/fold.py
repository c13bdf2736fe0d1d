"""Temperature folded into a Keras model's final Dense softmax layer: calibration at no cost.

``softmax((x W + b) / T) = softmax(x (W / T) + b / T)``, so dividing the last Dense layer's
kernel and bias by T makes the model itself output calibrated probabilities. Every file
exported from it afterwards (SavedModel, TFLite, ONNX, the web page) is calibrated without a
runtime change, and the predicted class is unchanged. Fold once, into the uncalibrated
model: folding again divides by T again. Record T beside the files
(:meth:`cifar.calibration.temperature.TemperatureFit.metadata`).
"""

from __future__ import annotations

import math

import keras

from cifar.errors import ConfigError, ModelError


def _output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer computing the model's single output, looking inside nested models."""
    layer = model
    while isinstance(layer, keras.Model):
        outputs = getattr(layer, "outputs", None)
        if not outputs:
            raise ModelError(
                f"model {layer.name!r} has no functional graph (subclassed, or never built?): "
                "cannot find its final layer to fold a temperature into"
            )
        if len(outputs) != 1:
            raise ModelError(
                f"model {layer.name!r} has {len(outputs)} outputs; a temperature folds into a "
                "classifier with one probability output"
            )
        # Keras records on every symbolic tensor the operation that produced it.
        layer = outputs[0]._keras_history.operation
    return layer


def final_softmax_dense(model: keras.Model) -> keras.layers.Dense:
    """The Dense layer with softmax activation producing ``model``'s output; ModelError if none.

    Finds it inside nested models too (e.g. the inference wrapper of
    :func:`cifar.inference.keras_model.build_inference_model`).
    """
    layer = _output_layer(model)
    if (
        not isinstance(layer, keras.layers.Dense)
        or layer.activation is not keras.activations.softmax
    ):
        what = type(layer).__name__
        if isinstance(layer, keras.layers.Dense):
            what += f" with activation {getattr(layer.activation, '__name__', layer.activation)}"
        raise ModelError(
            f"cannot fold a temperature into model {model.name!r}: its last layer "
            f"{layer.name!r} is a {what}, not a Dense layer with softmax activation"
        )
    if getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False):
        raise ModelError(
            f"cannot fold a temperature into {layer.name!r}: it is quantised or has LoRA "
            "weights; fold before quantising"
        )
    return layer


def fold_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """Divide the final Dense softmax layer's kernel and bias by ``temperature``, in place.

    Returns ``model``, whose probabilities are now ``softmax(logits / temperature)``.
    ConfigError for a temperature that is not a finite positive number; ModelError for a
    model whose output is not a Dense softmax layer.
    """
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"temperature must be a finite positive number, got {temperature!r}")
    layer = final_softmax_dense(model)
    scale = 1.0 / value
    layer.kernel.assign(layer.kernel * scale)
    if layer.use_bias:
        layer.bias.assign(layer.bias * scale)
    return model
