"""The other runs beside this one: one summary row per finished run, for comparison."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifar.run_files import METRICS_FILE, read_optional_json


@dataclass
class RunSummary:
    """One row of the comparison table."""

    run_dir: Path
    name: str
    model: str
    weights: str
    phases: str
    accuracy: float | None
    loss: float | None
    n_test: int | None
    training_seconds: float | None


def collect_runs(runs_root: Path) -> list[RunSummary]:
    """Every finished run (a folder with a readable metrics.json) under ``runs_root``."""
    rows = []
    for metrics_file in sorted(Path(runs_root).glob(f"*/{METRICS_FILE}")):
        metrics = read_optional_json(metrics_file)
        if metrics is None:
            continue
        model = metrics.get("model", {})
        test = metrics.get("test") or {}
        phases = ", ".join(
            f"{p.get('name', '?')} ({p.get('epochs_run', '?')} ep)"
            for p in metrics.get("phases", [])
        )
        rows.append(
            RunSummary(
                run_dir=metrics_file.parent,
                name=metrics.get("name", metrics_file.parent.name),
                model=f"{model.get('name', '?')} @ {model.get('input_size', '?')}px",
                weights=_weights_label(model.get("weights")),
                phases=phases or "-",
                accuracy=test.get("accuracy"),
                loss=test.get("loss"),
                n_test=test.get("n"),
                training_seconds=metrics.get("training_seconds"),
            )
        )
    return rows


def _weights_label(weights: Any) -> str:
    if weights in (None, "", "none", "None"):
        return "none (from scratch)"
    if weights == "imagenet":
        return "ImageNet"
    return f"ImageNet ({Path(str(weights)).name})"


def _pretrained(weights: Any) -> bool:
    return weights not in (None, "", "none", "None")
