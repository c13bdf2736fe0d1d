"""Exact duplicates and near-copies of an image folder: what is left out, and why.

Public photo sets often hold one photo twice (in one class: harmless unless the copies land in
different splits; in two classes: a wrong label), and many near-copies (resized, recompressed,
cropped or mirrored). Given the sha256 and perceptual hash of every file (computed in the one
decoding pass, :mod:`cifar.data.image_store`), these rules decide, per ``data.duplicates``:

- ``"drop"`` (default): identical files of one class keep one copy (a test or validation copy
  over a training one, else the first path); identical files in different classes (a label
  conflict) are all left out, of training and of every figure;
- ``"error"``: refuse a folder with identical files in two classes or two splits;
- ``"keep"``: no check.

and per ``data.near_copies``: ``"group"`` (default) keeps each group of near-copies inside one
split, and drops the training-side members of a group that also has a photo in a given test (or
validation) folder, so the test figure is earned; ``"report"`` only reports those overlaps;
``"off"`` does not hash. Every decision is recorded (file and reason).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from cifar.data.near_copies import (
    DEFAULT_MAX_DISTANCE,
    confirm_pairs,
    group_ids,
    near_copy_pairs,
)
from cifar.errors import DataError

DUPLICATE_POLICIES = ("drop", "error", "keep")
NEAR_COPY_POLICIES = ("group", "report", "off")
# Which copy of a photo survives: the one whose split is earliest here.
_KEEP_ORDER = {"test": 0, "val": 1, "train": 2, "pool": 2}
_LISTED = 20


@dataclass(frozen=True)
class Entry:
    """One listed photo: its path relative to the folder, label, and split folder.

    ``split`` is ``"train"``, ``"val"`` or ``"test"`` for a given split folder, ``"pool"`` for
    root/<class>/* (its test split is carved later).
    """

    rel: str
    label: int
    split: str


def exact_duplicates(
    entries: list[Entry], sha256: list[str | None], class_names: list[str], policy: str
) -> tuple[dict[int, str], dict]:
    """``(dropped, facts)``: rows to leave out with the reason, and counts for the record.

    Rows with no digest (unreadable files) are ignored. Raises DataError for ``"error"``.
    """
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(sha256):
        if digest is not None:
            by_digest[digest].append(i)
    sets = [rows for rows in by_digest.values() if len(rows) > 1]
    facts = {"identical_sets": len(sets), "identical_files": sum(len(r) for r in sets)}
    if policy == "keep" or not sets:
        return {}, {**facts, "label_conflicts": 0}
    conflicts = [rows for rows in sets if len({entries[i].label for i in rows}) > 1]
    if policy == "error":  # today's rule: refuse across classes or splits, allow the rest
        _refuse(entries, sets)
        return {}, {**facts, "label_conflicts": len(conflicts)}
    dropped: dict[int, str] = {}
    for rows in sets:
        if rows in conflicts:
            where = ", ".join(sorted({f"{class_names[entries[i].label]}/" for i in rows}))
            for i in rows:
                others = " = ".join(entries[j].rel for j in rows if j != i)
                dropped[i] = f"label conflict: the same file is filed under {where} ({others})"
            continue
        keep = min(rows, key=lambda i: (_KEEP_ORDER[entries[i].split], entries[i].rel))
        for i in rows:
            if i != keep:
                dropped[i] = f"exact duplicate of {entries[keep].rel}"
    return dropped, {**facts, "label_conflicts": len(conflicts)}


def _refuse(entries: list[Entry], sets: list[list[int]]) -> None:
    """DataError for identical files in two classes or two splits (``duplicates = "error"``)."""
    pairs = []
    for rows in sets:
        first = entries[rows[0]]
        for i in rows[1:]:
            if (entries[i].label, entries[i].split) != (first.label, first.split):
                pairs.append(f"{first.rel} = {entries[i].rel}")
    if pairs:
        raise DataError(
            f"{len(pairs)} file(s) have the same content as another file (the same image in two "
            "classes or in two splits would be a wrong label or a leaked test image); remove one "
            'of each pair, or set data.duplicates = "drop" to leave them out:\n  ' + _listed(pairs)
        )


def near_copy_groups(
    hashes: np.ndarray,
    sha256: list[str | None],
    alive: np.ndarray,
    policy: str,
    thumbnails: np.ndarray | None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> tuple[np.ndarray, dict]:
    """``(groups, facts)``: a group id per row (near-copies and identical files share one).

    Only rows where ``alive`` is true are paired (dropped and unreadable rows stay singletons).
    With ``policy == "off"`` only identical files are grouped (``thumbnails`` may be None:
    nothing was hashed). Otherwise a hash match counts only once ``thumbnails`` (from
    :func:`~cifar.data.near_copies.copy_thumbnails`, one per row) confirm it.
    """
    rows = np.flatnonzero(alive)
    edges = [np.zeros((0, 2), dtype=np.int64)]
    n_pairs = n_matches = 0
    if policy != "off":
        pairs = near_copy_pairs(hashes[rows], max_distance)
        n_matches = len(pairs)
        if thumbnails is None:
            raise ValueError("near-copies are confirmed by thumbnails: none were given")
        pairs = confirm_pairs(pairs, thumbnails[rows])
        n_pairs = len(pairs)
        edges.append(rows[pairs[:, :2]])
    first: dict[str, int] = {}
    for i in rows:  # identical files are one picture even if hashing is off
        digest = sha256[i]
        if digest is not None:
            if digest in first:
                edges.append(np.asarray([[first[digest], i]], dtype=np.int64))
            else:
                first[digest] = int(i)
    groups = group_ids(len(alive), np.concatenate(edges))
    sizes = np.bincount(groups[rows], minlength=len(alive)) if len(rows) else np.zeros(0)
    facts = {
        "near_copy_pairs": int(n_pairs),
        "hash_matches": int(n_matches),
        "near_copy_groups": int(np.count_nonzero(sizes > 1)),
        "photos_in_groups": int(sizes[sizes > 1].sum()),
        "max_hash_distance": max_distance if policy != "off" else None,
    }
    return groups, facts


def cross_split_copies(
    entries: list[Entry], groups: np.ndarray, alive: np.ndarray, policy: str
) -> tuple[dict[int, str], list[str]]:
    """``(dropped, overlaps)`` for groups spanning given split folders.

    A group with a test photo and training (or validation) photos, or a validation photo and
    training photos, overlaps; ``overlaps`` names each as ``train/... ~ test/...``. With
    ``policy == "group"`` the members on the training side (train, then validation if the group
    has a test photo) are dropped.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(alive):
        members[int(groups[i])].append(int(i))
    dropped: dict[int, str] = {}
    overlaps: list[str] = []
    for rows in members.values():
        splits = {entries[i].split for i in rows}
        if len(splits) < 2 or "pool" in splits:
            continue
        held = "test" if "test" in splits else "val"
        anchor = min((i for i in rows if entries[i].split == held), key=lambda i: entries[i].rel)
        name = "test" if held == "test" else "validation"
        for i in rows:
            if entries[i].split != held:
                overlaps.append(f"{entries[i].rel} ~ {entries[anchor].rel}")
                if policy == "group":
                    dropped[i] = f"near-copy of {name} image {entries[anchor].rel}"
    return dropped, sorted(overlaps)


def summary_line(checks: dict, data_dir: str | None = None) -> str:
    """One line: exact duplicates, near-copy groups, what was left out, where to look next."""
    parts = []
    if checks.get("duplicates") != "keep":
        parts.append(
            f"{checks.get('identical_sets', 0)} set(s) of identical files "
            f"({checks.get('label_conflicts', 0)} filed under two classes)"
        )
    if checks.get("near_copies") != "off":
        parts.append(
            f"{checks.get('near_copy_groups', 0)} near-copy group(s) "
            f"({checks.get('photos_in_groups', 0)} photos)"
        )
    dropped = checks.get("dropped", [])
    parts.append(f"{len(dropped)} photo(s) left out" if dropped else "nothing left out")
    where = f" --data-dir {data_dir}" if data_dir else ""
    return "data checks: " + ", ".join(parts) + f"; likely label errors: cifar audit{where}"


def _listed(items: list[str], limit: int = _LISTED) -> str:
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n  ".join(items[:limit]) + more
