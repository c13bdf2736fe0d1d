"""Near-copies: the same picture resized, recompressed, slightly cropped or mirrored.

Two signals, both mirror-aware: the perceptual hash of :mod:`cifar.data.near_copies` (pHash of
the whole picture and of its mirror, computed while decoding; Hamming distance) and the cosine
similarity of the flip-averaged backbone features. Neither is enough alone: resizes and
recompressions keep a pHash distance of 0 but may fall to a cosine of 0.72, 90 % crops move the
pHash by 4-10 (as far as some unrelated photos) while keeping a cosine of 0.94-0.97, and on a
set of similar photos (flowers) unrelated photos reach a cosine of 0.9. :data:`DEFAULT_RULE`
(measured by ``benchmarks/audit_dirty.py --tune``) flags a pair when the hashes are nearly equal,
or the cosine is very high, or both are close. Pairs are joined into groups (connected
components); byte-identical files are left to :mod:`.duplicates`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cifar.data.near_copies import (
    DEFAULT_MAX_DISTANCE,
    group_ids,
    near_copy_pairs,
)

# Candidate pairs: everything any rule below could flag (cosine is the costly side to widen).
CANDIDATE_COSINE = 0.8
_CHUNK = 1024


@dataclass(frozen=True)
class NearCopyRule:
    """A pair is a near-copy when ``hash <= max_hash``, or ``cosine >= min_cosine``, or both
    ``hash <= joint_hash`` and ``cosine >= joint_cosine`` (a None part is off)."""

    max_hash: int | None = 6
    min_cosine: float | None = 0.97
    joint_hash: int | None = 16
    joint_cosine: float | None = 0.85

    def describe(self) -> str:
        """The rule in words, for the report."""
        parts = []
        if self.max_hash is not None:
            parts.append(f"pHash distance <= {self.max_hash}")
        if self.min_cosine is not None:
            parts.append(f"cosine >= {self.min_cosine:g}")
        if self.joint_hash is not None and self.joint_cosine is not None:
            parts.append(f"(pHash <= {self.joint_hash} and cosine >= {self.joint_cosine:g})")
        return " or ".join(parts) or "nothing"

    def matches(self, hash_distance: np.ndarray, cosine: np.ndarray) -> np.ndarray:
        """Boolean mask over candidate pairs."""
        hit = np.zeros(len(cosine), dtype=bool)
        if self.max_hash is not None:
            hit |= hash_distance <= self.max_hash
        if self.min_cosine is not None:
            hit |= cosine >= self.min_cosine
        if self.joint_hash is not None and self.joint_cosine is not None:
            hit |= (hash_distance <= self.joint_hash) & (cosine >= self.joint_cosine)
        return hit


DEFAULT_RULE = NearCopyRule()


@dataclass
class CopyPairs:
    """Pairs ``(i, j)`` with ``i < j``, their pHash distance and feature cosine."""

    pairs: np.ndarray
    hash_distance: np.ndarray
    cosine: np.ndarray

    def select(self, mask: np.ndarray) -> CopyPairs:
        """The pairs where ``mask`` is true."""
        return CopyPairs(self.pairs[mask], self.hash_distance[mask], self.cosine[mask])

    def __len__(self) -> int:
        return len(self.pairs)


def candidate_pairs(hashes: np.ndarray, vectors: np.ndarray) -> CopyPairs:
    """Every pair close by hash (the loader's distance) or by cosine (>= CANDIDATE_COSINE)."""
    by_hash = near_copy_pairs(hashes, DEFAULT_MAX_DISTANCE)[:, :2]
    by_cosine = []
    for start in range(0, len(vectors), _CHUNK):
        sims = vectors[start : start + _CHUNK] @ vectors.T
        rows, cols = np.nonzero(sims >= CANDIDATE_COSINE)
        keep = cols > rows + start
        by_cosine.append(np.stack([rows[keep] + start, cols[keep]], axis=1))
    pairs = np.unique(np.concatenate([by_hash.reshape(-1, 2), *by_cosine]).astype(np.int64), axis=0)
    i, j = pairs[:, 0], pairs[:, 1]
    cosine = np.einsum("pd,pd->p", vectors[i], vectors[j]).astype(np.float64)
    h = np.asarray(hashes, dtype=np.uint64)
    distance = np.minimum(np.bitwise_count(h[i, 0] ^ h[j, 0]), np.bitwise_count(h[i, 0] ^ h[j, 1]))
    return CopyPairs(pairs, distance.astype(np.int64), cosine)


def near_copies(
    hashes: np.ndarray,
    vectors: np.ndarray,
    sha256: list[str],
    rule: NearCopyRule = DEFAULT_RULE,
) -> tuple[CopyPairs, np.ndarray]:
    """``(pairs, group id per photo)`` of near-copies by ``rule``, byte-identical pairs left
    out (they are exact duplicates)."""
    found = candidate_pairs(hashes, vectors)
    identical = np.asarray([sha256[i] == sha256[j] for i, j in found.pairs], dtype=bool)
    found = found.select(rule.matches(found.hash_distance, found.cosine) & ~identical)
    return found, group_ids(len(vectors), found.pairs)
