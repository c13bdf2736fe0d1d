"""Callbacks named in the configuration (``callbacks.extra = ["module:Class"]``)."""

from __future__ import annotations

import importlib

import keras

from cifar.errors import ConfigError


def import_callback(path: str) -> keras.callbacks.Callback:
    """An instance of the callback class ``"module:Class"``; ConfigError if it cannot load."""
    module_name, _, cls_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"invalid configuration: callbacks.extra: cannot import {path!r} ({exc})"
        ) from exc
    return cls()
