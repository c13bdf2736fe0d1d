"""Image-folder data sets (``root/<class_name>/*.png``), like ``image_dataset_from_directory``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cifar.data.dataset import ImageData
from cifar.data.split import stratified_split
from cifar.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def load_image_folder(
    root: str | os.PathLike,
    image_size: int = 32,
    test_fraction: float = 0.2,
    seed: int = 42,
) -> ImageData:
    """Load ``root/<class>/*`` images resized to ``image_size`` squared, uint8 RGB.

    If ``root`` has ``train/`` and ``test/`` sub-folders they are used as the splits (their class
    folders must match); otherwise a stratified ``test_fraction`` is held out as the test set.
    Every unreadable file is reported by path in one error.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder.")
    if (root / "train").is_dir() and (root / "test").is_dir():
        class_names = _class_names(root / "train")
        if _class_names(root / "test") != class_names:
            raise DataError(
                f"{root}: train/ and test/ have different class folders "
                f"({class_names} vs {_class_names(root / 'test')})."
            )
        x_train, y_train = _read_images(root / "train", class_names, image_size)
        x_test, y_test = _read_images(root / "test", class_names, image_size)
    else:
        class_names = _class_names(root)
        x, y = _read_images(root, class_names, image_size)
        train_idx, test_idx = stratified_split(y, test_fraction, seed)
        x_train, y_train, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    return ImageData(x_train, y_train, x_test, y_test, class_names, str(root.resolve()))


def _class_names(root: Path) -> list[str]:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise DataError(
            f"{root}: expected one sub-folder per class (at least 2), found {len(names)}."
        )
    return names


def _read_images(root: Path, class_names: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    from cifar.imageio import ImageError, load_image

    images, labels, bad = [], [], []
    for label, name in enumerate(class_names):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(f"{root / name}: no images ({', '.join(IMAGE_EXTENSIONS)}).")
        for file in files:
            try:
                pixels = load_image(file, size=size)
            except ImageError as exc:  # the message starts with the file's path
                bad.append(str(exc))
                continue
            images.append(pixels)
            labels.append(label)
    if bad:
        listed = "\n  ".join(bad[:20]) + (
            f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        )
        raise DataError(f"{len(bad)} unreadable image file(s) under {root}:\n  {listed}")
    return np.stack(images), np.asarray(labels, dtype=np.int64)
