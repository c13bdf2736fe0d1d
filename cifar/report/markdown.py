"""The text of ``REPORT.md``: the sections of :mod:`cifar.report.sections`, in reading order."""

from __future__ import annotations

from pathlib import Path

from cifar.report.runs import RunSummary
from cifar.report.sections import (
    architecture,
    calibration,
    comparison,
    confidence,
    data_checks,
    dataset,
    deployment,
    evaluation,
    files,
    justification,
    objective,
    title,
    top_losses,
    training,
)
from cifar.report.sections.context import ReportContext
from cifar.run_files import RunFiles

SECTIONS = (
    title,
    objective,
    dataset,
    data_checks,
    architecture,
    training,
    evaluation,
    calibration,
    confidence,
    top_losses,
    comparison,
    justification,
    deployment,
    files,
)


def render_markdown(run: RunFiles, plots: dict[str, Path], runs: list[RunSummary]) -> str:
    """The full report text (Markdown, images referenced relative to the run directory)."""
    rel = {tag: path.relative_to(run.run_dir).as_posix() for tag, path in plots.items()}
    context = ReportContext(run, rel, runs)
    texts = (section.render(context) for section in SECTIONS)
    return "\n\n".join(text.strip() for text in texts if text) + "\n"
