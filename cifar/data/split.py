"""Stratified, seeded index splits (validation carved from the training set, test from a pool).

Splits are group-aware: rows that share a group id (near-copies of one photo, see
:mod:`cifar.data.near_copies`) always land on the same side, so a copy of a test photo is never
trained on. Without groups every row is its own group.
"""

from __future__ import annotations

import numpy as np

from cifar.errors import DataError


def stratified_split(
    labels: np.ndarray, val_fraction: float = 0.1, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted (train_idx, val_idx) with ``val_fraction`` of every class in validation."""
    return stratified_group_split(labels, np.arange(len(labels)), val_fraction, seed)


def stratified_group_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float = 0.1, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(keep_idx, held_idx)``: whole groups held out, about ``fraction`` of each class.

    A group counts for its most common label (ties: the smaller label). Per class, groups are
    shuffled (seeded) and held out while they fit in ``round(fraction * images)``; every class
    with more than one group keeps at least one group on each side. With one row per group this
    is the plain stratified split (the same rows for the same seed).
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {fraction}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    if labels.shape != groups.shape:
        raise ValueError(f"labels {labels.shape} and groups {groups.shape} differ in shape")
    classes, label_idx = np.unique(labels, return_inverse=True)
    _, group_idx = np.unique(groups, return_inverse=True)
    sizes = np.bincount(group_idx)
    per_class = np.zeros((len(sizes), len(classes)), dtype=np.int64)
    np.add.at(per_class, (group_idx, label_idx), 1)
    group_label = per_class.argmax(axis=1)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for cls in range(len(classes)):
        members = np.flatnonzero(group_label == cls)
        if len(members) == 0:
            continue
        rng.shuffle(members)
        n_images = int(sizes[members].sum())
        target = int(round(n_images * fraction))
        if n_images > 1:
            # Keep at least one image of every class on each side of the split.
            target = min(max(target, 1), n_images - 1)
        taken, count = [], 0
        for g in members:
            if count + sizes[g] <= target:
                taken.append(int(g))
                count += int(sizes[g])
                if count == target:
                    break
        if not taken and len(members) > 1:  # every group is larger than the target
            taken = [int(members[np.argmin(sizes[members])])]
        held += taken
    is_held = np.isin(group_idx, held)
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def straddling_groups(groups: np.ndarray, *sides: np.ndarray) -> np.ndarray:
    """Group ids found on more than one of ``sides`` (index arrays into ``groups``)."""
    seen = [np.unique(np.asarray(groups)[np.asarray(side, dtype=np.int64)]) for side in sides]
    if not seen:
        return np.zeros(0, dtype=np.asarray(groups).dtype)
    ids, counts = np.unique(np.concatenate(seen), return_counts=True)
    return ids[counts > 1]


def stratified_take(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of about ``n`` items (rounded per class) keeping the class proportions."""
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}")
    if n >= len(labels):
        return np.arange(len(labels))
    _, keep = stratified_split(labels, val_fraction=n / len(labels), seed=seed)
    return keep
