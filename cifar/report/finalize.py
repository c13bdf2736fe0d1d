"""The report's entry point: every report file of a run, made from the run's own files."""

from __future__ import annotations

from pathlib import Path

from cifar.report.figures import make_plots
from cifar.report.html import write_html
from cifar.report.markdown import render_markdown
from cifar.report.runs import collect_runs
from cifar.report.tensorboard import log_to_tensorboard
from cifar.run_files import RunFiles

REPORT_MD = "REPORT.md"
REPORT_HTML = "REPORT.html"


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
