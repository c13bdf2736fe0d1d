"""The text of ``REPORT.md``: one section per question a reader asks about the run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cifar.inference.input_size import input_size
from cifar.report.artefacts import _number, export_artefacts
from cifar.report.formatting import _duration, _fmt, _int, _ratio, _size
from cifar.report.runs import RunSummary, _pretrained, _weights_label
from cifar.run_files import BEST_MODEL, RunFiles


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
    folder = (run.metrics.get("data") or {}).get("dataset") == "folder"
    what = "photos from an image folder" if folder else "small colour images"
    return (
        "## Objective\n\n"
        f"Classify {what} into {len(names)} classes "
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
    val_from = data.get("val_source") or (
        f"stratified {_fmt(cfg.get('val_fraction'), '.0%')} of the training set"
    )
    lines = [
        "## Data set",
        "",
        f"- **Data set:** {name}",
        f"- **Loaded from:** `{source}`",
        f"- **Images:** {_int(data.get('n_train'))} training, {_int(data.get('n_val'))} "
        f"validation ({val_from}, used for early stopping), {_int(data.get('n_test'))} test "
        "(untouched until the end)",
    ]
    if data.get("layout"):
        lines.append(
            f"- **Folder layout:** {data['layout']}; the test figure comes from "
            f"{data.get('test_source', '?')}"
        )
    names, counts = data.get("class_names") or [], data.get("train_counts") or []
    if names and len(counts) == len(names) and len(names) <= 20:
        per_class = ", ".join(f"{n} {c:,}" for n, c in zip(names, counts, strict=True))
        lines.append(f"- **Training images per class:** {per_class}")
    if data.get("class_weight"):
        lines.append(f"- **Class weights:** {data['class_weight']} (loss weighted per class)")
    if data.get("skipped_unreadable"):
        lines.append(
            f"- **Skipped:** {len(data['skipped_unreadable'])} unreadable image file(s), "
            "listed in metrics.json"
        )
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
        *_backbone_line(model.get("name")),
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


def _backbone_line(name: str | None) -> list[str]:
    """Which Keras application the model is built on and how it scales its input."""
    from cifar.models.backbones import BACKBONES, SCALINGS  # imports Keras: only when asked

    entry = BACKBONES.get(str(name))
    if entry is None:
        return []
    return [
        f"- **Backbone:** `keras.applications.{entry.application}` without its top, then "
        "GlobalAveragePooling, Dense ReLU, Dropout, Dense softmax; raw 0-255 RGB input "
        f"{SCALINGS[entry.scaling]}"
    ]


def _training(run: RunFiles, rel: dict[str, str]) -> str:
    model = run.metrics.get("model") or run.config.get("model", {})
    cfg = run.config.get("data", {})
    aug = cfg.get("augment") or {}
    on = [f"{k} = {v}" for k, v in aug.items() if v not in (False, 0, 0.0, None)]
    source_size = input_size(run.metrics)
    stored = f"{source_size}x{source_size}" if source_size else "their stored size"
    size = model.get("input_size", "?")
    resize = (
        f"resized per batch (bilinear) from {stored} to {size}x{size}"
        if size != source_size
        else f"used at their stored {stored} size"
    )
    decoded = (
        "Photos were decoded once at the model's input size (short side resized, then "
        "centre-cropped) into a memory-mapped uint8 array. "
        if (run.metrics.get("data") or {}).get("dataset") == "folder"
        else ""
    )
    lines = [
        "## Preprocessing and training strategy",
        "",
        f"- {decoded}Images are kept as uint8 at {stored} and {resize} "
        "inside the tf.data pipeline; pixel scaling is part of the model, so exported files take "
        "raw 0-255 RGB.",
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


def _headline_table(headline: dict, n_classes: int | None = None) -> str:
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
    if n_classes is not None and n_classes <= 3:
        rows = [r for r in rows if r[1] != "top3_accuracy"]  # always 1 with 3 classes or fewer
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
        _headline_table(ev["headline"], len(ev.get("class_names") or []) or None),
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


def _deployment(run: RunFiles) -> str:
    rows = export_artefacts(run)
    lines = ["## Deployment artefacts", ""]
    keras_file = run.run_dir / BEST_MODEL
    if keras_file.is_file():
        lines += [
            f"Trained Keras model `{BEST_MODEL}`: {_size(keras_file.stat().st_size)}.",
            "",
        ]
    if not rows:
        size = input_size(run.metrics)
        takes = f"raw {size}x{size} RGB images" if size else "raw RGB images at the stored size"
        lines.append(
            f"No export yet: run `cifar export {run.run_dir}` to produce SavedModel, TFLite and "
            f"ONNX files (they take {takes})."
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
