"""Photo recipes compared: test accuracy, whole-command time and peak RSS per data set and seed.

Usage: python benchmarks/photo_recipes.py --data ../shared/data/clothing10 \
           --data ../shared/data/cats_and_dogs_filtered --recipe photos \
           --recipe photos_finetune_224 --seeds 1 2 3 [--set KEY=VALUE ...] [--write]

Each (recipe, data set, seed) is one ``cifar train RECIPE --data-dir DIR --set seed=S`` in a
child process with a fresh, empty runs folder (so every figure includes decoding the photos
and filling the activation cache, as a user's first run does). The script reads the run's
``metrics.json`` for the test accuracy (the data set's own test folder, or the split the tool
carved: never used for a decision) and the best validation accuracy, times the whole command
and takes its peak RSS from the kernel (``wait4``). ``--recipe NAME:KEY=VALUE,KEY=VALUE``
runs a variant of a recipe under a name of its own. Per recipe and data set it prints the mean
over seeds with the spread (lowest and highest). Runs are sequential: run it on a quiet
machine, as the times are part of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlog import machine_line, run, write_section  # noqa: E402


@dataclass
class Result:
    """One finished run."""

    recipe: str
    data: str
    seed: int
    accuracy: float
    val_accuracy: float | None
    seconds: float
    peak_rss_mb: float
    n_test: int
    tta_accuracy: float | None = None


def eval_size_text(metrics: dict) -> str:
    """``, at 256 (validation NLL 224: 0.43, 256: 0.39)`` for a run whose evaluation size
    differs from its training size or was chosen on validation; else empty."""
    model = metrics.get("model") or {}
    size, choice = model.get("eval_size"), model.get("eval_size_choice") or {}
    if not choice and size in (None, model.get("input_size")):
        return ""
    tried = ", ".join(f"{c['size']}: {c['val_nll']:.3f}" for c in choice.get("candidates", []))
    return f", at {size}" + (f" (validation NLL {tried})" if tried else "")


def combine_folders(folders: list[str], out: Path) -> Path:
    """One ``train/`` + ``test/`` folder holding every class of ``folders`` (symlinks).

    Each folder's classes become ``<folder name>_<class>``; its ``test/`` folder (else its
    ``validation/`` or ``val/`` folder) becomes test photos. Used to time a folder of about
    4,000 photos from the sets at hand.
    """
    for folder in map(Path, folders):
        given = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
        test = given.get("test") or given.get("validation") or given.get("val")
        if "train" not in given or test is None:
            raise SystemExit(f"--combine needs train/ and test/ (or validation/) in {folder}")
        for split, source in (("train", given["train"]), ("test", test)):
            for cls in sorted(p for p in source.iterdir() if p.is_dir()):
                target = out / split / f"{folder.name}_{cls.name}"
                target.mkdir(parents=True)
                for photo in sorted(cls.iterdir()):
                    (target / photo.name).symlink_to(photo.resolve())
    return out


def parse_recipe(spec: str) -> tuple[str, str, list[str]]:
    """``NAME`` or ``NAME:K=V,K=V`` -> (label, experiment, overrides)."""
    name, _, rest = spec.partition(":")
    overrides = [item for item in rest.split(",") if item]
    label = name + (f" ({', '.join(overrides)})" if overrides else "")
    return label, name, overrides


def train_once(
    experiment: str, data_dir: str, seed: int, overrides: list[str], cache: str | None = None
) -> tuple:
    """Run one ``cifar train`` in a child process: (metrics, seconds, peak RSS in MB).

    ``cache``: a runs folder shared between runs, so that decoded photos and cached
    activations are reused (for exploring; such times leave out what was reused).
    """
    with tempfile.TemporaryDirectory(prefix="photo-recipes-") as tmp:
        run_dir = Path(cache or tmp) / f"run-{Path(tmp).name}"
        runs = cache or tmp
        cmd = [sys.executable, "-m", "cifar.cli", "train", experiment, "--data-dir", data_dir]
        cmd += ["--run-dir", str(run_dir), "--set", f'runs_dir="{runs}"', "--set", f"seed={seed}"]
        for item in overrides:
            cmd += ["--set", item]
        log = Path(tmp) / "train.log"
        t0 = time.perf_counter()
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            tail = log.read_text().splitlines()[-15:]
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n" + "\n".join(tail))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics["best_val_accuracy"] = best_val_accuracy(run_dir / "history.csv")
        return metrics, seconds, usage.ru_maxrss / 1024


def best_val_accuracy(history_csv: Path) -> float | None:
    """Highest validation accuracy of any epoch in the run's ``history.csv``."""
    import csv

    if not history_csv.is_file():
        return None
    with history_csv.open() as fh:
        values = [float(row["val_accuracy"]) for row in csv.DictReader(fh)]
    return max(values) if values else None


