"""Likely label errors: cleanlab's confident learning on out-of-fold probabilities.

``cleanlab.filter.find_label_issues`` flags the photos whose given label disagrees with what
the out-of-fold model confidently predicts (pruning by the estimated noise rate), and
``cleanlab.rank.get_label_quality_scores`` (self-confidence: the predicted probability of the
given label) ranks every photo, lowest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LabelIssues:
    """Per photo: ``score`` (label quality, 0..1, low = suspect), ``suggested`` (most probable
    class), ``flagged`` (cleanlab counts it as a label issue); ``ranked`` orders every photo by
    score, most suspect first."""

    score: np.ndarray
    suggested: np.ndarray
    flagged: np.ndarray
    ranked: np.ndarray


def find_label_issues(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """cleanlab's label issues and quality scores for ``labels`` given out-of-fold ``probs``."""
    from cleanlab.filter import find_label_issues as cleanlab_find
    from cleanlab.rank import get_label_quality_scores

    flagged = np.asarray(cleanlab_find(labels, probs), dtype=bool)  # the mask, unranked
    score = get_label_quality_scores(labels, probs, method="self_confidence")
    ranked = np.argsort(score, kind="stable")
    return LabelIssues(score, probs.argmax(axis=1), flagged, ranked)
