"""Stratified, seeded index splits (validation carved from the training set)."""

from __future__ import annotations

import numpy as np

from cifar.errors import DataError


def stratified_split(
    labels: np.ndarray, val_fraction: float = 0.1, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted (train_idx, val_idx) with ``val_fraction`` of every class in validation."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train_parts, val_parts = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        n_val = int(round(len(members) * val_fraction))
        if len(members) > 1:
            # Keep at least one image of every class on each side of the split.
            n_val = min(max(n_val, 1), len(members) - 1)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def stratified_take(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of about ``n`` items (rounded per class) keeping the class proportions."""
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}")
    if n >= len(labels):
        return np.arange(len(labels))
    _, keep = stratified_split(labels, val_fraction=n / len(labels), seed=seed)
    return keep
