"""Comparison with the other runs: every finished run beside this one, in one table."""

from __future__ import annotations

from cifar.report.formatting import _duration, _fmt, _int
from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """The comparison table (empty when no finished run is found)."""
    run, runs = ctx.run, ctx.runs
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
