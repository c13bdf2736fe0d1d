"""Every photo of a folder, listed with its class and split, decoded once, hashed by content.

The audit looks at all photos, whatever split folder holds them: ``train``, ``val`` and
``test`` for a folder with split folders, ``pool`` for a ``root/<class>/*`` folder (whose test
split is carved at training time). Decoding goes through the project's one decoder into the
cached store of :mod:`cifar.data.image_store`, whose pass also gives each file's sha256 and the
perceptual hashes of the whole picture (:mod:`cifar.data.near_copies`); unreadable files are
findings, not a stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.data.folder_layout import scan_folder
from cifar.data.image_store import Decoded, decode_to_store

# The split of a root/<class>/* folder's photos: one pool, split at training time.
POOL = "pool"
# Bump when what the audit keeps of a decoding pass changes.
ARRANGE_RULE = "audit: every readable file, sha256, perceptual hashes/v1"


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
    hashes: np.ndarray
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

    def arrange(decoded: Decoded) -> tuple[list[int], dict]:
        # Every readable file, in folder order: the audit drops nothing, it reports.
        rows = [i for i, digest in enumerate(decoded.sha256) if digest is not None]
        return rows, {
            "files": [decoded.files[i] for i in rows],
            "sha256": [decoded.sha256[i] for i in rows],
            "hashes": decoded.hashes[rows].tolist(),
        }

    images, extra, digest = decode_to_store(
        layout.root,
        files,
        size,
        cache_dir,
        arrange,
        key_parts={"arrange": ARRANGE_RULE},
        skip_bad=True,
        log=log,
    )
    split_of = {rel: (label, split) for rel, label, split in entries}
    kept = extra["files"]
    return Inventory(
        root=layout.root,
        class_names=list(layout.class_names),
        files=list(kept),
        labels=np.asarray([split_of[f][0] for f in kept], dtype=np.int64),
        splits=[split_of[f][1] for f in kept],
        images=images,
        digest=digest,
        sha256=list(extra["sha256"]),
        hashes=np.asarray(extra["hashes"], dtype=np.uint64).reshape(-1, 2),
        unreadable=list(extra["bad"]),
        ignored=list(layout.ignored),
        excluded=sum(len(items) for items in layout.splits.values()) - len(entries),
    )
