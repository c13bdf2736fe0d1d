"""Top losses: the test images the model got worst, with the true class's probability and a
heatmap of where the model looked.

Read from ``metrics.json``'s ``top_losses`` (overlays written by :mod:`cifar.explain` under
``plots/top_losses/``); runs without it (older runs) have no such section.
"""

from __future__ import annotations

from cifar.report.formatting import _cell, _fmt
from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """A table of the highest-loss test images, or "" when the run recorded none."""
    rows = ctx.run.metrics.get("top_losses")
    if not isinstance(rows, list) or not rows:
        return ""
    lines = [
        "## Top losses",
        "",
        f"The {len(rows)} test images with the highest loss (cross-entropy of the true class), "
        "worst first. The heatmap (`cifar explain`) is drawn over the image as the model sees "
        "it; bright areas weighed most.",
        "",
        "| # | Heatmap | True | Predicted | P(true) | Loss | File |",
        "|---:|---|---|---|---:|---:|---|",
    ]
    for rank, row in enumerate(rows, 1):
        lines.append(
            f"| {rank} | {_heatmap(ctx, row)} | {_cell(row.get('true', '?'))} | "
            f"{_cell(row.get('predicted', '?'))} | {_fmt(row.get('true_probability'), '.3f')} | "
            f"{_fmt(row.get('loss'), '.3f')} | `{_cell(row.get('file', row.get('index', '?')))}` |"
        )
    return "\n".join(lines)


def _heatmap(ctx: ReportContext, row: dict) -> str:
    rel = row.get("heatmap")
    if not rel or not (ctx.run.run_dir / rel).is_file():
        return "-"
    return f"![{_cell(row.get('true', ''))} taken for {_cell(row.get('predicted', ''))}]({rel})"
