"""What every report section reads: the run's files, its charts and the runs beside it."""

from __future__ import annotations

from dataclasses import dataclass

from cifar.report.runs import RunSummary
from cifar.run_files import RunFiles


@dataclass(frozen=True)
class ReportContext:
    """One report's inputs.

    ``plots`` maps a chart's tag to its PNG path relative to the run folder (as the Markdown
    references it); ``runs`` are the finished runs beside this one, for comparison.
    """

    run: RunFiles
    plots: dict[str, str]
    runs: list[RunSummary]
