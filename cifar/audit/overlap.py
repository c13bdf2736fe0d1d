"""Overlapping classes: pairs of classes the out-of-fold model confuses (cleanlab's estimate)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassOverlap:
    """Two classes and cleanlab's estimate of how many photos sit between them."""

    class_a: str
    class_b: str
    photos: int
    joint_probability: float


def overlapping_classes(
    labels: np.ndarray, probs: np.ndarray, class_names: list[str], limit: int = 10
) -> list[ClassOverlap]:
    """The ``limit`` class pairs with most estimated overlap (cleanlab's
    ``find_overlapping_classes``: the off-diagonal of the confident joint, symmetrised)."""
    from cleanlab.dataset import find_overlapping_classes

    table = find_overlapping_classes(labels=labels, pred_probs=probs, class_names=class_names)
    rows = [
        ClassOverlap(
            str(row["Class Name A"]),
            str(row["Class Name B"]),
            int(row["Num Overlapping Examples"]),
            float(row["Joint Probability"]),
        )
        for _, row in table.head(limit).iterrows()
    ]
    return [r for r in rows if r.photos > 0]
