"""A run's confidence: T fitted on validation and folded, then measured on the test set.

The Trainer calls :func:`fit_and_fold` once, after the last phase restored its best weights
and before ``best_model.keras`` is saved, so the saved model (and every export of it) gives
calibrated probabilities. It records T in ``calibration.json`` beside the model
(:func:`write_record`): ``cifar evaluate`` reads it back instead of fitting (and folding)
again. A resumed run restores the checkpoint's unfolded weights, so it folds exactly once too.

:func:`measure_run` then fills ``metrics.json``'s ``calibration``, ``selective`` and
``top_losses`` (schema: docs/evaluation.md) and draws ``plots/reliability.png`` and
``plots/coverage.png``. "Before" probabilities are the folded model's with T taken out again:
``softmax(log(p) * T)`` (:func:`~cifar.calibration.temperature.apply_temperature` with
``1 / T``), equal to the unfolded model's up to float rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cifar.calibration.metrics import calibration_summary, ece_noise_floor, reliability_bins
from cifar.calibration.ood import find_other_images, ood_record, predict_other
from cifar.calibration.selective import (
    choose_min_confidence,
    coverage_curve,
    evaluate_threshold,
)
from cifar.calibration.temperature import apply_temperature, calibrate
from cifar.run_files import (
    CALIBRATION_FILE,
    COVERAGE_PLOT,
    PREDICTIONS_FILE,
    RELIABILITY_PLOT,
    TOP_LOSSES_DIR,
    read_json,
    write_json,
)

# Points of the stored accuracy-against-coverage curve (the report draws it; 101 is smooth).
CURVE_POINTS = 101


@dataclass(frozen=True)
class FoldedTemperature:
    """The temperature inside ``best_model.keras`` (1.0 and ``folded=False``: none).

    Args:
        temperature: T folded into the final Dense layer.
        fitted_on: the split T was fitted on (always ``"validation"``).
        n_fit: images of that split.
        folded: True when the model file holds T (False for a run trained without it).
        fit: :meth:`~cifar.calibration.temperature.TemperatureFit.metadata` of the fit.
    """

    temperature: float = 1.0
    fitted_on: str = "validation"
    n_fit: int = 0
    folded: bool = False
    fit: dict | None = None

    def metadata(self) -> dict:
        """What ``calibration.json`` (and export metadata) keep."""
        return asdict(self)


def fit_and_fold(
    model, val_probs: np.ndarray, val_labels: np.ndarray, enabled: bool = True
) -> FoldedTemperature:
    """Fit T on the validation predictions of ``model`` and fold it into its final Dense layer.

    Call it once, on the model as trained (never on a model already folded: T would apply
    twice). ``enabled=False`` leaves the model alone and returns T = 1.
    """
    if not enabled:
        return FoldedTemperature(n_fit=int(len(val_labels)))
    from cifar.calibration.fold import fold_temperature

    fit = calibrate(val_probs, val_labels, fitted_on="validation")
    fold_temperature(model, fit.temperature)
    return FoldedTemperature(fit.temperature, "validation", len(val_labels), True, fit.metadata())


def write_record(run_dir: str | Path, folded: FoldedTemperature) -> Path:
    """``calibration.json``: the temperature now inside the run's ``best_model.keras``."""
    return write_json(Path(run_dir) / CALIBRATION_FILE, folded.metadata())


def read_record(run_dir: str | Path) -> FoldedTemperature | None:
    """The temperature a run folded into its model; None for a run trained before calibration
    was recorded (its model holds no T)."""
    data = read_json(Path(run_dir) / CALIBRATION_FILE, None)
    if data is None:
        return None
    return FoldedTemperature(
        temperature=float(data["temperature"]),
        fitted_on=str(data.get("fitted_on", "validation")),
        n_fit=int(data.get("n_fit", 0)),
        folded=bool(data.get("folded", True)),
        fit=data.get("fit"),
    )


def _rounded(summary: dict) -> dict:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in summary.items()}


def curve_points(probs: np.ndarray, labels: np.ndarray, points: int = CURVE_POINTS) -> dict:
    """Accuracy of the most confident share of predictions at ``points`` coverages in [0, 1]."""
    curve = coverage_curve(probs, labels)
    coverages = np.linspace(0.0, 1.0, points)[1:]
    return {
        "coverage": [round(float(c), 4) for c in coverages],
        "accuracy": [round(curve.accuracy_at(c), 6) for c in coverages],
    }


