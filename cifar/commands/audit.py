"""Audit a photo folder: likely label errors, near-copies, duplicates, outliers, class overlap.

Writes AUDIT.md, audit.html (image grids of the top findings) and audit.csv (every flagged
file) into --out; never moves, edits or deletes a photo. --write-exclude FILE lists the label
conflicts, likely label errors and duplicate/near-copy extras for data.exclude = FILE.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cifar.commands.train import add_config_arguments, config_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar audit``."""
    add_config_arguments(parser, "e.g. --set model.weights=none (model.name picks the backbone)")
    parser.add_argument("--out", help="report folder (default: <runs_dir>/audit-<folder name>)")
    parser.add_argument(
        "--write-exclude",
        metavar="FILE",
        help="write the flagged files to FILE, for data.exclude = FILE (the folder is untouched)",
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="decode and feature size (default 224)"
    )
    parser.add_argument(
        "--folds", type=int, default=None, help="folds of the out-of-fold probabilities (5)"
    )


def run(args: argparse.Namespace) -> int:
    """Audit the folder, write the report, print a summary."""
    from cifar.audit import AuditSettings, run_audit
    from cifar.audit.findings import EXCLUDE_KINDS, KINDS, excluded_files
    from cifar.audit.report import write_report
    from cifar.config import load_config
    from cifar.errors import ConfigError

    t0 = time.perf_counter()
    config = load_config(None, config_overrides(args))
    if not config.data.data_dir:
        raise ConfigError("name the photo folder to audit: cifar audit --data-dir DIR")
    root = Path(config.data.data_dir).expanduser()
    settings = AuditSettings(
        data_dir=root,
        cache_dir=Path(config.runs_dir) / ".cache",
        backbone=config.model.name,
        weights=config.model.weights,
        engine=config.cache_engine,
        seed=config.seed,
    )
    if config.data.exclude:  # photos already accepted as left out are not audited again
        from cifar.data.exclude import read_exclude

        settings.exclude = read_exclude(config.data.exclude, root)
    if args.image_size:
        settings.image_size = args.image_size
    if args.folds:
        settings.folds = args.folds
    result = run_audit(settings)
    out = Path(args.out) if args.out else Path(config.runs_dir) / f"audit-{root.name}"
    paths = write_report(result, out)
    if args.write_exclude:
        from cifar.data.exclude import write_exclude

        files = excluded_files(result.findings)
        header = (
            f"cifar audit of {root}: {', '.join(EXCLUDE_KINDS)} ({len(files)} files).\n"
            f"Use with --set data.exclude={args.write_exclude!r}; delete a line to keep a photo."
        )
        write_exclude(args.write_exclude, files, header)
    inv = result.inventory
    print(
        f"audited {len(inv)} photos in {len(inv.class_names)} classes "
        f"(out-of-fold accuracy {result.accuracy:.1%})"
    )
    print("  " + ", ".join(f"{kind}: {result.count(kind)}" for kind in KINDS))
    names = inv.class_names
    for row in result.suspects[:5]:
        print(
            f"  suspect {inv.files[row]}: {names[inv.labels[row]]} -> "
            f"{names[result.labels.suggested[row]]} (score {result.labels.score[row]:.3f})"
        )
    print(f"report: {paths['markdown']} ({paths['html'].name}, {paths['csv'].name})")
    if args.write_exclude:
        print(f"exclude file: {args.write_exclude} ({len(files)} files)")
    print(f"time: {time.perf_counter() - t0:.1f} s")
    return 0
