"""The container every loader returns: uint8 images at their stored size, labels, class names."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def portable_path(path: str | os.PathLike) -> str:
    """``path`` relative to the current folder (e.g. ``../shared/data/...``).

    Run records (metrics.json, export metadata, benchmark logs) are committed and read on other
    machines, so they name data by a relative path rather than this machine's absolute one.
    """
    return os.path.relpath(Path(path).resolve())


@dataclass
class ImageData:
    """Train and test images (uint8, N x H x W x 3) with integer labels and class names.

    Images stay at their stored size: 32x32 for CIFAR-10 (resized per batch in the pipeline,
    so no resized copy of the data set is ever held), the model's input size for image folders
    (decoded once into a memory-mapped array, so the arrays may live on disk).

    Args:
        x_train, y_train, x_test, y_test: images and integer labels.
        class_names: one name per label.
        source: where the data came from (a path relative to the current folder, see
            :func:`portable_path`, or ``keras.datasets...``).
        val_idx: rows of ``x_train`` that form a given validation set (an image folder's
            ``val/`` folder); None lets the Trainer carve a stratified one.
        digest: sha256 identifying the image content (set by loaders that already know it,
            e.g. a verified on-disk store); :meth:`content_digest` computes it otherwise.
        extra: loader-specific facts (the image folder's layout, which images form the test
            set, ``data_checks``: duplicates and near-copies found and left out) that the run's
            metrics record.
        files_train, files_test: each row's file, relative to the image folder (image folders
            only), so reports and the data audit can name photos.
        groups_train, groups_test: each row's near-copy group id (image folders only; rows
            sharing an id are one picture); the validation split keeps groups whole.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    extra: dict = field(default_factory=dict)
    val_idx: np.ndarray | None = None
    digest: str | None = None
    files_train: list[str] | None = None
    files_test: list[str] | None = None
    groups_train: np.ndarray | None = None
    groups_test: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one stored image (H, W, 3)."""
        return tuple(self.x_train.shape[1:])

    def content_digest(self) -> str:
        """sha256 of all images and labels (cached keys use it; computed once)."""
        if self.digest is None:
            from cifar.array_cache import array_digest

            self.digest = array_digest(self.x_train, self.y_train, self.x_test, self.y_test)
        return self.digest

    def class_counts(self, split: str = "train") -> dict[str, int]:
        """Images per class in the ``train`` or ``test`` split."""
        labels = self.y_train if split == "train" else self.y_test
        counts = np.bincount(labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> ImageData:
        """A stratified subset with at most ``train``/``test`` images (for smoke runs and tests).

        A given validation set (``val_idx``) shrinks in the same proportion as the rest.
        """
        from cifar.data.split import stratified_take

        x_train, y_train, val_idx = self.x_train, self.y_train, self.val_idx
        x_test, y_test = self.x_test, self.y_test
        rows = {"train": np.arange(len(y_train)), "test": np.arange(len(y_test))}
        if train is not None and train < len(y_train):
            if val_idx is None:
                idx = stratified_take(y_train, train, seed)
            else:
                fit_idx = np.setdiff1d(np.arange(len(y_train)), val_idx)
                share = train / len(y_train)
                parts = []
                for rows in (fit_idx, np.asarray(val_idx)):
                    n = max(int(round(len(rows) * share)), 1)
                    parts.append(rows[stratified_take(y_train[rows], n, seed)])
                idx = np.sort(np.concatenate(parts))
                val_idx = np.flatnonzero(np.isin(idx, parts[1]))
            x_train, y_train, rows["train"] = x_train[idx], y_train[idx], idx
        if test is not None and test < len(y_test):
            idx = stratified_take(y_test, test, seed)
            x_test, y_test, rows["test"] = x_test[idx], y_test[idx], idx
        return ImageData(
            x_train,
            y_train,
            x_test,
            y_test,
            list(self.class_names),
            self.source,
            dict(self.extra),
            val_idx,
            files_train=_take(self.files_train, rows["train"]),
            files_test=_take(self.files_test, rows["test"]),
            groups_train=_take(self.groups_train, rows["train"]),
            groups_test=_take(self.groups_test, rows["test"]),
        )


def _take(values: list | np.ndarray | None, rows: np.ndarray) -> list | np.ndarray | None:
    """``values`` at ``rows`` (a list stays a list), or None."""
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[i] for i in rows]
