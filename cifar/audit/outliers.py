"""Outliers: photos unlike the rest of the folder (cleanlab's ``OutOfDistribution`` on features).

The score is cleanlab's: ``exp(-d / median d)`` of the mean cosine distance ``d`` to the
k nearest photos (0..1, low = unusual). A photo is flagged with the rule cleanlab's Datalab
uses for feature-based outliers: its mean neighbour distance exceeds the third quartile by more
than ``(1 / 0.37037 - 1)`` = 1.7 interquartile ranges (applied to ``-log score``, which is that
distance rescaled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Datalab's default threshold for feature-based outliers (OutlierIssueManager).
DATALAB_THRESHOLD = 0.37037
NEIGHBOURS = 10


@dataclass
class Outliers:
    """``score`` per photo (0..1, low = unusual) and ``flagged`` (past Datalab's rule)."""

    score: np.ndarray
    flagged: np.ndarray


def find_outliers(vectors: np.ndarray) -> Outliers:
    """cleanlab out-of-distribution scores of L2-normalised feature ``vectors``."""
    from cleanlab.outlier import OutOfDistribution

    k = min(NEIGHBOURS, len(vectors) - 1)
    ood = OutOfDistribution(params={"k": k})
    score = ood.fit_score(features=np.asarray(vectors, dtype=np.float32), verbose=False)
    distance = -np.log(np.maximum(np.asarray(score, dtype=np.float64), 1e-300))
    q1, q3 = np.percentile(distance, [25, 75])
    limit = q3 + (1 / DATALAB_THRESHOLD - 1) * (q3 - q1)
    return Outliers(score=score, flagged=distance > limit)
