"""The report's charts, saved as PNG files under the run's ``plots/``."""

from __future__ import annotations

from pathlib import Path

from cifar.run_files import COVERAGE_PLOT, PLOTS_DIR, RELIABILITY_PLOT, RunFiles

__all__ = ["PLOTS_DIR", "make_plots"]


def make_plots(run: RunFiles) -> dict[str, Path]:
    """Write every chart the run's files allow into ``plots/``; returns tag -> PNG path."""
    from cifar import plots as charts

    out = run.run_dir / PLOTS_DIR
    figures = {}
    if run.history:
        figures["training_curves"] = charts.training_curves_figure(run.history)
    if run.evaluation:
        figures["test_confusion_matrix"] = charts.confusion_matrix_figure(
            run.evaluation["confusion_matrix"],
            run.class_names,
            title=f"Test confusion matrix (n = {run.evaluation['headline']['n']})",
        )
        figures["per_class_f1"] = charts.per_class_f1_figure(run.evaluation["per_class"])
        images = run.predictions.get("worst_images")
        errors = run.evaluation.get("most_confident_errors", [])
        if images is not None and len(images) and errors:
            figures["misclassified"] = charts.misclassified_figure(images, errors)
    paths = {tag: charts.save_figure(fig, out / f"{tag}.png") for tag, fig in figures.items()}
    if (run.run_dir / "samples.png").is_file():
        paths["samples"] = run.run_dir / "samples.png"
    paths.update(calibration_plots(run))
    return paths


def calibration_plots(run: RunFiles) -> dict[str, Path]:
    """``reliability`` and ``coverage`` charts of a run whose metrics hold them.

    The run's own PNG (written at the end of training or by ``cifar evaluate``) is used when
    present; otherwise the chart is drawn from the numbers in ``metrics.json``, so a run that
    has the numbers always gets the chart.
    """
    from cifar.calibration.plots import coverage_figure, reliability_figure
    from cifar.plots import save_figure

    drawers = {
        "reliability": (RELIABILITY_PLOT, _reliability_panels, reliability_figure),
        "coverage": (COVERAGE_PLOT, _coverage_curves, coverage_figure),
    }
    paths = {}
    for tag, (rel, numbers, draw) in drawers.items():
        args = numbers(run.metrics)
        path = run.run_dir / rel
        if args is None:
            continue
        paths[tag] = path if path.is_file() else save_figure(draw(*args), path)
    return paths


def _reliability_panels(metrics: dict) -> tuple | None:
    from cifar.calibration.metrics import ReliabilityBins

    cal = metrics.get("calibration") or {}
    bins = cal.get("reliability") or {}
    if not bins.get("before") or not bins.get("after"):
        return None
    after = f"after T = {cal['temperature']:.3g}" if cal.get("temperature") else "after"
    return (
        {
            "before": ReliabilityBins.from_dict(bins["before"]),
            after: ReliabilityBins.from_dict(bins["after"]),
        },
    )


def _coverage_curves(metrics: dict) -> tuple | None:
    import numpy as np

    from cifar.calibration.selective import CoverageCurve, SelectiveThreshold

    sel = metrics.get("selective") or {}
    curve, test = sel.get("curve") or {}, sel.get("test") or {}
    if not curve.get("coverage") or sel.get("min_confidence") is None:
        return None
    coverage = np.asarray(curve["coverage"], dtype=np.float64)
    accuracy = np.asarray(curve["accuracy"], dtype=np.float64)
    # The stored curve keeps coverage and accuracy only; the thresholds are not drawn.
    curves = {"test set": CoverageCurve(coverage, accuracy, np.full(len(coverage), np.nan))}
    threshold = None
    if test.get("n_accepted"):
        threshold = SelectiveThreshold(
            min_confidence=float(sel["min_confidence"]),
            coverage=float(test["coverage"]),
            accepted_accuracy=float(test["accepted_accuracy"]),
            n_accepted=int(test["n_accepted"]),
            n=int(test["n"]),
            chosen_by=str(sel.get("chosen_by", "")),
        )
    return curves, threshold
