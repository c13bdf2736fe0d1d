"""The monotone log-probability map: fitted on validation, order-preserving, better than T."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from cifar.calibration import apply_temperature, calibrate, calibration_summary, softmax
from cifar.calibration.monotone import MonotoneMap, fit_monotone_map


def _smoothed_predictions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions bent the way label smoothing bends them: labels drawn from true
    probabilities, reported through a kinked map of their log-probabilities (flat near the
    top, steep below), so no single T straightens them but a monotone map can."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 10)) * rng.uniform(1.0, 6.0, (n, 1))
    true_log_p = log_softmax(logits, axis=1)
    labels = (rng.uniform(size=(n, 1)) > np.exp(true_log_p).cumsum(1)).sum(1)
    bent = np.where(true_log_p > -3.0, 0.5 * true_log_p, -1.5 + 2.0 * (true_log_p + 3.0))
    return softmax(bent), labels


def test_map_beats_temperature_on_held_out_data_and_keeps_every_prediction():
    val_p, val_y = _smoothed_predictions(4000, 0)
    test_p, test_y = _smoothed_predictions(4000, 1)
    fit = fit_monotone_map(val_p, val_y)
    t = calibrate(val_p, val_y).temperature
    mapped = fit.mapping.apply(test_p)
    assert (mapped.argmax(1) == test_p.argmax(1)).all()
    np.testing.assert_allclose(mapped.sum(1), 1.0, atol=1e-9)
    by_t = calibration_summary(apply_temperature(test_p, t), test_y)
    by_map = calibration_summary(mapped, test_y)
    assert by_map["nll"] < by_t["nll"]
    assert by_map["ece"] < 0.5 * by_t["ece"]
    assert fit.metadata()["fitted_on"] == "validation"
    assert fit.after["nll"] < fit.before["nll"]


def test_relu_form_and_segments_agree():
    mapping = MonotoneMap(knots=(-3.0, -1.0), slopes=(0.5, 2.0, 1.0))
    x = np.array([-5.0, -3.0, -2.0, -1.0, 0.0])
    # Segment by segment: 0.5 * x up to -3, then slope 2 to -1, then slope 1.
    expected = np.array([-2.5, -1.5, -1.5 + 2.0, -1.5 + 4.0, -1.5 + 4.0 + 1.0])
    np.testing.assert_allclose(mapping.transform(x), expected)


@pytest.mark.parametrize(
    ("knots", "slopes"),
    [((-1.0, -2.0), (1.0, 1.0, 1.0)), ((-2.0, -1.0), (1.0, 0.0, 1.0)), ((-1.0,), (1.0,))],
)
def test_bad_maps_are_refused(knots, slopes):
    with pytest.raises(ValueError):
        MonotoneMap(knots=knots, slopes=slopes)
