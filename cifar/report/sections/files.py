"""Files in this run: every file and folder of the run directory."""

from __future__ import annotations

from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """The run folder's listing (half-written temporaries left out)."""
    names = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in ctx.run.run_dir.iterdir()
        if not p.name.endswith(".tmp")
    )
    return "## Files in this run\n\n" + ", ".join(f"`{n}`" for n in names)
