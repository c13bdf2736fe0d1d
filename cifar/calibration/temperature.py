"""Temperature scaling (Guo et al. 2017): one T > 0 fitted on validation predictions by NLL.

Calibrated probabilities are ``softmax(logits / T)``: T > 1 softens over-confident
predictions, T < 1 sharpens under-confident ones, and the predicted class never changes.

Logits come from the probabilities every runtime returns (``.keras``, SavedModel, TFLite,
ONNX): ``log p = z - logsumexp(z)`` differs from the final Dense layer's pre-activation ``z``
only by a constant per row, which softmax ignores, so ``softmax(log(p) / T)`` equals
``softmax(z / T)``. One path then serves every model file, including the shipped TFLite
model, whose pre-activations are not reachable. The only loss is where a probability
underflows to 0 (a logit gap beyond about 87 nats in float32, 17 in float16); those are
clipped to a floor (:func:`logits_from_probabilities`) and stay negligible after scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from cifar.calibration.metrics import PROBABILITY_FLOOR, calibration_summary, check_probabilities

# Search range for T: wide enough for any trained classifier (the runs here need 0.45 to 2.5).
BOUNDS = (0.05, 20.0)
# A weak prior log T ~ N(0, 1), added to the mean NLL as (log T)^2 / (2 n): a validation split
# with (almost) no errors has no NLL minimum (the sharper the better, down to the bound: a
# cats/dogs photo run with 1 error in 300 validation photos got T = 0.05 and a worse test NLL),
# while on thousands of images the prior moves T by well under 1 %.
PRIOR_SD = 1.0


def logits_from_probabilities(probs: np.ndarray, floor: float | None = None) -> np.ndarray:
    """``log(p)`` as float64 logits (exact up to a per-row constant), ``p`` clipped to ``floor``.

    The default floor is 1e-12, or the smallest positive number of the input's dtype if larger
    (6e-8 for float16 output, e.g. a float16 GPU delegate), so zeros land just below the
    smallest probability the model could have reported.
    """
    array = np.asarray(probs)
    if floor is None:
        floor = PROBABILITY_FLOOR
        if np.issubdtype(array.dtype, np.floating):
            floor = max(floor, float(np.finfo(array.dtype).smallest_subnormal))
    return np.log(np.clip(array.astype(np.float64), floor, 1.0))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` in float64."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities after temperature scaling: ``softmax(log(probs) / temperature)``."""
    return softmax(logits_from_probabilities(probs), temperature)


def temperature_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def fit_temperature(
    probs: np.ndarray,
    labels: np.ndarray,
    from_logits: bool = False,
    bounds: tuple[float, float] = BOUNDS,
) -> float:
    """The T minimising validation NLL of ``softmax(logits / T)`` (deterministic), with the
    weak prior ``PRIOR_SD`` on ``log T`` so that few or no validation errors stay finite.

    Args:
        probs: N x C validation probabilities (or logits with ``from_logits=True``).
        labels: N true classes.
        from_logits: ``probs`` holds logits (e.g. the final Dense pre-activations).
        bounds: the search range of T.

    NLL is convex in 1/T, hence unimodal in log T, so bounded Brent search on log T finds its
    minimum; the prior is convex in log T and only moves that minimum when the data leave T
    loose.
    """
    if from_logits:
        logits, labels = check_probabilities(probs, labels, what="logits")
    else:
        _, labels = check_probabilities(probs, labels)
        logits = logits_from_probabilities(probs)
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    weight = 1.0 / (2 * PRIOR_SD**2 * len(labels))
    result = minimize_scalar(
        lambda log_t: temperature_nll(logits, labels, float(np.exp(log_t))) + weight * log_t**2,
        bounds=(np.log(low), np.log(high)),
        method="bounded",
        options={"xatol": 1e-7},
    )
    return float(np.exp(result.x))


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature and the fitting split's metrics before and after scaling."""

    temperature: float
    fitted_on: str
    before: dict
    after: dict

    def metadata(self) -> dict:
        """The small record export metadata and the report keep (``temperature`` first)."""
        return {
            "temperature": round(self.temperature, 6),
            **fit_figures(self.fitted_on, self.before, self.after),
        }


def fit_figures(fitted_on: str, before: dict, after: dict) -> dict:
    """What a calibration fit records of the split it was fitted on: its size, ECE and NLL
    before and after (``before``/``after`` from :func:`calibration_summary`)."""
    return {
        "fitted_on": fitted_on,
        "n": before["n"],
        "ece_before": round(before["ece"], 6),
        "ece_after": round(after["ece"], 6),
        "nll_before": round(before["nll"], 6),
        "nll_after": round(after["nll"], 6),
    }


def calibrate(
    probs: np.ndarray, labels: np.ndarray, fitted_on: str = "validation"
) -> TemperatureFit:
    """Fit T on these (validation) predictions and measure them before and after.

    Never pass test predictions: the test set measures the fitted T, it must not choose it.
    """
    temperature = fit_temperature(probs, labels)
    return TemperatureFit(
        temperature=temperature,
        fitted_on=fitted_on,
        before=calibration_summary(probs, labels),
        after=calibration_summary(apply_temperature(probs, temperature), labels),
    )
