"""Every photo of a folder, listed with its class and split, decoded once, hashed by content.

The audit looks at all photos, whatever split folder holds them: ``train``, ``val`` and
``test`` for a folder with split folders, ``pool`` for a ``root/<class>/*`` folder (whose test
split is carved at training time). Decoding goes through the project's one decoder into the
cached store of :mod:`cifar.data.image_store`; unreadable files are findings, not a stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.array_cache import file_digest
from cifar.data.folder_layout import scan_folder
from cifar.data.image_store import decode_to_store

# The split of a root/<class>/* folder's photos: one pool, split at training time.
POOL = "pool"


@dataclass
class Inventory:
    """The decoded photos of a folder: row ``i`` of every list is one file."""

    root: Path
    class_names: list[str]
    files: list[str]
    labels: np.ndarray
    splits: list[str]
    images: np.ndarray
    digest: str
    sha256: list[str]
    unreadable: list[str]
    ignored: list[str]
    excluded: int = 0

    def __len__(self) -> int:
        return len(self.files)


def take_inventory(
    root: str | Path,
    size: int,
    cache_dir: Path,
    exclude: set[str] | None = None,
    log: Callable[[str], None] = print,
) -> Inventory:
    """Scan ``root`` (any layout), decode every photo at ``size`` and hash every file.

    ``exclude`` lists relative paths left out (an exclude file the user already accepted).
    """
    layout = scan_folder(root)
    exclude = exclude or set()
    entries = [
        (rel, label, split if layout.folders else POOL)
        for split, items in layout.splits.items()
        for rel, label in items
        if rel not in exclude
    ]
    files = [rel for rel, _, _ in entries]
    # One group for every file: the store's refusal of the same content in two groups is the
    # training loader's rule; the audit reports those files instead (duplicates.py).
    images, kept, bad, digest = decode_to_store(
        layout.root, files, ["all"] * len(files), size, cache_dir, skip_bad=True, log=log
    )
    kept_set = set(kept)
    rows = [e for e in entries if e[0] in kept_set]
    return Inventory(
        root=layout.root,
        class_names=list(layout.class_names),
        files=[rel for rel, _, _ in rows],
        labels=np.asarray([label for _, label, _ in rows], dtype=np.int64),
        splits=[split for _, _, split in rows],
        images=images,
        digest=digest,
        sha256=[file_digest(layout.root / rel) for rel, _, _ in rows],
        unreadable=bad,
        ignored=list(layout.ignored),
        excluded=sum(len(items) for items in layout.splits.values()) - len(entries),
    )
