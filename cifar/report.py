"""The run report: plots, TensorBoard images, ``REPORT.md`` and a standalone ``REPORT.html``.

Everything in the report is read from the run's own files (``metrics.json``, ``history.json``,
``config.json``, ``evaluation.json``, ``predictions.npz``, ``export/metadata.json``) and from
the other runs beside it; no number is typed by hand. :func:`finalize_run` is what the Trainer
calls at the end of a run and what ``cifar report RUN_DIR`` runs again.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from cifar.errors import CifarError

PLOTS_DIR = "plots"
REPORT_MD = "REPORT.md"
REPORT_HTML = "REPORT.html"
TENSORBOARD_SUBDIR = "report"  # under tensorboard/, beside Keras's train/ and validation/
EXPORT_DIR = "export"
_EXTRA_EVALUATION = re.compile(r"^(.+)_evaluation\.json$")


@dataclass
class RunFiles:
    """The parsed files of one run directory (missing files are empty)."""

    run_dir: Path
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    evaluation: dict | None = None
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    export_metadata: dict = field(default_factory=dict)
    extra_evaluations: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunFiles:
        """Read a run directory; raises CifarError when it is not one."""
        from cifar.evaluation import EVALUATION_FILE, PREDICTIONS_FILE

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise CifarError(f"run directory {run_dir} does not exist")
        if not (run_dir / "metrics.json").is_file() and not (run_dir / "config.json").is_file():
            raise CifarError(
                f"{run_dir} is not a run directory (no metrics.json or config.json); "
                "pass a folder made by `cifar train`, e.g. runs/<name>-<timestamp>"
            )
        run = cls(
            run_dir,
            config=_read_json(run_dir / "config.json", {}),
            metrics=_read_json(run_dir / "metrics.json", {}),
            history=_read_json(run_dir / "history.json", []),
            evaluation=_read_json(run_dir / EVALUATION_FILE, None),
            export_metadata=_read_json(run_dir / EXPORT_DIR / "metadata.json", {}, strict=False),
        )
        if (run_dir / PREDICTIONS_FILE).is_file():
            with np.load(run_dir / PREDICTIONS_FILE) as npz:
                run.predictions = {key: npz[key] for key in npz.files}
        for path in sorted(run_dir.glob(f"*_{EVALUATION_FILE}")):
            data = _read_json(path, None, strict=False)
            if isinstance(data, dict) and "headline" in data:
                run.extra_evaluations[_EXTRA_EVALUATION.match(path.name).group(1)] = data
        return run

    @property
    def class_names(self) -> list[str]:
        """Class names from the evaluation, metrics or ``labels.txt``."""
        if self.evaluation:
            return self.evaluation["class_names"]
        names = self.metrics.get("data", {}).get("class_names")
        labels = self.run_dir / "labels.txt"
        if not names and labels.is_file():
            names = [line.strip() for line in labels.read_text().splitlines() if line.strip()]
        return list(names or [])

    @property
    def name(self) -> str:
        """Run name (the experiment's ``name``) or the folder name."""
        return self.metrics.get("name") or self.config.get("name") or self.run_dir.name


def _read_json(path: Path, default: Any, strict: bool = True) -> Any:
    """Parsed JSON file, ``default`` when absent; a corrupt file is an error unless not strict."""
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if not strict:
            return default
        raise CifarError(f"{path} is not valid JSON ({exc}); was the run interrupted?") from exc


# --------------------------------------------------------------------------- entry point


def finalize_run(run_dir: Path) -> Path:
    """Make the plots, log them to TensorBoard, write REPORT.md and REPORT.html; return the .md.

    Safe to call again (``cifar report``): files are rewritten and the report's TensorBoard
    events replaced, never duplicated.
    """
    run = RunFiles.load(run_dir)
    plots = make_plots(run)
    markdown_text = render_markdown(run, plots, collect_runs(run.run_dir.parent))
    md_path = run.run_dir / REPORT_MD
    md_path.write_text(markdown_text)
    write_html(markdown_text, run.run_dir / REPORT_HTML, run.run_dir, title=f"Run {run.name}")
    log_to_tensorboard(run, plots)
    return md_path


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


def log_to_tensorboard(run: RunFiles, plots: dict[str, Path]) -> Path:
    """Log the plots (and a metrics summary) as TensorBoard images under ``tensorboard/report``."""
    import tensorflow as tf

    from cifar.plots import log_images

    log_dir = run.run_dir / "tensorboard" / TENSORBOARD_SUBDIR
    # Only this function writes here: clear earlier events so a re-run does not duplicate them.
    for old in log_dir.glob("events.out.tfevents.*"):
        old.unlink()
    # Keras's TensorBoard logs epoch e at step e - 1; put the report at the last epoch.
    step = int(run.history[-1].get("epoch", len(run.history))) - 1 if run.history else 0
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        log_images(writer, {tag: path.read_bytes() for tag, path in plots.items()}, step)
        if run.evaluation:
            with writer.as_default():
                tf.summary.text("test_metrics", _headline_table(run.evaluation["headline"]), step)
    finally:
        writer.close()
    return log_dir


# --------------------------------------------------------------------------- other runs


@dataclass
class RunSummary:
    """One row of the comparison table."""

    run_dir: Path
    name: str
    model: str
    weights: str
    phases: str
    accuracy: float | None
    loss: float | None
    n_test: int | None
    training_seconds: float | None


def collect_runs(runs_root: Path) -> list[RunSummary]:
    """Every finished run (a folder with a readable metrics.json) under ``runs_root``."""
    rows = []
    for metrics_file in sorted(Path(runs_root).glob("*/metrics.json")):
        metrics = _read_json(metrics_file, None, strict=False)
        if not isinstance(metrics, dict):
            continue
        model = metrics.get("model", {})
        test = metrics.get("test") or {}
        phases = ", ".join(
            f"{p.get('name', '?')} ({p.get('epochs_run', '?')} ep)"
            for p in metrics.get("phases", [])
        )
        rows.append(
            RunSummary(
                run_dir=metrics_file.parent,
                name=metrics.get("name", metrics_file.parent.name),
                model=f"{model.get('name', '?')} @ {model.get('input_size', '?')}px",
                weights=_weights_label(model.get("weights")),
                phases=phases or "-",
                accuracy=test.get("accuracy"),
                loss=test.get("loss"),
                n_test=test.get("n"),
                training_seconds=metrics.get("training_seconds"),
            )
        )
    return rows


def _weights_label(weights: Any) -> str:
    if weights in (None, "", "none", "None"):
        return "none (from scratch)"
    if weights == "imagenet":
        return "ImageNet"
    return f"ImageNet ({Path(str(weights)).name})"


def _pretrained(weights: Any) -> bool:
    return weights not in (None, "", "none", "None")


# --------------------------------------------------------------------------- markdown


def render_markdown(run: RunFiles, plots: dict[str, Path], runs: list[RunSummary]) -> str:
    """The full report text (Markdown, images referenced relative to the run directory)."""
    rel = {tag: path.relative_to(run.run_dir).as_posix() for tag, path in plots.items()}
    sections = [
        _title(run),
        _objective(run),
        _dataset(run, rel),
        _architecture(run),
        _training(run, rel),
        _evaluation(run, rel),
        _comparison(run, runs),
        _justification(run, runs),
        _deployment(run),
        _files(run),
    ]
    return "\n\n".join(s.strip() for s in sections if s) + "\n"


def _title(run: RunFiles) -> str:
    finished = run.metrics.get("finished_at", "not finished")
    return (
        f"# Run report: {run.name}\n\n"
        f"Run directory `{run.run_dir.name}`; training finished {finished}; "
        f"report generated {datetime.now().isoformat(timespec='seconds')} "
        "from the run's own files by `cifar report`."
    )


def _objective(run: RunFiles) -> str:
    model = run.metrics.get("model") or run.config.get("model", {})
    names = run.class_names
    how = (
        f"by transfer learning: `{model.get('name', '?')}` starts from ImageNet-pretrained "
        "weights and is adapted to this data set in phases"
        if _pretrained(model.get("weights"))
        else f"with `{model.get('name', '?')}` trained from scratch (no pretrained weights)"
    )
    return (
        "## Objective\n\n"
        f"Classify small colour images into {len(names)} classes "
        f"({', '.join(names)}) {how}, and measure the result on a test set never used "
        "for training or model selection."
    )


def dataset_name(source: str, dataset: str = "cifar10") -> str:
    """Human name of a data source as loaded (the shared offline copy is a JPEG reconstruction)."""
    source = str(source or "")
    if "cifar-10-batches-py" in source and "shared" in source:
        return "CIFAR-10 (JPEG-q75 reconstruction)"
    if source.startswith("keras.datasets"):
        return "CIFAR-10 (keras.datasets download)"
    if dataset == "folder":
        return "image folder"
    if dataset == "cifar10":
        return "CIFAR-10"
    return dataset or "unknown data set"


def _dataset(run: RunFiles, rel: dict[str, str]) -> str:
    data = run.metrics.get("data", {})
    cfg = run.config.get("data", {})
    source = data.get("source", cfg.get("data_dir") or "unknown")
    name = dataset_name(source, data.get("dataset", cfg.get("dataset", "cifar10")))
    lines = [
        "## Data set",
        "",
        f"- **Data set:** {name}",
        f"- **Loaded from:** `{source}`",
        f"- **Images:** {_int(data.get('n_train'))} training, {_int(data.get('n_val'))} "
        f"validation (stratified {_fmt(cfg.get('val_fraction'), '.0%')} of the training set, "
        f"used for early stopping), {_int(data.get('n_test'))} test (untouched until the end)",
    ]
    if cfg.get("train_subset") or cfg.get("test_subset"):
        lines.append(
            f"- **Subsets:** train_subset = {cfg.get('train_subset')}, "
            f"test_subset = {cfg.get('test_subset')} (stratified; a reduced run)"
        )
    if name.endswith("(JPEG-q75 reconstruction)"):
        lines.append(
            "- This copy is a JPEG-q75 re-encoding of CIFAR-10 (official labels and order), so "
            "accuracies sit below published CIFAR-10 figures."
        )
    if "samples" in rel:
        lines += ["", f"![Sample training images]({rel['samples']})"]
    return "\n".join(lines)


def _architecture(run: RunFiles) -> str:
    model = run.metrics.get("model") or run.config.get("model", {})
    phases = run.metrics.get("phases", [])
    lines = [
        "## Architecture",
        "",
        f"- **Model:** `{model.get('name', '?')}`, input {model.get('input_size', '?')}x"
        f"{model.get('input_size', '?')} RGB, weights: {_weights_label(model.get('weights'))}",
        f"- **Parameters:** {_int(model.get('total_params'))} in total; "
        f"{_int(model.get('layers'))} top-level layers"
        + (
            f", {_int(phases[0].get('total_layers'))} counting the layers inside the base"
            if phases and phases[0].get("total_layers") != model.get("layers")
            else ""
        ),
    ]
    if phases:
        lines += [
            "",
            "| Phase | Trainable policy | Trainable layers | Trainable params | Frozen params |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {p.get('name')} | `{p.get('policy')}` | {_int(p.get('trainable_layers'))} / "
            f"{_int(p.get('total_layers'))} | {_int(p.get('trainable_params'))} | "
            f"{_int(p.get('non_trainable_params'))} |"
            for p in phases
        ]
    return "\n".join(lines)


def _training(run: RunFiles, rel: dict[str, str]) -> str:
    model = run.metrics.get("model") or run.config.get("model", {})
    cfg = run.config.get("data", {})
    aug = cfg.get("augment") or {}
    on = [f"{k} = {v}" for k, v in aug.items() if v not in (False, 0, 0.0, None)]
    source_size = model.get("source_size", 32)
    size = model.get("input_size", "?")
    resize = (
        f"resized per batch (bilinear) from {source_size}x{source_size} to {size}x{size}"
        if size != source_size
        else f"used at their stored {source_size}x{source_size} size"
    )
    lines = [
        "## Preprocessing and training strategy",
        "",
        f"- Images are kept as uint8 at {source_size}x{source_size} and {resize} inside the "
        "tf.data pipeline; pixel scaling is part of the model, so exported files take raw 0-255 "
        "RGB.",
        f"- Batch size {cfg.get('batch_size', '?')}; seed {run.config.get('seed', '?')}; "
        f"augmentation: {', '.join(on) if on else 'none'}.",
        "- Each phase recompiles the model with a fresh optimizer; early stopping restores the "
        "best weights of the phase before the next one starts.",
    ]
    phases = run.metrics.get("phases", [])
    if phases:
        best_acc = _best_val_accuracy(run.history)
        lines += [
            "",
            "| Phase | Optimizer | Learning rate | Epochs run / max | Best epoch | "
            "Best val loss | Best val accuracy | Time | Why it stopped |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {p.get('name')} | {p.get('optimizer', '?')} ({p.get('schedule', 'constant')}) | "
            f"{_fmt(p.get('learning_rate'), 'g')} | {p.get('epochs_run', '?')} / "
            f"{p.get('max_epochs', '?')} | {p.get('best_epoch', '?')} | "
            f"{_fmt(p.get('best_val_loss'), '.4f')} | {_fmt(best_acc.get(p.get('name')), '.4f')} | "
            f"{_duration(p.get('seconds'))} | {p.get('stop_reason', '?')} |"
            for p in phases
        ]
        lines.append(f"\nTotal training time: {_duration(run.metrics.get('training_seconds'))}.")
    if "training_curves" in rel:
        lines += ["", f"![Training curves]({rel['training_curves']})"]
    return "\n".join(lines)


def _best_val_accuracy(history: list[dict]) -> dict[str, float]:
    best: dict[str, float] = {}
    for row in history:
        value = row.get("val_accuracy")
        if value is not None:
            phase = row.get("phase", "")
            best[phase] = max(best.get(phase, value), value)
    return best


def _headline_table(headline: dict) -> str:
    rows = [
        ("Accuracy", "accuracy"),
        ("Loss (cross-entropy)", "loss"),
        ("Top-3 accuracy", "top3_accuracy"),
        ("Macro F1", "macro_f1"),
        ("Weighted F1", "weighted_f1"),
        ("Macro precision", "macro_precision"),
        ("Macro recall", "macro_recall"),
    ]
    lines = ["| Metric | Value |", "|---|---:|"]
    lines += [f"| {label} | {_fmt(headline.get(key), '.4f')} |" for label, key in rows]
    lines.append(f"| Test images | {_int(headline.get('n'))} |")
    return "\n".join(lines)


def _evaluation(run: RunFiles, rel: dict[str, str]) -> str:
    if not run.evaluation:
        return (
            "## Evaluation\n\nThis run has no evaluation yet; run `cifar evaluate "
            f"{run.run_dir}` to compute the test metrics."
        )
    ev = run.evaluation
    data = run.metrics.get("data", {})
    name = dataset_name(data.get("source", ""), data.get("dataset", "cifar10"))
    lines = [
        "## Evaluation on the test set",
        "",
        f"Test set of {name}, {_int(ev['headline'].get('n'))} images; "
        f"model kind `{ev['headline'].get('model_kind', 'keras')}`.",
        "",
        _headline_table(ev["headline"]),
        "",
        "| Class | Precision | Recall | F1 | Support |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {cls} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
        for cls, m in ev["per_class"].items()
    ]
    for tag, caption in (
        ("test_confusion_matrix", "Confusion matrix (colours row-normalised, cells are counts)"),
        ("per_class_f1", "F1 per class"),
    ):
        if tag in rel:
            lines += ["", f"![{caption}]({rel[tag]})"]
    pairs = ev.get("confused_pairs", [])
    if pairs:
        lines += [
            "",
            "### Most confused class pairs",
            "",
            "| Pair | Confusions | a taken for b | b taken for a |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {p['a']} / {p['b']} | {p['count']} | {p['a_as_b']} | {p['b_as_a']} |"
            for p in pairs[:5]
        ]
    errors = ev.get("most_confident_errors", [])
    if errors:
        lines += ["", "### Most confidently wrong test images", ""]
        if "misclassified" in rel:
            lines += [f"![Most confidently wrong test images]({rel['misclassified']})", ""]
        lines += ["| Test index | True | Predicted | Confidence |", "|---:|---|---|---:|"]
        lines += [
            f"| {e['index']} | {e['true']} | {e['predicted']} | {e['confidence']:.3f} |"
            for e in errors[:10]
        ]
    if run.extra_evaluations:
        lines += [
            "",
            "### Other model files on the same test set",
            "",
            "| Evaluation | Kind | Accuracy | Loss | Top-3 | Macro F1 | Images/s |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for prefix, other in run.extra_evaluations.items():
            h = other["headline"]
            lines.append(
                f"| `{prefix}` | {h.get('model_kind', '?')} | {_fmt(h.get('accuracy'), '.4f')} |"
                f" {_fmt(h.get('loss'), '.4f')} | {_fmt(h.get('top3_accuracy'), '.4f')} | "
                f"{_fmt(h.get('macro_f1'), '.4f')} | {_fmt(h.get('images_per_second'), '.0f')} |"
            )
    return "\n".join(lines)


def _comparison(run: RunFiles, runs: list[RunSummary]) -> str:
    if not runs:
        return ""
    lines = [
        "## Comparison with the other runs",
        "",
        f"Every finished run under `{run.run_dir.parent.name}/` (this run in bold).",
        "",
        "| Run | Model | Weights | Phases | Test accuracy | Test loss | Test images | "
        "Training time |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        label = f"`{r.run_dir.name}`"
        if r.run_dir.resolve() == run.run_dir.resolve():
            label = f"**{label}**"
        lines.append(
            f"| {label} | {r.model} | {r.weights} | {r.phases} | {_fmt(r.accuracy, '.4f')} | "
            f"{_fmt(r.loss, '.4f')} | {_int(r.n_test)} | {_duration(r.training_seconds)} |"
        )
    return "\n".join(lines)


def _justification(run: RunFiles, runs: list[RunSummary]) -> str:
    """Why (or whether) transfer learning paid off, stated from measured numbers only."""
    lines = ["## Transfer learning: what the numbers say", ""]
    phases = run.metrics.get("phases", [])
    if phases and phases[0].get("trainable_params") is not None:
        p0 = phases[0]
        total = (p0.get("trainable_params") or 0) + (p0.get("non_trainable_params") or 0)
        lines.append(
            f"- Phase `{p0.get('name')}` trained {_int(p0.get('trainable_params'))} of "
            f"{_int(total)} parameters ({_ratio(p0.get('trainable_params'), total)})."
        )
    best = _best_val_accuracy(run.history)
    names = [p.get("name") for p in phases if p.get("name") in best]
    losses = {p.get("name"): p.get("best_val_loss") for p in phases}
    for before, after in zip(names, names[1:], strict=False):
        gain = best[after] - best[before]
        text = (
            f"- Phase `{after}` moved the best validation accuracy from {best[before]:.4f} "
            f"(after `{before}`) to {best[after]:.4f} ({gain * 100:+.1f} points)"
        )
        if losses.get(before) is not None and losses.get(after) is not None:
            text += (
                f" and the best validation loss from {losses[before]:.4f} to {losses[after]:.4f}"
            )
        lines.append(text + ".")
    this = next((r for r in runs if r.run_dir.resolve() == run.run_dir.resolve()), None)
    weights = (run.metrics.get("model") or {}).get("weights")
    others = [
        r
        for r in runs
        if r is not this
        and r.accuracy is not None
        and (r.weights.startswith("none")) == _pretrained(weights)
    ]
    if this is not None and this.accuracy is not None and others:
        other = max(others, key=lambda r: r.accuracy)
        diff = (this.accuracy - other.accuracy) * 100
        kind = "from-scratch" if _pretrained(weights) else "pretrained"
        time_note = ""
        if this.training_seconds and other.training_seconds:
            time_note = (
                f", with {this.training_seconds / other.training_seconds:.1f}x its training time"
            )
        lines.append(
            f"- Test accuracy {this.accuracy:.4f} against {other.accuracy:.4f} for the best "
            f"{kind} run `{other.run_dir.name}` ({other.model}): {diff:+.1f} points{time_note}."
        )
        if this.n_test != other.n_test:
            lines.append(
                f"- The two runs were tested on different numbers of images ({_int(this.n_test)}"
                f" vs {_int(other.n_test)}), so the comparison is indicative."
            )
    else:
        opposite, example = (
            ("from-scratch baseline", "custom_cnn")
            if _pretrained(weights)
            else ("pretrained", "mobilenetv2_finetune")
        )
        lines.append(
            f"- No finished {opposite} run under `{run.run_dir.parent.name}/` to compare with "
            f"(train one, e.g. `cifar train {example}`, then `cifar report` this run again)."
        )
    return "\n".join(lines)


def export_artefacts(run: RunFiles) -> list[dict[str, Any]]:
    """Files in ``export/`` with their size on disk, joined with ``export/metadata.json``.

    Each row: ``file``, ``format``, ``bytes``, and when known the export check's ``accuracy``,
    ``agreement`` with Keras and single-image ``latency_ms`` (metadata, on the export's
    verification images) and the full ``test_accuracy`` from ``cifar evaluate --model``.
    """
    from cifar.evaluation import file_prefix

    export = run.run_dir / EXPORT_DIR
    if not export.is_dir():
        return []
    entries = run.export_metadata.get("artifacts") if isinstance(run.export_metadata, dict) else []
    described = {
        str(e.get("file")): e for e in entries or [] if isinstance(e, dict) and e.get("file")
    }
    rows = []
    for path in sorted(export.iterdir()):
        if path.name.startswith(".") or path.suffix in (".json", ".txt"):
            continue  # metadata.json, labels.txt, half-written temporaries
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        meta = described.get(path.name, {})
        evaluated = run.extra_evaluations.get(file_prefix(path).rstrip("_"))
        rows.append(
            {
                "file": path.name + ("/" if path.is_dir() else ""),
                "format": meta.get("format") or _kind_of(path),
                "bytes": sum(f.stat().st_size for f in files),
                "accuracy": _number(meta.get("accuracy")),
                "agreement": _number(meta.get("agreement")),
                "latency_ms": _number(meta.get("latency_ms")),
                "test_accuracy": evaluated["headline"].get("accuracy") if evaluated else None,
            }
        )
    return rows


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _kind_of(path: Path) -> str:
    if path.is_dir():
        return "savedmodel" if (path / "saved_model.pb").is_file() else "folder"
    return path.suffix.lstrip(".") or "file"


def _deployment(run: RunFiles) -> str:
    rows = export_artefacts(run)
    lines = ["## Deployment artefacts", ""]
    keras_file = run.run_dir / "best_model.keras"
    if keras_file.is_file():
        lines += [
            f"Trained Keras model `best_model.keras`: {_size(keras_file.stat().st_size)}.",
            "",
        ]
    if not rows:
        lines.append(
            f"No export yet: run `cifar export {run.run_dir}` to produce SavedModel, TFLite and "
            "ONNX files (they take raw 32x32 RGB images)."
        )
        return "\n".join(lines)
    check = (
        run.export_metadata.get("verification") if isinstance(run.export_metadata, dict) else None
    )
    check = check if isinstance(check, dict) else {}
    n_check = check.get("n_images")
    keras_row = check.get("keras") if isinstance(check.get("keras"), dict) else {}
    if n_check:
        lines += [
            f"The export check ran every file in its own runtime on {_int(n_check)} test images "
            f"(Keras model on the same images: accuracy "
            f"{_fmt(_number(keras_row.get('accuracy')), '.4f')}); the last column is the run's "
            "whole test set, from `cifar evaluate RUN_DIR --model FILE`.",
            "",
        ]
    lines += [
        "| File | Format | Size | Check accuracy | Agreement with Keras | Latency (1 image) | "
        "Test accuracy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `export/{r['file']}` | {r['format']} | {_size(r['bytes'])} | "
        f"{_fmt(r['accuracy'], '.4f')} | {_fmt(r['agreement'], '.2%')} | "
        f"{_fmt(r['latency_ms'], '.2f')}{' ms' if r['latency_ms'] is not None else ''} | "
        f"{_fmt(r['test_accuracy'], '.4f')} |"
        for r in rows
    ]
    failed = run.export_metadata.get("failed") if isinstance(run.export_metadata, dict) else None
    if isinstance(failed, dict) and failed:
        lines += ["", "Failed exports: " + "; ".join(f"{k}: {v}" for k, v in failed.items())]
    return "\n".join(lines)


def _files(run: RunFiles) -> str:
    names = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in run.run_dir.iterdir()
        if not p.name.endswith(".tmp")
    )
    return "## Files in this run\n\n" + ", ".join(f"`{n}`" for n in names)


# --------------------------------------------------------------------------- formatting


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else _fmt(value, "")


def _ratio(part: Any, total: Any) -> str:
    return f"{part / total:.1%}" if part is not None and total else "-"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"


# --------------------------------------------------------------------------- HTML


_IMG_SRC = re.compile(r'(<img[^>]*\ssrc=")([^"]+)(")')
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; }
img { max-width: 100%; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def write_html(markdown_text: str, path: Path, base_dir: Path, title: str = "Run report") -> Path:
    """Render the Markdown to one standalone HTML file with every local image embedded."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])

    def embed(match: re.Match) -> str:
        src = match.group(2)
        file = base_dir / src
        if src.startswith(("data:", "http:", "https:")) or not file.is_file():
            return match.group(0)
        data = base64.b64encode(file.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    body = _IMG_SRC.sub(embed, body)
    html = (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    path.write_text(html)
    return path
