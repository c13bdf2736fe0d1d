"""Calibrated confidence and "not sure": temperature scaling, ECE, selective classification.

One job per module: :mod:`~cifar.calibration.metrics` (ECE, NLL, Brier, reliability bins),
:mod:`~cifar.calibration.temperature` (fit T on validation predictions),
:mod:`~cifar.calibration.monotone` (a monotone map of the log-probabilities, for a model no
single T calibrates; it keeps every prediction),
:mod:`~cifar.calibration.fold` (put T into a Keras model's final Dense layer, so every export
is calibrated), :mod:`~cifar.calibration.selective` (the ``min_confidence`` threshold,
accuracy against coverage, out-of-distribution AUROC) and :mod:`~cifar.calibration.plots`.
Keras is imported only by ``fold`` (import it from there; the rest needs NumPy, SciPy,
scikit-learn and matplotlib only).

Example:
    >>> fit = calibrate(val_probs, val_labels)              # T fitted on validation only
    >>> from cifar.calibration.fold import fold_temperature
    >>> fold_temperature(model, fit.temperature)            # exports now calibrated
    >>> sure = choose_min_confidence(apply_temperature(val_probs, fit.temperature), val_labels)
    >>> is_not_sure(test_probs, sure.min_confidence)
"""

from cifar.calibration.metrics import (
    N_BINS,
    ReliabilityBins,
    brier_score,
    calibration_summary,
    ece_noise_floor,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from cifar.calibration.selective import (
    CoverageCurve,
    SelectiveThreshold,
    choose_min_confidence,
    coverage_curve,
    default_target,
    evaluate_threshold,
    is_not_sure,
    ood_auroc,
)
from cifar.calibration.temperature import (
    TemperatureFit,
    apply_temperature,
    calibrate,
    fit_temperature,
    logits_from_probabilities,
    softmax,
)

__all__ = [
    "N_BINS",
    "CoverageCurve",
    "ReliabilityBins",
    "SelectiveThreshold",
    "TemperatureFit",
    "apply_temperature",
    "brier_score",
    "calibrate",
    "calibration_summary",
    "choose_min_confidence",
    "coverage_curve",
    "default_target",
    "ece_noise_floor",
    "evaluate_threshold",
    "expected_calibration_error",
    "fit_temperature",
    "is_not_sure",
    "logits_from_probabilities",
    "negative_log_likelihood",
    "ood_auroc",
    "reliability_bins",
    "softmax",
]
