"""Transfer learning in numbers: what each phase and pretraining changed, measured only."""

from __future__ import annotations

from cifar.report.formatting import _int, _ratio
from cifar.report.runs import _pretrained
from cifar.report.sections.context import ReportContext
from cifar.report.sections.training import best_val_accuracy


def render(ctx: ReportContext) -> str:
    """Why (or whether) transfer learning paid off, stated from measured numbers only."""
    run, runs = ctx.run, ctx.runs
    lines = ["## Transfer learning: what the numbers say", ""]
    phases = run.metrics.get("phases", [])
    if phases and phases[0].get("trainable_params") is not None:
        p0 = phases[0]
        total = (p0.get("trainable_params") or 0) + (p0.get("non_trainable_params") or 0)
        lines.append(
            f"- Phase `{p0.get('name')}` trained {_int(p0.get('trainable_params'))} of "
            f"{_int(total)} parameters ({_ratio(p0.get('trainable_params'), total)})."
        )
    best = best_val_accuracy(run.history)
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
