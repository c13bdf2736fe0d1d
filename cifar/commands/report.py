"""Regenerate a run's plots, TensorBoard images, REPORT.md and REPORT.html from its files."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar report``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by `cifar train`")


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from cifar.report import REPORT_HTML, finalize_run

    path = finalize_run(Path(args.run_dir))
    print(f"report: {path}")
    print(f"html:   {path.with_name(REPORT_HTML)}")
    return 0
