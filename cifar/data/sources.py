"""Tell which kind of data set a folder holds: CIFAR-10's pickles or an image folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cifar.data.cifar10 import FOLDER_NAME, TEST_BATCH, TRAIN_BATCHES, load_cifar10
from cifar.data.dataset import ImageData
from cifar.data.duplicates import summary_line
from cifar.data.folder import load_image_folder
from cifar.data.folder_layout import LAYOUT_HELP, looks_like_image_folder
from cifar.errors import ConfigError, DataError


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


def load_dataset(
    data_config: Any,
    image_size: int,
    seed: int,
    cache_dir: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> ImageData:
    """Load what ``data_config`` names (a :class:`~cifar.config.DataConfig`), subset if asked.

    ``dataset = "auto"`` recognises the folder in ``data_dir`` (CIFAR-10 without one); image
    folders are decoded once at ``image_size`` into ``cache_dir``.
    """
    cfg = data_config
    kind = cfg.dataset
    if kind == "auto":
        kind = detect_dataset(cfg.data_dir) if cfg.data_dir else "cifar10"
    if kind == "folder":
        if not cfg.data_dir:
            raise ConfigError("invalid configuration: data.data_dir: required for 'folder'")
        stored = max(cfg.stored_size or image_size, image_size)
        data = load_image_folder(
            cfg.data_dir,
            image_size=stored,
            test_fraction=cfg.test_fraction,
            seed=seed,
            cache_dir=cache_dir,
            skip_bad=cfg.skip_bad_images,
            log=log,
            duplicates=cfg.duplicates,
            near_copies=cfg.near_copies,
            exclude=cfg.exclude,
        )
        log(
            f"data: image folder {data.source}: {data.extra['layout']} layout, "
            f"{len(data.y_train)} training and {len(data.y_test)} test images stored at "
            f"{stored}x{stored}; test images: {data.extra['test_source']}"
        )
        log(summary_line(data.extra["data_checks"], cfg.data_dir))
    else:
        data = load_cifar10(cfg.data_dir)
    data.extra["dataset"] = kind
    if cfg.train_subset or cfg.test_subset:
        data = data.subset(cfg.train_subset, cfg.test_subset, seed=seed)
    return data
