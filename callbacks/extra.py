"""Callbacks named in the configuration (``callbacks.extra = ["module:Class"]``)."""

from __future__ import annotations

import importlib

import keras

from cifar.errors import ConfigError


def callback_class(path: str, key: str = "callbacks.extra") -> type[keras.callbacks.Callback]:
    """The Keras callback class ``"module:Class"``; ConfigError naming ``key`` if it is not one.

    ``TrainConfig.validate()`` calls it for every entry, so a typo fails before any work.
    """
    module_name, _, cls_name = path.partition(":")
    if not module_name or not cls_name:
        raise ConfigError(
            f"invalid configuration: {key}: {path!r}: expected 'package.module:ClassName'"
        )
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"invalid configuration: {key}: cannot import {path!r} ({exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, keras.callbacks.Callback)):
        raise ConfigError(
            f"invalid configuration: {key}: {path!r} is not a keras.callbacks.Callback subclass"
        )
    return cls


def import_callback(path: str) -> keras.callbacks.Callback:
    """An instance of the callback class ``"module:Class"``; ConfigError if it cannot load."""
    return callback_class(path)()
