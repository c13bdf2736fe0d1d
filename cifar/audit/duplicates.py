"""Exact duplicates: files with the same bytes (sha256), within one class or across classes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass
class DuplicateGroup:
    """Rows of files with identical content; ``conflict`` when their labels differ."""

    rows: list[int]
    conflict: bool


def exact_duplicates(sha256: list[str], labels: np.ndarray) -> list[DuplicateGroup]:
    """Every group of two or more byte-identical files, in the order of their first file."""
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, digest in enumerate(sha256):
        rows_of[digest].append(row)
    return [
        DuplicateGroup(rows, conflict=len({int(labels[r]) for r in rows}) > 1)
        for rows in rows_of.values()
        if len(rows) > 1
    ]
