"""The model registry: ``@register_model`` adds a builder, ``create_model(name)`` calls it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

from cifar.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder and the input size it expects by default."""

    name: str
    builder: Callable[..., keras.Model]
    default_input_size: int
    description: str
    # True when the weights do not depend on the input size (global pooling), so a trained
    # network can be rebuilt at another size with the same weights (model.eval_size).
    any_input_size: bool = True


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str, default_input_size: int, any_input_size: bool = True
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator registering ``builder(num_classes, input_size, **options)`` under ``name``.

    ``any_input_size=False`` says the weights depend on the input size (e.g. a Flatten
    head), so the trained model cannot be evaluated at another size.

    Example:
        >>> @register_model("tiny", default_input_size=32)
        ... def tiny(num_classes=10, input_size=32, **_):
        ...     inputs = keras.Input((input_size, input_size, 3))
        ...     x = keras.layers.GlobalAveragePooling2D()(inputs)
        ...     return keras.Model(inputs, keras.layers.Dense(num_classes, "softmax")(x))
    """

    def decorate(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        doc = (builder.__doc__ or "").strip().splitlines()
        summary = doc[0] if doc else ""
        _REGISTRY[name] = ModelSpec(name, builder, default_input_size, summary, any_input_size)
        return builder

    return decorate


def list_models() -> list[str]:
    """Names of all registered models."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; unknown names list the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None


def default_input_size(name: str) -> int:
    """The square input size model ``name`` is built for unless told otherwise."""
    return get_spec(name).default_input_size


def create_model(
    name: str, num_classes: int = 10, input_size: int | None = None, **options
) -> keras.Model:
    """Build registered model ``name``; it takes raw 0-255 RGB images of ``input_size``."""
    spec = get_spec(name)
    return spec.builder(
        num_classes=num_classes, input_size=input_size or spec.default_input_size, **options
    )
