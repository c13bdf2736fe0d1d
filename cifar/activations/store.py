"""The activation cache: frozen-prefix activations kept as verified on-disk arrays."""

from __future__ import annotations

import keras
import numpy as np

from cifar.array_cache import ArrayCache, array_digest, file_digest

__all__ = ["ActivationCache", "array_digest", "file_digest", "weights_digest"]

# Activations are one use of the project's verified array files; the name says which.
ActivationCache = ArrayCache


def weights_digest(model: keras.Model) -> str:
    """sha256 of every weight of ``model`` (its prefix: what the cached values depend on)."""
    return array_digest(*[np.asarray(w) for w in model.weights])
