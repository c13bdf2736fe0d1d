"""The report's charts, saved as PNG files under the run's ``plots/``."""

from __future__ import annotations

from pathlib import Path

from cifar.run_files import RunFiles

PLOTS_DIR = "plots"


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
    return paths
