"""Calibration metrics of class probabilities: ECE, NLL, Brier score, reliability bins.

ECE follows Guo et al. (2017), "On Calibration of Modern Neural Networks": the top-1
confidences fall into ``n_bins`` equal-width bins ``((m - 1) / M, m / M]``, and ECE is the
mean over bins of ``|accuracy - mean confidence|`` weighted by the share of predictions in the
bin. Every function takes N x C probabilities and N integer labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BINS = 15
# Probabilities are clipped to this floor before a logarithm, so that a true class a model
# rounds to probability 0 costs a large but finite loss (log 1e-12 = -27.6).
PROBABILITY_FLOOR = 1e-12
# Keras's epsilon: the test loss floors probabilities here, so it equals
# keras.losses.categorical_crossentropy.
KERAS_EPSILON = 1e-7


def check_probabilities(
    probs: np.ndarray, labels: np.ndarray, what: str = "probabilities"
) -> tuple[np.ndarray, np.ndarray]:
    """``probs`` (or logits) as float64 N x C, ``labels`` as int N; ValueError if they misfit."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 2:
        raise ValueError(f"expected N x C {what} (N >= 1, C >= 2), got {probs.shape}")
    if len(labels) != len(probs):
        raise ValueError(f"{len(labels)} labels for {len(probs)} rows of {what}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must lie in 0..{probs.shape[1] - 1}")
    if not np.isfinite(probs).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return probs, labels.astype(np.int64)


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin reliability data: the points of a reliability diagram.

    ``confidence`` and ``accuracy`` are NaN for empty bins; ``edges`` has ``n_bins + 1``
    values from 0 to 1.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: count-weighted mean of |accuracy - confidence|."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(gaps * self.count[filled]) / np.sum(self.count))

    def as_dict(self) -> dict:
        """JSON-ready lists (empty bins as None)."""

        def listed(values):
            return [None if np.isnan(v) else round(float(v), 6) for v in values]

        return {
            "edges": [round(float(e), 6) for e in self.edges],
            "confidence": listed(self.confidence),
            "accuracy": listed(self.accuracy),
            "count": [int(c) for c in self.count],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReliabilityBins:
        """The bins :meth:`as_dict` wrote (e.g. read back from ``metrics.json``)."""

        def array(key):
            return np.asarray([np.nan if v is None else v for v in data[key]], dtype=np.float64)

        count = np.asarray(data["count"], dtype=np.int64)
        bins = cls(array("edges"), array("confidence"), array("accuracy"), count)
        n = len(count)
        if len(bins.edges) != n + 1 or len(bins.confidence) != n or len(bins.accuracy) != n:
            raise ValueError(f"reliability bins of unequal lengths: {data}")
        return bins


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin ``((m-1)/M, m/M]`` of each confidence (an edge value closes its bin)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)


def reliability_bins(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS
) -> ReliabilityBins:
    """Top-1 confidence and accuracy in ``n_bins`` equal-width bins ``((m-1)/M, m/M]``."""
    probs, labels = check_probabilities(probs, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = _bin_index(confidence, n_bins)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / count
    return ReliabilityBins(edges, mean_conf, accuracy, count)


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS
) -> float:
    """ECE of the top-1 confidence with ``n_bins`` equal-width bins (Guo et al. 2017)."""
    return reliability_bins(probs, labels, n_bins).ece


def ece_noise_floor(
    probs: np.ndarray, n_bins: int = N_BINS, draws: int = 200, seed: int = 0
) -> float:
    """The ECE a perfectly calibrated model with these top-1 confidences would still measure
    on this many images: the mean over ``draws`` of the ECE when each image is right with
    probability equal to its confidence (seeded, so the same for the same input).

    On a few hundred test images it is not small (0.046 for a clothing10 run on 240 photos), so
    an ECE near it says "calibrated as far as this test set can tell", not "miscalibrated".
    """
    confidence = np.asarray(probs, dtype=np.float64).max(axis=1)
    n = len(confidence)
    if n == 0:
        return 0.0
    one_hot = np.eye(n_bins)[_bin_index(confidence, n_bins)]  # N x bins
    right = np.random.default_rng(seed).random((draws, n)) < confidence  # draws x N
    # Per bin, |hits - sum of confidences| / N is its share of the ECE.
    gaps = np.abs(right.astype(np.float64) @ one_hot - confidence @ one_hot)
    return float(gaps.sum(axis=1).mean() / n)


def image_losses(
    probs: np.ndarray, labels: np.ndarray, floor: float = PROBABILITY_FLOOR
) -> np.ndarray:
    """Per-image cross-entropy ``-log p(true class)``, the probability clipped to ``[floor, 1]``.

    The one loss rule of the project: the test loss (with Keras's epsilon as the floor), the
    NLL of calibration and the ranking of top losses are its mean or its order.
    """
    probs, labels = check_probabilities(probs, labels)
    true = np.clip(probs[np.arange(len(labels)), labels], floor, 1.0)
    return np.log(1.0 / true)  # log(1/p), not -log(p): a certain answer is 0.0, never -0.0


def negative_log_likelihood(
    probs: np.ndarray, labels: np.ndarray, floor: float = PROBABILITY_FLOOR
) -> float:
    """Mean ``-log p(true class)``, the probability clipped to ``[floor, 1]``."""
    return float(image_losses(probs, labels, floor).mean())


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over images of the squared distance between the probabilities and the one-hot label."""
    probs, labels = check_probabilities(probs, labels)
    onehot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def calibration_summary(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Accuracy, mean top-1 confidence, ECE, NLL and Brier score of one set of predictions."""
    probs, labels = check_probabilities(probs, labels)
    return {
        "n": len(labels),
        "accuracy": float(np.mean(probs.argmax(axis=1) == labels)),
        "mean_confidence": float(np.mean(probs.max(axis=1))),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "nll": negative_log_likelihood(probs, labels),
        "brier": brier_score(probs, labels),
    }
