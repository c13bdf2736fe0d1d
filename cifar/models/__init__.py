"""Model factory: models are created by name from one registry (cf. timm's ``create_model``)."""

from cifar.models import backbones, custom_cnn  # noqa: F401 - registers the built-in models
from cifar.models.registry import (
    ModelSpec,
    create_model,
    default_input_size,
    list_models,
    register_model,
)

__all__ = ["ModelSpec", "create_model", "default_input_size", "list_models", "register_model"]
