"""The train/validation/test pipelines of one data set, in the order resume relies on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from cifar.data.augment import Augmenter
from cifar.data.dataset import ImageData
from cifar.data.order import steps_per_epoch
from cifar.data.pipeline import make_dataset
from cifar.data.split import straddling_groups, stratified_group_split, stratified_split
from cifar.errors import DataError


@dataclass
class Datasets:
    """The splits as tf.data pipelines, plus the arrays they stream from.

    ``train`` is epoch 0's training pipeline; :meth:`train_epochs` builds the one a phase
    fits, holding the batches of exactly the epochs it runs (see
    :func:`cifar.data.order.index_batches`).
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    data: ImageData
    train_idx: np.ndarray
    val_idx: np.ndarray
    steps_per_epoch: int
    make_train: Callable[[int, int], tf.data.Dataset] | None = None
    make_eval: Callable[[int], tuple[tf.data.Dataset, tf.data.Dataset]] | None = None

    def train_epochs(self, first_epoch: int, epochs: int) -> tf.data.Dataset:
        """The training batches of global epochs ``first_epoch .. first_epoch + epochs - 1``."""
        return self.make_train(first_epoch, epochs)

    def at_eval_size(self, size: int) -> Datasets:
        """These splits with the validation and test pipelines resized to ``size`` instead."""
        val, test = self.make_eval(size)
        return dataclasses.replace(self, val=val, test=test)


def build_datasets(data: ImageData, data_config: Any, image_size: int, seed: int) -> Datasets:
    """Split off the validation set (or use the folder's own) and build the three pipelines.

    ``data_config`` is a :class:`~cifar.config.DataConfig` (``val_fraction``, ``batch_size``,
    ``augment``).
    """
    cfg = data_config
    if data.val_idx is not None:  # the image folder's own validation folder
        val_idx = np.asarray(data.val_idx)
        train_idx = np.setdiff1d(np.arange(len(data.y_train)), val_idx)
    elif data.groups_train is not None:  # near-copies stay on one side
        train_idx, val_idx = stratified_group_split(
            data.y_train, data.groups_train, cfg.val_fraction, seed
        )
    else:
        train_idx, val_idx = stratified_split(data.y_train, cfg.val_fraction, seed)
    check_no_group_straddles(data, train_idx, val_idx)
    augmenter = Augmenter(cfg.augment, seed=seed) if cfg.augment.enabled else None
    common = {"num_classes": data.num_classes, "batch_size": cfg.batch_size}

    def make_train(first_epoch: int, epochs: int) -> tf.data.Dataset:
        return make_dataset(
            data.x_train,
            data.y_train,
            training=True,
            seed=seed,
            augmenter=augmenter,
            indices=train_idx,
            first_epoch=first_epoch,
            epochs=epochs,
            image_size=image_size,
            **common,
        )

    def make_eval(size: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        val = make_dataset(data.x_train, data.y_train, image_size=size, indices=val_idx, **common)
        return val, make_dataset(data.x_test, data.y_test, image_size=size, **common)

    steps = steps_per_epoch(len(train_idx), cfg.batch_size)
    val, test = make_eval(image_size)
    train = make_train(0, 1)
    return Datasets(train, val, test, data, train_idx, val_idx, steps, make_train, make_eval)


def check_no_group_straddles(data: ImageData, train_idx: np.ndarray, val_idx: np.ndarray) -> None:
    """Record in ``data.extra["data_checks"]`` that no near-copy group spans two splits.

    A no-op for data without groups. With ``near_copies = "group"`` a straddling group is our
    bug (the splits are made to prevent it), so it raises DataError rather than train on it.
    """
    checks = data.extra.get("data_checks")
    if data.groups_train is None or data.groups_test is None or checks is None:
        return
    groups = np.concatenate([data.groups_train, data.groups_test])
    test_idx = len(data.groups_train) + np.arange(len(data.groups_test))
    straddling = straddling_groups(groups, train_idx, val_idx, test_idx)
    if len(straddling) and checks.get("near_copies") == "group":
        raise DataError(
            f"internal error: {len(straddling)} near-copy group(s) straddle the training, "
            "validation and test splits after a group-aware split"
        )
    checks["no_group_straddles_train_val_test"] = len(straddling) == 0
    checks["straddling_groups_train_val_test"] = len(straddling)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn's ``"balanced"`` loss weight per class (1.0 for absent classes)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    table = dict.fromkeys(range(num_classes), 1.0)
    table.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return table
