"""cifar.calibration without Keras: ECE/NLL, temperature fitting, "not sure", AUROC, charts."""

from __future__ import annotations

import numpy as np
import pytest

from cifar.calibration import (
    apply_temperature,
    brier_score,
    calibrate,
    calibration_summary,
    choose_min_confidence,
    coverage_curve,
    default_target,
    ece_noise_floor,
    evaluate_threshold,
    expected_calibration_error,
    fit_temperature,
    is_not_sure,
    logits_from_probabilities,
    negative_log_likelihood,
    ood_auroc,
    reliability_bins,
    softmax,
)


def two_class(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    """Rows [c, 1 - c] (class 0 predicted, c > 0.5) labelled 0 when correct, else 1."""
    c = np.asarray(confidences, dtype=np.float64)
    return np.stack([c, 1 - c], axis=1), np.where(np.asarray(correct, bool), 0, 1)


def test_ece_matches_a_hand_computed_example():
    probs, labels = two_class([0.9, 0.95, 0.7, 0.88], [1, 0, 1, 1])
    # Bins of width 1/15: 0.9 and 0.88 share bin 13 (mean 0.89, all right), 0.95 sits alone
    # in bin 14 (wrong), 0.7 alone in bin 10 (right).
    expected = (2 * abs(1 - 0.89) + abs(0 - 0.95) + abs(1 - 0.7)) / 4
    assert expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-12)
    bins = reliability_bins(probs, labels)
    assert bins.count.tolist() == [0] * 10 + [1, 0, 0, 2, 1]
    assert bins.confidence[13] == pytest.approx(0.89) and bins.accuracy[14] == 0.0
    assert np.isnan(bins.accuracy[0]) and bins.as_dict()["accuracy"][0] is None


def test_bins_close_on_the_right():
    # (0, 0.5] and (0.5, 1]: a confidence of exactly 0.5 belongs to the first bin, 1.0 to the last.
    probs, labels = two_class([0.5, 1.0], [1, 0])
    assert reliability_bins(probs, labels, n_bins=2).count.tolist() == [1, 1]


def test_nll_brier_and_summary_by_hand():
    probs = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    labels = np.array([0, 1, 1])
    floor = 1e-12
    assert negative_log_likelihood(probs, labels) == pytest.approx(
        -(np.log(0.5) + np.log(0.75) + np.log(floor)) / 3
    )
    assert brier_score(probs[:1], labels[:1]) == pytest.approx(0.5)
    assert brier_score(np.array([[0.0, 1.0]]), np.array([1])) == 0.0
    summary = calibration_summary(probs, labels)
    assert summary["n"] == 3 and summary["accuracy"] == pytest.approx(2 / 3)
    assert summary["mean_confidence"] == pytest.approx(0.75)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="labels for"):
        expected_calibration_error(np.full((3, 2), 0.5), np.array([0, 1]))
    with pytest.raises(ValueError, match="0..1"):
        negative_log_likelihood(np.full((2, 2), 0.5), np.array([0, 2]))
    with pytest.raises(ValueError, match="NaN"):
        brier_score(np.array([[np.nan, 1.0]]), np.array([0]))


