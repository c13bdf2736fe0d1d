"""Cached frozen activations: train only the part of the model that changes.

When a phase freezes the first part of the network and the training images are not
augmented, that part computes the same activations every epoch. The Trainer then runs it once
per image and trains a tail model that shares its layers with the full model, so the full model
is up to date when the phase ends. :mod:`~cifar.activations.plan` decides per phase whether
that is exact and fills the cache, :mod:`~cifar.activations.split` decides where to cut,
:mod:`~cifar.activations.engines` runs the prefix on the fastest exact CPU engine,
:mod:`~cifar.activations.store` keeps the activations on disk keyed by a content hash, and
:mod:`~cifar.activations.dataset` streams them in the image pipeline's batch order.
"""

from cifar.activations.dataset import make_feature_dataset
from cifar.activations.split import ModelSplit, split_model
from cifar.activations.store import ActivationCache

__all__ = ["ActivationCache", "ModelSplit", "make_feature_dataset", "split_model"]
