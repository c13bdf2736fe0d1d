"""Near-copies: the same picture resized, recompressed, slightly cropped or mirrored.

Two signals, both mirror-aware: the perceptual hash of :mod:`cifar.data.near_copies` (pHash of
the photo and of its mirror, Hamming distance) and the cosine similarity of the flip-averaged
backbone features. Neither is enough alone: a pHash misses many 90 % crops, and on a set of
similar photos (flowers) unrelated photos reach a cosine of 0.9 while a 60 % resize of a
photo may score 0.88 against it. :data:`DEFAULT_RULE` (measured by
``benchmarks/audit_dirty.py``) flags a pair when the hashes are close, or when the cosine is
very high, or when both are moderately close. Pairs are joined into groups (connected
components); byte-identical files are left to :mod:`.duplicates`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.array_cache import ArrayCache
from cifar.data.near_copies import (
    DEFAULT_MAX_DISTANCE,
    group_ids,
    near_copy_pairs,
    perceptual_hash,
)

# Bump when the hashed pixels or the hash change.
HASH_RULE = "phash8+mirror of the decoded store/v1"
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


def photo_hashes(
    images: np.ndarray, digest: str, cache_dir: Path, log: Callable[[str], None] = print
) -> np.ndarray:
    """``(N, 2) uint64`` pHash of each decoded photo and of its mirror (cached)."""
    from PIL import Image

    cache = ArrayCache(cache_dir, log=log)
    key = cache.make_key(images=digest, rule=HASH_RULE)

    def write(out: np.ndarray) -> None:
        for i in range(len(images)):
            out[i] = perceptual_hash(Image.fromarray(np.asarray(images[i])))

    return cache.get_or_build(
        key, (len(images), 2), write, dtype="uint64", label="perceptual hashes"
    )


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
