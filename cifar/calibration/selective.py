""" "Not sure": a minimum top-1 confidence, chosen on validation, and how well confidence ranks.

Below ``min_confidence`` a prediction is answered "not sure" (its top 3 still shown). The
threshold is chosen on validation predictions (after temperature scaling, if any) as the
lowest confidence at which the accepted predictions reach a target accuracy.

The default target halves the validation error rate among accepted predictions:
``accuracy + (1 - accuracy) / 2`` (90.5% -> 95.25%, 97% -> 98.5%, a 50% smoke model -> 75%).
A fixed target such as 0.95 does not fit every model: a strong model already meets it on
every image, so it would never say "not sure", and a weak one never reaches it, so it would
always say it. Halving the error always gives the threshold something to do, and the cost
(coverage: the share still answered) is reported beside it. A target can be given instead,
and the threshold itself can be set by hand (:func:`evaluate_threshold`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cifar.calibration.metrics import check_probabilities

# Fewest validation images the accepted set may hold: below this its accuracy is noise
# (at 95% accuracy, 100 images give a standard error of 2.2 points).
MIN_ACCEPTED = 100


def is_not_sure(probs: np.ndarray, min_confidence: float) -> np.ndarray:
    """True where the top-1 probability is below ``min_confidence`` (one row or N rows)."""
    probs = np.asarray(probs)
    return probs.max(axis=-1) < min_confidence


def default_target(accuracy: float) -> float:
    """The default target accuracy of accepted predictions: half the error rate remains."""
    return accuracy + (1.0 - accuracy) / 2.0


@dataclass(frozen=True)
class SelectiveThreshold:
    """A ``min_confidence`` and what it does on the predictions it was measured on.

    ``coverage`` is the share of images at or above the threshold (answered), and
    ``accepted_accuracy`` their accuracy (NaN when none is accepted).
    """

    min_confidence: float
    coverage: float
    accepted_accuracy: float
    n_accepted: int
    n: int
    chosen_by: str
    target_accuracy: float | None = None
    target_met: bool | None = None

    def metadata(self) -> dict:
        """JSON-ready record (floats rounded, NaN as None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = None if np.isnan(value) else round(value, 6)
        return out


def evaluate_threshold(
    probs: np.ndarray, labels: np.ndarray, min_confidence: float, chosen_by: str = "hand"
) -> SelectiveThreshold:
    """Coverage and accepted accuracy of a given ``min_confidence`` (e.g. one set by hand)."""
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must lie in [0, 1], got {min_confidence}")
    probs, labels = check_probabilities(probs, labels)
    accepted = ~is_not_sure(probs, min_confidence)
    correct = probs.argmax(axis=1) == labels
    n_accepted = int(accepted.sum())
    return SelectiveThreshold(
        min_confidence=float(min_confidence),
        coverage=n_accepted / len(labels),
        accepted_accuracy=float(correct[accepted].mean()) if n_accepted else float("nan"),
        n_accepted=n_accepted,
        n=len(labels),
        chosen_by=chosen_by,
    )


def choose_min_confidence(
    probs: np.ndarray,
    labels: np.ndarray,
    target_accuracy: float | None = None,
    min_accepted: int = MIN_ACCEPTED,
) -> SelectiveThreshold:
    """The lowest ``min_confidence`` whose accepted validation predictions reach the target.

    Args:
        probs: N x C validation probabilities (calibrated ones if the model will be).
        labels: N true classes.
        target_accuracy: accuracy the accepted predictions must reach; default
            :func:`default_target` of the validation accuracy.
        min_accepted: fewest accepted images allowed (capped at N).

    The threshold is the confidence of the least confident accepted image, or 0 when every
    image can be accepted. When no threshold accepting at least ``min_accepted`` images
    reaches the target, the one with the best accepted accuracy is returned with
    ``target_met=False``.
    """
    probs, labels = check_probabilities(probs, labels)
    n = len(labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    if target_accuracy is None:
        target_accuracy = default_target(float(correct.mean()))
    if not 0.0 < target_accuracy <= 1.0:
        raise ValueError(f"target_accuracy must lie in (0, 1], got {target_accuracy}")
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    accuracy_at = np.cumsum(correct[order]) / np.arange(1, n + 1)
    # A threshold accepts every image at least as confident, so only cuts between distinct
    # confidences (and the full set) are reachable: k images accepted, k in `sizes`.
    sizes = np.flatnonzero(np.append(conf_sorted[1:] < conf_sorted[:-1], True)) + 1
    sizes = sizes[sizes >= min(max(min_accepted, 1), n)]
    meeting = sizes[accuracy_at[sizes - 1] >= target_accuracy - 1e-12]
    met = len(meeting) > 0
    if met:
        k = int(meeting.max())
    else:  # best accepted accuracy; the largest such set on ties
        best = accuracy_at[sizes - 1].max()
        k = int(sizes[accuracy_at[sizes - 1] >= best - 1e-12].max())
    threshold = 0.0 if k == n else float(conf_sorted[k - 1])
    result = evaluate_threshold(probs, labels, threshold, chosen_by="validation")
    return SelectiveThreshold(
        **{**asdict(result), "target_accuracy": float(target_accuracy), "target_met": met}
    )


@dataclass(frozen=True)
class CoverageCurve:
    """Accuracy of the k most confident predictions against coverage k / N, k = 1..N."""

    coverage: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray  # the k-th highest confidence: the threshold giving that coverage

    def accuracy_at(self, coverage: float) -> float:
        """Accuracy of the most confident ``coverage`` share of the predictions."""
        k = int(np.clip(np.ceil(coverage * len(self.coverage)), 1, len(self.coverage)))
        return float(self.accuracy[k - 1])

    @property
    def area(self) -> float:
        """Mean accuracy over coverages (area under the curve; 1.0 for a perfect model)."""
        return float(np.mean(self.accuracy))


def coverage_curve(probs: np.ndarray, labels: np.ndarray) -> CoverageCurve:
    """Selective classification: sort by confidence, accuracy of the top k for every k."""
    probs, labels = check_probabilities(probs, labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    order = np.argsort(-confidence, kind="stable")
    n = len(labels)
    k = np.arange(1, n + 1)
    return CoverageCurve(k / n, np.cumsum(correct[order]) / k, confidence[order])


def ood_auroc(in_probs: np.ndarray, out_probs: np.ndarray) -> float:
    """AUROC of the top-1 probability separating in-distribution from other images.

    1.0: every known-class image is more confident than every image of something else;
    0.5: confidence does not tell them apart.
    """
    from sklearn.metrics import roc_auc_score

    in_scores = np.asarray(in_probs, dtype=np.float64).max(axis=1)
    out_scores = np.asarray(out_probs, dtype=np.float64).max(axis=1)
    if len(in_scores) == 0 or len(out_scores) == 0:
        raise ValueError("ood_auroc needs at least one image on each side")
    truth = np.concatenate([np.ones(len(in_scores)), np.zeros(len(out_scores))])
    return float(roc_auc_score(truth, np.concatenate([in_scores, out_scores])))
