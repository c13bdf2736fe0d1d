"""Copy finished runs' reports and plots into results/ and write a RESULTS.md table.

Usage: python benchmarks/collect_results.py RUN_DIR[=EXPERIMENT] [...] [--results results]
       [--export-table FILE] [--out RESULTS.md --section NAME]

For every run it copies REPORT.md, samples.png, plots/*.png, metrics.json, config.json and
history.csv (small files only: no checkpoints, caches or models) to ``results/<run name>/``
(nothing to copy when RUN_DIR already is that folder) and adds a row to the table from the
run's own metrics.json and config.json: the phases with their policy (``, train_bn`` when
BatchNorm trained too), schedule and label smoothing, and the augmentation. ``=EXPERIMENT``
names the experiment a run was started from when ``--set name=...`` renamed it.
``--export-table`` appends the exporter's verification table (written by
``benchmarks/bench_export.py``). ``--out FILE --section NAME`` replaces the table between
``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in FILE, so the rest of it stays as written.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cifar.run_files import CONFIG_FILE, METRICS_FILE, SAMPLES_FILE, read_json

COPIED = ["REPORT.md", SAMPLES_FILE, METRICS_FILE, CONFIG_FILE, "history.csv"]
HEADER = [
    "| Run (report) | Model | Phases: epochs run / max | Test accuracy | Test loss "
    "| Macro F1 | Training time | Reproduce |",
    "|---|---|---|---:|---:|---:|---:|---|",
]


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def copy_run(run_dir: Path, results: Path) -> Path:
    """Copy the small, generated files of one run; return its folder under ``results``."""
    target = results / run_dir.name
    if target.resolve() == run_dir.resolve():
        return target  # a run already collected: its files are the record
    (target / "plots").mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
    for png in sorted((run_dir / "plots").glob("*.png")):
        shutil.copy2(png, target / "plots" / png.name)
    return target


def describe_phase(recorded: dict, config: dict) -> str:
    """``name (policy[, train_bn], lr X[, cosine][, label smoothing Y]): run/max``."""
    from cifar.phases import Phase

    # config.json holds the phase as configured; older runs' policy text lacks train_bn.
    policy = Phase(trainable=config["trainable"], train_bn=config.get("train_bn", False)).policy
    parts = [policy.describe(), f"lr {recorded['learning_rate']:g}"]
    if config.get("schedule", "constant") != "constant":
        parts.append(config["schedule"])
    if config.get("label_smoothing"):
        parts.append(f"label smoothing {config['label_smoothing']:g}")
    epochs = f"{recorded['epochs_run']}/{recorded['max_epochs']}"
    return f"{recorded['name']} ({', '.join(parts)}): {epochs}"


def describe_augmentation(augment: dict) -> str:
    """``flip + pad-crop, 2 cached views per image`` from ``data.augment``; "" when off."""
    names = ["flip"] if augment.get("flip") else []
    names += ["pad-crop"] if augment.get("crop_padding") else []
    for key, label in (("randaugment", "RandAugment"), ("mixup", "mixup"), ("cutmix", "CutMix")):
        if augment.get(key):
            names.append(f"{label} {augment[key]:g}")
    text = " + ".join(names)
    views = augment.get("cached_views") or 0
    if text and views > 1:
        text += f", {views} cached views per image"
    return text


def row(run_dir: Path, target: Path, root: Path, experiment: str | None = None) -> dict:
    """One table row (its cells and the test accuracy) from metrics.json and config.json."""
    metrics = read_json(run_dir / METRICS_FILE)
    config = read_json(run_dir / CONFIG_FILE)
    model = metrics["model"]
    phases = " → ".join(
        describe_phase(p, c) for p, c in zip(metrics["phases"], config["phases"], strict=True)
    )
    augmentation = describe_augmentation(config["data"].get("augment", {}))
    if augmentation:
        phases += f"; {augmentation}"
    test = metrics["test"]
    command = f"cifar train {experiment or config['name']}"
    if config["data"].get("data_dir"):
        command += f" --data-dir {config['data']['data_dir']}"
    cells = [
        f"[{run_dir.name}]({(target / 'REPORT.md').relative_to(root).as_posix()})",
        f"{model['name']} @ {model['input_size']}px",
        phases,
        f"{100 * test['accuracy']:.2f}%",
        f"{test['loss']:.4f}",
        f"{test['macro_f1']:.4f}",
        _duration(metrics["training_seconds"]),
        f"`{command}`",
    ]
    return {"cells": cells, "accuracy": test["accuracy"]}


def table(rows: list[dict]) -> str:
    """The Markdown table, the best test accuracy in bold."""
    best = max(r["accuracy"] for r in rows)
    lines = list(HEADER)
    for r in rows:
        cells = list(r["cells"])
        if len(rows) > 1 and r["accuracy"] == best:
            cells[3] = f"**{cells[3]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_section(text: str, section: str, body: str) -> str:
    """``text`` with the part between the section's begin and end markers replaced."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"error: no {begin} ... {end} markers to write the table between")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def main(argv: list[str] | None = None) -> None:
    """Collect the runs and print (or write) the results table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN_DIR or RUN_DIR=EXPERIMENT")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--export-table", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--section", help="marker name of the table in --out")
    args = parser.parse_args(argv)
    root = args.results.resolve().parent
    rows = []
    for spec in args.runs:
        run_dir, _, experiment = spec.partition("=")
        run_dir = Path(run_dir)
        if not (run_dir / METRICS_FILE).is_file():
            raise SystemExit(f"error: {run_dir} has no {METRICS_FILE} (not a finished run)")
        target = copy_run(run_dir, args.results).resolve()
        rows.append(row(run_dir, target, root, experiment or None))
    text = table(rows)
    if args.export_table:
        text += "\n\n" + args.export_table.read_text().strip()
    if args.out and args.section:
        args.out.write_text(replace_section(args.out.read_text(), args.section, text))
    elif args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