def confidence_metrics(
    val_probs: np.ndarray,
    val_labels: np.ndarray,
    test_probs: np.ndarray,
    test_labels: np.ndarray,
    folded: FoldedTemperature,
    min_confidence: float | None = None,
    target_accuracy: float | None = None,
) -> dict:
    """``metrics.json``'s ``calibration`` and ``selective`` (without ``ood``).

    Args:
        val_probs, test_probs: the calibrated model's probabilities (T already in them).
        folded: the temperature they hold; "before" is them with T taken out.
        min_confidence: a threshold set by hand; None chooses it on validation.
        target_accuracy: the target of that choice (None: half the validation error).
    """
    t = folded.temperature
    val_before = apply_temperature(val_probs, 1.0 / t)
    test_before = apply_temperature(test_probs, 1.0 / t)
    calibration = {
        "temperature": round(t, 6),
        "folded": folded.folded,
        "fitted_on": folded.fitted_on,
        "n_fit": int(len(val_labels)),
        "validation": {
            "before": _rounded(calibration_summary(val_before, val_labels)),
            "after": _rounded(calibration_summary(val_probs, val_labels)),
        },
        "test": {
            "before": _rounded(calibration_summary(test_before, test_labels)),
            "after": _rounded(calibration_summary(test_probs, test_labels)),
            "ece_noise_floor": round(ece_noise_floor(test_probs), 6),
        },
        "reliability": {
            "before": reliability_bins(test_before, test_labels).as_dict(),
            "after": reliability_bins(test_probs, test_labels).as_dict(),
        },
    }
    if min_confidence is None:
        sure = choose_min_confidence(val_probs, val_labels, target_accuracy)
    else:
        sure = evaluate_threshold(val_probs, val_labels, min_confidence, chosen_by="hand")
    on_test = evaluate_threshold(test_probs, test_labels, sure.min_confidence)
    test = on_test.metadata()
    selective = {
        **sure.metadata(),
        "test": {k: test[k] for k in ("coverage", "accepted_accuracy", "n_accepted", "n")},
        "curve": curve_points(test_probs, test_labels),
        "ood": None,
    }
    return {"calibration": calibration, "selective": selective}


def write_confidence_plots(run_dir: str | Path, metrics: dict, test_probs, test_labels) -> None:
    """``plots/reliability.png`` (test, before and after T) and ``plots/coverage.png``."""
    from cifar.calibration.plots import coverage_figure, reliability_figure
    from cifar.calibration.selective import evaluate_threshold as threshold_on
    from cifar.plots import save_figure

    run_dir = Path(run_dir)
    t = metrics["calibration"]["temperature"]
    before = apply_temperature(test_probs, 1.0 / t)
    panels = {"test, as trained": reliability_bins(before, test_labels)}
    if metrics["calibration"]["folded"]:
        panels[f"test, T = {t:.3f}"] = reliability_bins(test_probs, test_labels)
    save_figure(reliability_figure(panels), run_dir / RELIABILITY_PLOT)
    chosen = metrics["selective"]["min_confidence"]
    sure = threshold_on(test_probs, test_labels, chosen, metrics["selective"]["chosen_by"])
    curves = {"test": coverage_curve(test_probs, test_labels)}
    save_figure(coverage_figure(curves, sure), run_dir / COVERAGE_PLOT)


def measure_run(
    run_dir: str | Path,
    model,
    data: Any,
    val_idx: np.ndarray,
    image_size: int,
    folded: FoldedTemperature,
    calibration_config: Any,
    batch_size: int = 64,
    val_probs: np.ndarray | None = None,
    log=print,
) -> dict:
    """Everything the run's metrics say about its confidence, after the test evaluation.

    Args:
        run_dir: the run folder; its ``predictions.npz`` holds the test probabilities.
        model: the saved (calibrated) Keras model.
        data: the run's :class:`~cifar.data.ImageData`.
        val_idx: rows of ``data.x_train`` forming the validation split.
        image_size: the model's input size.
        folded: the temperature inside ``model``.
        calibration_config: a :class:`~cifar.config.CalibrationConfig`.
        val_probs: the model's validation probabilities if already known (else predicted).

    Returns:
        ``{"calibration": ..., "selective": ..., "top_losses": [...]}``.
    """
    from cifar.evaluation import chunk_predictor, predict_images
    from cifar.explain.top_losses import top_losses

    run_dir = Path(run_dir)
    cfg = calibration_config
    val_labels = np.asarray(data.y_train)[val_idx]
    if val_probs is None:
        val_probs = predict_images(model, data.x_train[val_idx], image_size, batch_size)
    with np.load(run_dir / PREDICTIONS_FILE) as npz:
        test_labels, test_probs = npz["labels"], npz["probabilities"]
    out = confidence_metrics(
        val_probs,
        val_labels,
        test_probs,
        test_labels,
        folded,
        cfg.min_confidence,
        cfg.target_accuracy,
    )
    kind = data.extra.get("dataset") or ("folder" if data.files_test is not None else "cifar10")
    other, why_not = find_other_images(list(data.class_names), kind, cfg.ood_dir)
    if other is None:
        out["selective"]["ood_skipped"] = why_not
    else:
        log(f"out-of-distribution check: {other.count} images from {other.source}")
        source_size = int(data.x_test.shape[1])
        probs = predict_other(chunk_predictor(model, image_size, batch_size), other, source_size)
        out["selective"]["ood"] = ood_record(test_probs, probs, other.source)
    write_confidence_plots(run_dir, out, test_probs, test_labels)
    _clear(run_dir / TOP_LOSSES_DIR)
    out["top_losses"] = top_losses(
        run_dir,
        model,
        data.x_test,
        test_labels,
        test_probs,
        list(data.class_names),
        files=data.files_test,
        n=cfg.top_losses,
    )
    return out


def _clear(folder: Path) -> None:
    """Remove the heatmaps of an earlier evaluation (other images may be the top losses now)."""
    if folder.is_dir():
        for png in folder.glob("*.png"):
            png.unlink()
