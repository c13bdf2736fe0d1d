"""Regenerate a run's plots, TensorBoard images, REPORT.md and REPORT.html (and REPORT.pdf)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar report``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by `cifar train`")
    parser.add_argument(
        "--pdf",
        action="store_true",
        help="also print REPORT.html to REPORT.pdf with headless Chromium (needs Chromium and "
        "the playwright package: pip install 'cifar-transfer[pdf]')",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from cifar.report import REPORT_HTML, REPORT_PDF, finalize_run
    from cifar.report.pdf import pdf_prerequisites, write_pdf

    # Checked first: a missing Chromium is reported before minutes of plotting, not after.
    chromium = pdf_prerequisites() if args.pdf else None
    path = finalize_run(Path(args.run_dir))
    print(f"report: {path}")
    print(f"html:   {path.with_name(REPORT_HTML)}")
    if chromium is not None:
        pdf = write_pdf(path.with_name(REPORT_HTML), path.with_name(REPORT_PDF), chromium)
        print(f"pdf:    {pdf}")
    return 0
