"""Tell which kind of data set a folder holds: CIFAR-10's pickles or an image folder."""

from __future__ import annotations

import os
from pathlib import Path

from cifar.data.cifar10 import FOLDER_NAME, TEST_BATCH, TRAIN_BATCHES
from cifar.data.folder_layout import LAYOUT_HELP, looks_like_image_folder
from cifar.errors import DataError


def detect_dataset(path: str | os.PathLike) -> str:
    """``"cifar10"`` or ``"folder"`` for the data set in ``path``; DataError if neither."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist or is not a folder.")
    markers = [*TRAIN_BATCHES, TEST_BATCH]
    if any((path / m).is_file() for m in markers) or (path / FOLDER_NAME).is_dir():
        return "cifar10"
    if looks_like_image_folder(path):
        return "folder"
    raise DataError(
        f"{path} is neither a CIFAR-10 '{FOLDER_NAME}' folder ({', '.join(markers)}) nor an "
        f"image folder: {LAYOUT_HELP}."
    )