def calibration_text(metrics: dict) -> str:
    """``, test ECE 0.051 -> 0.012 (T 1.31)`` from a run's ``calibration`` record, if any."""
    cal = metrics.get("calibration") or {}
    test = cal.get("test") or {}
    if not test.get("before") or not test.get("after"):
        return ""
    before, after = test["before"]["ece"], test["after"]["ece"]
    return f", test ECE {before:.3f} -> {after:.3f} (T {cal.get('temperature', 1):.2f})"


def summary_rows(results: list[Result]) -> list[str]:
    """One Markdown table row per (recipe, data set): mean and spread over the seeds."""
    rows = []
    keys = list(dict.fromkeys((r.recipe, r.data) for r in results))
    for recipe, data in keys:
        group = [r for r in results if (r.recipe, r.data) == (recipe, data)]
        acc = [100 * r.accuracy for r in group]
        seeds = ", ".join(str(r.seed) for r in group)
        spread = f"{min(acc):.2f}–{max(acc):.2f}" if len(acc) > 1 else "(one seed)"
        tta = [100 * r.tta_accuracy for r in group if r.tta_accuracy is not None]
        tta_cell = f"{mean(tta):.2f}%" if len(tta) == len(group) else "–"
        rows.append(
            f"| {Path(data).name} | {recipe} | {mean(acc):.2f}% | {spread} | {tta_cell} "
            f"| {seeds} | {group[0].n_test} | {_minutes(mean(r.seconds for r in group))} | "
            f"{max(r.peak_rss_mb for r in group) / 1024:.1f} GB |"
        )
    return rows


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(round(seconds % 60)):02d} s"


def main() -> None:
    """Run every recipe on every data set and seed, print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="an image folder")
    parser.add_argument("--recipe", action="append", required=True, help="NAME[:K=V,K=V]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument(
        "--combine",
        action="store_true",
        help="train on one folder holding every class of the --data folders (for timing a "
        "folder of thousands of photos)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--cache",
        help="share this runs folder between runs (decoded photos and activations are reused: "
        "for exploring, not for timing)",
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if args.write and args.cache:
        parser.error("--write measures whole commands: drop --cache")
    results: list[Result] = []
    combined = tempfile.TemporaryDirectory(prefix="photo-recipes-combined-")
    if args.combine:
        args.data = [str(combine_folders(args.data, Path(combined.name) / "combined"))]
    for spec in args.recipe:
        label, experiment, extra = parse_recipe(spec)
        for data_dir in args.data:
            for seed in args.seeds:
                metrics, seconds, rss = train_once(
                    experiment, data_dir, seed, [*args.overrides, *extra], args.cache
                )
                head = metrics["test"]
                r = Result(
                    label,
                    data_dir,
                    seed,
                    head["accuracy"],
                    metrics["best_val_accuracy"],
                    seconds,
                    rss,
                    head.get("n", metrics["data"]["n_test"]),
                    (head.get("tta") or {}).get("accuracy"),
                )
                results.append(r)
                val = f"{100 * r.val_accuracy:.2f}%" if r.val_accuracy is not None else "n/a"
                tta = f", with TTA {100 * r.tta_accuracy:.2f}%" if r.tta_accuracy else ""
                print(
                    f"{label} | {Path(data_dir).name} | seed {seed}: test {100 * r.accuracy:.2f}% "
                    f"(val {val}){tta}{eval_size_text(metrics)}{calibration_text(metrics)}, "
                    f"{_minutes(seconds)}, peak RSS {rss / 1024:.2f} GB",
                    flush=True,
                )
    header = [
        "| data set | recipe | test accuracy (mean) | lowest–highest | with TTA (mean) | seeds "
        "| test images | whole command (mean) | peak RSS (max) |",
        "|---|---|---:|---|---:|---|---:|---:|---:|",
    ]
    table = header + summary_rows(results)
    print("\n".join(table))
    if args.write:
        lines = [machine_line(), "", *table]
        if args.combine:  # the time and memory limit has a section of its own
            write_section("photo_recipes_combined", "Photo recipe on a 4,200-photo folder", lines)
        else:
            write_section("photo_recipes", "Photo recipes", lines)


if __name__ == "__main__":
    run(main)
