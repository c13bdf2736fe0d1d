"""Copy finished runs' reports and plots into results/ and write the RESULTS.md table.

Usage: python benchmarks/collect_results.py RUN_DIR [RUN_DIR ...] [--results results]
       [--export-table FILE] [--out RESULTS.md]

For every run it copies REPORT.md, samples.png, plots/*.png, metrics.json, config.json and
history.csv (small files only: no checkpoints, caches or models) to ``results/<run name>/`` and
adds a row to the table from the run's own metrics.json. ``--export-table`` inserts the
exporter's verification table (a Markdown file written by ``benchmarks/bench_export.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

COPIED = ["REPORT.md", "samples.png", "metrics.json", "config.json", "history.csv"]


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def copy_run(run_dir: Path, results: Path) -> Path:
    """Copy the small, generated files of one run; return its folder under ``results``."""
    target = results / run_dir.name
    (target / "plots").mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
    for png in sorted((run_dir / "plots").glob("*.png")):
        shutil.copy2(png, target / "plots" / png.name)
    return target


def row(run_dir: Path, target: Path, root: Path) -> str:
    """One Markdown table row from the run's metrics.json and config.json."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    model = metrics["model"]
    # metrics.json names the policy only; whether it also trained BatchNorm is in config.json.
    phases = " → ".join(
        f"{p['name']} ({p['policy']}{' + BatchNorm' if c.get('train_bn') else ''}, "
        f"lr {p['learning_rate']:g}): {p['epochs_run']}/{p['max_epochs']}"
        for p, c in zip(metrics["phases"], config["phases"], strict=True)
    )
    test = metrics["test"]
    report = (target / "REPORT.md").relative_to(root)
    command = f"`cifar train {config['name']}`"
    return (
        f"| [{run_dir.name}]({report}) | {model['name']} @ {model['input_size']}px | {phases} "
        f"| {100 * test['accuracy']:.2f}% | {test['loss']:.4f} | {test['macro_f1']:.4f} "
        f"| {_duration(metrics['training_seconds'])} | {command} |"
    )


def main(argv: list[str] | None = None) -> None:
    """Collect the runs and print (or write) the results table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--export-table", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    root = args.results.resolve().parent
    rows = []
    for run_dir in args.runs:
        if not (run_dir / "metrics.json").is_file():
            raise SystemExit(f"error: {run_dir} has no metrics.json (not a finished run)")
        rows.append(row(run_dir, copy_run(run_dir, args.results).resolve(), root))
    lines = [
        "| Run (report) | Model | Phases: epochs run / max | Test accuracy | Test loss "
        "| Macro F1 | Training time | Reproduce |",
        "|---|---|---|---:|---:|---:|---:|---|",
        *rows,
    ]
    table = "\n".join(lines)
    if args.export_table:
        table += "\n\n" + args.export_table.read_text().strip()
    if args.out:
        args.out.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
