"""Time to accuracy of the committed runs: when validation accuracy first reached each target.

Usage: python benchmarks/time_to_accuracy.py [--results results] [--model mobilenet_v2]
       [--targets 85 88 90] [--write]

For every CIFAR-10 run in ``results/`` trained with the given model it reads ``history.csv``
(one row per epoch, with the epoch's wall time in ``seconds``) and prints the minutes of epoch time
after which validation accuracy first reached each target, with the epoch, or "not reached".
Epoch time is training plus validation; it leaves out loading the data and filling the
activation cache, which ``metrics.json``'s ``training_seconds`` (the last column) includes.
The runs ran on different days and machines: compare them with that in mind.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


def first_reached(history: list[dict], target: float) -> tuple[float, int] | None:
    """(minutes of epoch time, global epoch) when ``val_accuracy`` first reached ``target``."""
    seconds = 0.0
    for row in history:
        seconds += float(row["seconds"])
        if float(row["val_accuracy"]) >= target:
            return seconds / 60, int(row["epoch"])
    return None


def run_rows(results: Path, model: str, targets: list[float]) -> list[list[str]]:
    """One table row per run of ``model``: name, then one cell per target, then totals."""
    rows = []
    for metrics_file in sorted(results.glob("*/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        history_file = metrics_file.with_name("history.csv")
        dataset = metrics["data"].get("dataset", "cifar10")  # older runs: CIFAR-10 only
        if metrics["model"]["name"] != model or dataset != "cifar10" or not history_file.is_file():
            continue
        with history_file.open() as fh:
            history = list(csv.DictReader(fh))
        cells = [metrics_file.parent.name]
        for target in targets:
            hit = first_reached(history, target / 100)
            cells.append("not reached" if hit is None else f"{hit[0]:.1f} min (epoch {hit[1]})")
        best = max(float(row["val_accuracy"]) for row in history)
        cells += [
            f"{100 * best:.2f}%",
            f"{100 * metrics['test']['accuracy']:.2f}%",
            f"{metrics['training_seconds'] / 60:.1f} min",
        ]
        rows.append(cells)
    return rows


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned fixed-width columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def main(argv: list[str] | None = None) -> None:
    """Print the table; with ``--write`` also into BENCHMARKS.md."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__)
    parser.add_argument("--results", default="results", type=Path)
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--targets", type=float, nargs="+", default=[85.0, 88.0, 90.0])
    args = parser.parse_args(argv)
    from cifar.errors import DataError

    rows = run_rows(args.results, args.model, args.targets)
    if not rows:
        raise DataError(f"no {args.model} runs with history.csv under {args.results}")
    header = [
        "run",
        *(f"val >= {t:g}%" for t in args.targets),
        "best val",
        "test",
        "training_seconds",
    ]
    lines = [
        "CIFAR-10 (JPEG-q75 reconstruction) runs in results/: minutes of epoch time (training "
        "+ validation, from history.csv) until validation accuracy first reached each target",
        *format_table(header, rows),
    ]
    print("\n".join(lines))
    if args.write:  # the section is the printed table, with the command that printed it
        from benchlog import write_section

        title = f"Time to accuracy ({args.model} runs in {args.results}/)"
        write_section("time_to_accuracy", title, lines)


if __name__ == "__main__":
    from benchlog import run

    run(main)
