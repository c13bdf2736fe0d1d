"""Title: the run's name, folder, when training finished and when the report was made."""

from __future__ import annotations

from datetime import datetime

from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """The report's heading and provenance line."""
    run = ctx.run
    finished = run.metrics.get("finished_at", "not finished")
    return (
        f"# Run report: {run.name}\n\n"
        f"Run directory `{run.run_dir.name}`; training finished {finished}; "
        f"report generated {datetime.now().isoformat(timespec='seconds')} "
        "from the run's own files by `cifar report`."
    )
