"""Train, export and tabulate several models for ``cifar compare`` (one experiment, one split).

Each model gets its own run directory (a normal run: report, checkpoints, ``best_model.keras``)
and a verified float16 TFLite export, whose size and single-image LiteRT latency go into the
table beside test accuracy, loss, parameters and training time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import keras

from cifar.config import TrainConfig, load_config
from cifar.data import ImageData
from cifar.errors import CifarError, ConfigError
from cifar.inference.input_size import input_size
from cifar.report.comparison import render_comparison
from cifar.report.markdown import dataset_name
from cifar.trainer import Trainer

REPORT = "COMPARISON.md"
RESULTS = "comparison.json"
EXPORT_FORMAT = "tflite-fp16"


@dataclass
class Comparison:
    """What a comparison wrote: its folder, the Markdown report and one row per model."""

    out_dir: Path
    report: Path
    rows: list[dict] = field(default_factory=list)


def parse_models(text: str) -> list[str]:
    """``"a,b,c"`` -> ``["a", "b", "c"]``; empty or repeated names are a ConfigError."""
    models = [m.strip() for m in str(text).split(",") if m.strip()]
    if not models:
        raise ConfigError("--models: name at least one model, e.g. --models mobilenet_v2,vgg16")
    repeated = sorted({m for m in models if models.count(m) > 1})
    if repeated:
        raise ConfigError(f"--models: {', '.join(repeated)} named more than once")
    return models


def model_configs(
    experiment: str | Path | dict, models: list[str], overrides: list[str] | None = None
) -> list[TrainConfig]:
    """One validated configuration per model: the experiment with only ``model.name`` (and the
    run name) changed, so every model sees the same data, subsets, split and phases."""
    base = load_config(experiment, overrides)
    return [
        load_config(experiment, [*(overrides or []), f"model.name={m}", f'name="{base.name}-{m}"'])
        for m in models
    ]


def compare_models(
    experiment: str | Path | dict,
    models: list[str],
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    command: str = "",
    verify_n: int = 500,
    data: ImageData | None = None,
    log: Callable[[str], None] = print,
) -> Comparison:
    """Train, evaluate and export every model in turn; write the comparison report.

    ``data`` replaces the experiment's data set (already loaded, as for the Trainer). A model
    that cannot be trained (e.g. its ImageNet weights cannot be downloaded here) or exported
    gets a row saying why; the others still run.
    """
    from exports import Exporter

    configs = model_configs(experiment, models, overrides)  # every config is checked first
    first = configs[0]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir else Path(first.runs_dir) / f"compare-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = Trainer(first, run_dir=out, verbose=0).load_data()  # loaded once, shared by all
    rows: list[dict] = []
    context: dict = {}
    for config in configs:
        name = config.model.name
        row = {
            "model": name,
            "weights": config.model.weights,
            "input_size": input_size(config.model),
        }
        rows.append(row)
        log(f"compare: {name} ({len(rows)}/{len(configs)})")
        keras.backend.clear_session()
        trainer = Trainer(config, data=data)  # the configuration was validated above
        row["run_dir"] = str(trainer.run_dir)
        try:
            metrics = trainer.fit()
        except CifarError as exc:
            row["error"] = str(exc)
            log(f"compare: {name} not measured: {exc}")
            _remove_if_empty(trainer.run_dir, row)
            continue
        context = context or _context(experiment, command, config, metrics)
        row.update(
            accuracy=metrics["test"]["accuracy"],
            loss=metrics["test"]["loss"],
            params=metrics["model"]["total_params"],
            training_seconds=metrics["training_seconds"],
        )
        try:
            exported = Exporter(trainer.run_dir, data=data, verify_n=verify_n, log=log).export(
                [EXPORT_FORMAT]
            )
        except CifarError as exc:  # includes a failed conversion or verification
            row["fp16_error"] = str(exc)
            continue
        check = next(v for v in exported.verifications if v.format == EXPORT_FORMAT)
        row.update(
            fp16_bytes=check.bytes, latency_ms=check.latency_ms, fp16_agreement=check.agreement
        )
    context = context or _context(experiment, command, first, None)
    report = out / REPORT
    report.write_text(render_comparison(context, rows))
    (out / RESULTS).write_text(json.dumps({"context": context, "rows": rows}, indent=1))
    return Comparison(out, report, rows)


def _remove_if_empty(run_dir: Path, row: dict) -> None:
    """A run that failed before writing anything leaves no folder behind."""
    with contextlib.suppress(OSError):  # not empty (or already gone): keep it
        run_dir.rmdir()
        del row["run_dir"]


def _context(experiment, command: str, config: TrainConfig, metrics: dict | None) -> dict:
    data = (metrics or {}).get("data", {})
    return {
        "experiment": str(experiment) if isinstance(experiment, str | Path) else config.name,
        "command": command,
        "seed": config.seed,
        "data": {
            "name": dataset_name(data.get("source", ""), config.data.dataset),
            "source": data.get("source"),
            "n_train": data.get("n_train"),
            "n_val": data.get("n_val"),
            "n_test": data.get("n_test"),
        },
    }
