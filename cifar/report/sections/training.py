"""Preprocessing and training strategy: resizing, batches, augmentation, and each phase."""

from __future__ import annotations

from cifar.inference.input_size import input_size
from cifar.report.formatting import _duration, _fmt
from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """How images reach the model, and the per-phase training table with the curves."""
    run, rel = ctx.run, ctx.plots
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
        "Photos were decoded once at their stored size (short side resized, then "
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
    lines += eval_size_lines(model)
    phases = run.metrics.get("phases", [])
    if phases:
        best_acc = best_val_accuracy(run.history)
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


def best_val_accuracy(history: list[dict]) -> dict[str, float]:
    """Best validation accuracy of each phase, from ``history.json``'s rows."""
    best: dict[str, float] = {}
    for row in history:
        value = row.get("val_accuracy")
        if value is not None:
            phase = row.get("phase", "")
            best[phase] = max(best.get(phase, value), value)
    return best


def eval_size_lines(model: dict) -> list[str]:
    """The evaluation-size line (FixRes): at what size the trained weights were evaluated, why."""
    size, trained = model.get("eval_size"), model.get("input_size")
    choice = model.get("eval_size_choice") or {}
    if not size or (size == trained and not choice.get("candidates")):
        return []
    tried = "; ".join(
        f"{c['size']}: accuracy {c['val_accuracy']:.4f}, NLL {c['val_nll']:.4f}"
        for c in choice.get("candidates", [])
    )
    why = (
        f"chosen on the validation split by the lowest NLL after temperature scaling ({tried})"
        if choice.get("chosen_by") == "validation"
        else "as configured"
    )
    return [
        f"- Trained at {trained}x{trained}; calibrated, evaluated and saved at {size}x{size} "
        f"with the same weights (FixRes: training crops show objects larger than a whole photo "
        f"does), {why}. The model files run the network at {size}x{size}."
    ]
