"""Image-folder data sets at the model's resolution (see :mod:`cifar.data.folder_layout`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifar.data.dataset import ImageData, portable_path
from cifar.data.folder_layout import IMAGE_EXTENSIONS, FolderLayout, scan_folder
from cifar.data.image_store import decode_to_store
from cifar.data.split import stratified_split

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "split_files"]

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "cifar-transfer-cache"


def load_image_folder(
    root: str | os.PathLike,
    image_size: int = 160,
    test_fraction: float = 0.2,
    seed: int = 42,
    cache_dir: str | os.PathLike | None = None,
    skip_bad: bool = False,
    log: Callable[[str], None] = print,
) -> ImageData:
    """Load an image folder (any layout of :mod:`~cifar.data.folder_layout`) at ``image_size``.

    Every photo is decoded once into a verified memory-mapped uint8 array under
    ``cache_dir/images`` (default: a folder in the system's temp directory), short side
    resized to ``image_size`` and centre-cropped; a second call with the same files and size
    reads that array instead of decoding again. The arrays of the returned ``ImageData`` are
    slices of it: nothing is copied into memory.

    Args:
        root: the folder.
        image_size: the model's square input size (160 for MobileNetV2).
        test_fraction: share of each class held out as the test set when the folder has no
            test (or validation) folder.
        seed: seeds that split.
        cache_dir: where decoded arrays are kept.
        skip_bad: train without unreadable images (listed in a warning) instead of stopping.
        log: where progress and warnings go.
    """
    layout = scan_folder(root)
    parts = split_files(layout, test_fraction, seed)
    entries = [(rel, y, split) for split, items in parts.items() for rel, y in items]
    files = [rel for rel, _, _ in entries]
    groups = [f"{split}/{layout.class_names[y]}" for _, y, split in entries]
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    images, kept, bad, digest = decode_to_store(
        layout.root, files, groups, image_size, cache / "images", skip_bad, log
    )
    kept_set = set(kept)
    rows = [(y, split) for rel, y, split in entries if rel in kept_set]
    labels = np.asarray([y for y, _ in rows], dtype=np.int64)
    split_of = np.asarray([split for _, split in rows])
    n_fit = int(np.count_nonzero(split_of != "test"))
    # Which photos the test figures come from, so the run can record them (test_files.json).
    test_files = [
        (rel, layout.class_names[y])
        for rel, y, split in entries
        if split == "test" and rel in kept_set
    ]
    val_idx = np.flatnonzero(split_of[:n_fit] == "val") if parts["val"] else None
    return ImageData(
        x_train=images[:n_fit],
        y_train=labels[:n_fit],
        x_test=images[n_fit:],
        y_test=labels[n_fit:],
        class_names=list(layout.class_names),
        source=portable_path(layout.root),
        extra={**_facts(layout, bad), "test_files": test_files},
        val_idx=val_idx,
        digest=digest,
    )


def split_files(
    layout: FolderLayout, test_fraction: float, seed: int
) -> dict[str, list[tuple[str, int]]]:
    """``(relative path, label)`` of the ``"train"``, ``"val"`` and ``"test"`` splits.

    A test folder is the test set; without one the validation folder is; a folder of class
    folders only has a test set carved from it (``test_fraction`` of each class, seeded).
    """
    train = list(layout.splits["train"])
    val = list(layout.splits.get("val", []))
    test = list(layout.splits.get("test", []))
    if not layout.folders:  # root/<class>/*: carve the test set, seeded and stratified
        labels = np.asarray([y for _, y in train])
        keep, held = stratified_split(labels, test_fraction, seed)
        train, test = [train[i] for i in keep], [train[i] for i in held]
    elif not test:  # train + val only: the validation folder is the test set
        train, test, val = train, val, []
    return {"train": train, "val": val, "test": test}


def _facts(layout: FolderLayout, bad: list[str]) -> dict:
    return {
        "layout": layout.kind,
        "test_source": layout.test_source,
        "val_source": layout.val_source,
        "ignored_files": len(layout.ignored),
        "skipped_unreadable": bad,
    }
