"""The in-memory container every loader returns: uint8 images at their stored size."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageData:
    """Train and test images (uint8, N x H x W x 3) with integer labels and class names.

    Images stay at their stored size (32x32 for CIFAR-10); resizing to the model's input
    happens per batch in the pipeline so no resized copy of the data set is ever held.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one stored image (H, W, 3)."""
        return tuple(self.x_train.shape[1:])

    def class_counts(self, split: str = "train") -> dict[str, int]:
        """Images per class in the ``train`` or ``test`` split."""
        labels = self.y_train if split == "train" else self.y_test
        counts = np.bincount(labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> ImageData:
        """A stratified subset with at most ``train``/``test`` images (for smoke runs and tests)."""
        from cifar.data.split import stratified_take

        x_train, y_train = self.x_train, self.y_train
        x_test, y_test = self.x_test, self.y_test
        if train is not None and train < len(y_train):
            idx = stratified_take(y_train, train, seed)
            x_train, y_train = x_train[idx], y_train[idx]
        if test is not None and test < len(y_test):
            idx = stratified_take(y_test, test, seed)
            x_test, y_test = x_test[idx], y_test[idx]
        return ImageData(
            x_train, y_train, x_test, y_test, list(self.class_names), self.source, dict(self.extra)
        )