def overconfident(temperature: float, n: int = 20000, seed: int = 0):
    """float32 probabilities softmax(temperature * z) of labels drawn from softmax(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, 10)) + 2.0 * np.eye(10)[rng.integers(0, 10, n)]
    p = softmax(z)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return softmax(temperature * z).astype(np.float32), labels, z


@pytest.mark.parametrize("true_t", [2.5, 0.5])
def test_fit_recovers_a_known_temperature_and_lowers_ece(true_t):
    probs, labels, _ = overconfident(true_t)
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(true_t, rel=0.05)
    assert fit_temperature(probs, labels) == t  # deterministic
    calibrated = apply_temperature(probs, t)
    assert (calibrated.argmax(axis=1) == probs.argmax(axis=1)).all()
    before = expected_calibration_error(probs, labels)
    after = expected_calibration_error(calibrated, labels)
    assert after < 0.02 < before
    assert negative_log_likelihood(calibrated, labels) < negative_log_likelihood(probs, labels)


def test_a_validation_split_without_errors_keeps_t_off_its_bound():
    """With every validation prediction right, NLL falls as T shrinks, all the way to the
    search bound; the prior on log T keeps T finite and moderate."""
    from cifar.calibration.temperature import BOUNDS

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    margin = rng.uniform(0.5, 3.0, 300)  # under-confident but always right
    logits = np.stack([-margin, margin], axis=1) * np.where(labels[:, None] == 1, 1, -1)
    t = fit_temperature(logits, labels, from_logits=True)
    assert BOUNDS[0] * 2 < t < 1.0
    # On thousands of images with errors the prior changes nothing that matters.
    probs, many, _ = overconfident(2.5, n=20000)
    assert fit_temperature(probs, many) == pytest.approx(2.5, rel=0.05)


def test_ece_noise_floor_is_what_a_calibrated_model_measures():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 4000)
    probs = np.stack([confidence, 1 - confidence], axis=1)
    # Labels drawn from the probabilities themselves: calibrated by construction.
    measured = [
        expected_calibration_error(probs[:250], (rng.random(250) > confidence[:250]).astype(int))
        for _ in range(100)
    ]
    floor_250 = ece_noise_floor(probs[:250])
    assert floor_250 == pytest.approx(np.mean(measured), rel=0.2)
    assert ece_noise_floor(probs[:250]) == floor_250  # seeded
    # It shrinks about as 1 / sqrt(n).
    assert ece_noise_floor(probs) == pytest.approx(floor_250 / 4, rel=0.3)


def test_fit_from_logits_matches_fit_from_probabilities():
    probs, labels, z = overconfident(2.5, n=5000)
    from_logits = fit_temperature(2.5 * z + 7.0, labels, from_logits=True)  # any row shift
    assert from_logits == pytest.approx(fit_temperature(probs, labels), rel=1e-4)


def test_float16_probabilities_are_clipped_not_infinite():
    probs, labels, _ = overconfident(2.5, n=5000)
    half = probs.astype(np.float16)
    assert (half == 0).any()  # float16 underflows: log(0) would be -inf
    logits = logits_from_probabilities(half)
    assert np.isfinite(logits).all() and logits.min() == pytest.approx(np.log(2.0**-24))
    assert fit_temperature(half, labels) == pytest.approx(2.5, rel=0.1)


def test_calibrate_records_before_and_after():
    probs, labels, _ = overconfident(2.5, n=5000)
    fit = calibrate(probs, labels)
    record = fit.metadata()
    assert record["fitted_on"] == "validation" and record["n"] == 5000
    assert record["temperature"] == pytest.approx(fit.temperature, abs=1e-6)
    assert record["ece_after"] < record["ece_before"]
    assert record["nll_after"] < record["nll_before"]


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        softmax(np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(np.full((2, 2), 0.5), np.array([0, 1]), bounds=(2.0, 1.0))


# Confidences, highest first, and whether each prediction is right. Accuracy of the k most
# confident: 1 for k <= 6, then 6/7 = .857, 7/8 = .875, 7/9 = .778, 7/10 = .7.
CONF = [0.99, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55]
RIGHT = [1, 1, 1, 1, 1, 1, 0, 1, 0, 0]


def test_threshold_is_the_lowest_confidence_meeting_the_target():
    probs, labels = two_class(CONF, RIGHT)
    chosen = choose_min_confidence(probs, labels, target_accuracy=0.8, min_accepted=1)
    assert chosen.min_confidence == 0.65 and chosen.n_accepted == 8 and chosen.coverage == 0.8
    assert chosen.accepted_accuracy == pytest.approx(7 / 8) and chosen.target_met
    assert chosen.chosen_by == "validation" and chosen.metadata()["target_accuracy"] == 0.8
    # Default target: validation accuracy 0.7 -> 0.85, met by the same 8 images.
    assert default_target(0.7) == pytest.approx(0.85)
    assert choose_min_confidence(probs, labels, min_accepted=1).min_confidence == 0.65
    # 0.9 first fails at k = 7: the 6 most confident.
    assert choose_min_confidence(probs, labels, 0.9, min_accepted=1).min_confidence == 0.75


def test_threshold_respects_min_accepted_and_reports_an_unmet_target():
    probs, labels = two_class(CONF, RIGHT)
    chosen = choose_min_confidence(probs, labels, target_accuracy=0.8, min_accepted=9)
    assert not chosen.target_met  # 9 or 10 accepted: 0.778 or 0.7
    assert chosen.min_confidence == 0.6 and chosen.accepted_accuracy == pytest.approx(7 / 9)


def test_threshold_never_splits_tied_confidences():
    # Accepting "the top 2" is impossible: a threshold of 0.8 accepts both 0.8s (2 of 3 right).
    probs, labels = two_class([0.9, 0.8, 0.8, 0.7], [1, 1, 0, 1])
    assert choose_min_confidence(probs, labels, 0.8, min_accepted=1).min_confidence == 0.9
    everything = choose_min_confidence(probs, labels, 0.75, min_accepted=1)
    assert everything.min_confidence == 0.0 and everything.coverage == 1.0


def test_threshold_set_by_hand_and_the_not_sure_rule():
    probs, labels = two_class(CONF, RIGHT)
    by_hand = evaluate_threshold(probs, labels, 0.8)
    assert by_hand.n_accepted == 5 and by_hand.accepted_accuracy == 1.0
    assert by_hand.chosen_by == "hand" and by_hand.target_accuracy is None
    assert is_not_sure(probs, 0.8).tolist() == [False] * 5 + [True] * 5
    assert bool(is_not_sure(np.array([0.4, 0.35, 0.25]), 0.5))  # one prediction
    none = evaluate_threshold(probs, labels, 1.0)
    assert none.n_accepted == 0 and none.metadata()["accepted_accuracy"] is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate_threshold(probs, labels, 1.5)


def test_coverage_curve():
    probs, labels = two_class(CONF[::-1], RIGHT[::-1])  # order of the rows does not matter
    curve = coverage_curve(probs, labels)
    assert curve.coverage[-1] == 1.0 and curve.confidence[0] == 0.99
    assert curve.accuracy.tolist()[5:] == pytest.approx([1.0, 6 / 7, 7 / 8, 7 / 9, 0.7])
    assert curve.accuracy_at(0.8) == pytest.approx(7 / 8) and curve.accuracy_at(1.0) == 0.7
    assert curve.area == pytest.approx(np.mean(curve.accuracy))


def test_ood_auroc_sanity():
    rng = np.random.default_rng(0)
    sure = two_class(rng.uniform(0.9, 1.0, 50), np.ones(50))[0]
    unsure = two_class(rng.uniform(0.5, 0.6, 30), np.ones(30))[0]
    assert ood_auroc(sure, unsure) == 1.0
    assert ood_auroc(unsure, sure) == 0.0
    mixed = two_class(rng.uniform(0.5, 1.0, 4000), np.ones(4000))[0]
    assert ood_auroc(mixed[:2000], mixed[2000:]) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="each side"):
        ood_auroc(sure, sure[:0])


def test_charts_are_written(tmp_path):
    from cifar.calibration.plots import coverage_figure, reliability_figure
    from cifar.plots import save_figure

    probs, labels, _ = overconfident(2.5, n=2000)
    calibrated = apply_temperature(probs, fit_temperature(probs, labels))
    panels = {
        "before": reliability_bins(probs, labels),
        "after": reliability_bins(calibrated, labels),
    }
    fig = reliability_figure(panels)
    assert [ax.get_title() for ax in fig.axes][0].startswith("before: ECE 0.")
    threshold = choose_min_confidence(calibrated, labels)
    curves = {"before": coverage_curve(probs, labels), "after": coverage_curve(calibrated, labels)}
    for name, figure in {"rel": fig, "cov": coverage_figure(curves, threshold)}.items():
        path = save_figure(figure, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    with pytest.raises(ValueError):
        reliability_figure({})
