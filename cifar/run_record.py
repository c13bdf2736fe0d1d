"""What the Trainer records about a run: config.json, metrics.json and the phase summaries.

The Trainer decides when they are written; this module decides what they hold, and
:mod:`cifar.run_files` (which owns the run folder's file names) writes them.
"""

from __future__ import annotations

import resource
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cifar.data.dataset import portable_path
from cifar.finetuning import leaf_layers
from cifar.run_files import (
    CONFIG_FILE,
    METRICS_FILE,
    SAMPLES_FILE,
    read_json,
    write_json,
    write_labels,
    write_test_files,
)


def write_run_info(run_dir: Path, config: Any, image_size: int, data: Any) -> None:
    """config.json (with the resolved input size and policies), labels.txt, samples.png and,
    for an image folder, test_files.json (which photos the test figures come from)."""
    info = config.to_dict()
    info["model"]["input_size"] = image_size
    info["phases"] = [{**asdict(p), "trainable": p.policy.describe()} for p in config.phases]
    write_json(run_dir / CONFIG_FILE, info)
    write_labels(run_dir, data.class_names)
    if getattr(data, "files_test", None) is not None:
        names = data.class_names
        tests = [(f, names[int(y)]) for f, y in zip(data.files_test, data.y_test, strict=True)]
        write_test_files(run_dir, data.source, tests)
    if not (run_dir / SAMPLES_FILE).exists():
        from cifar.data.samples import plot_sample_grid

        plot_sample_grid(data.x_train, data.y_train, data.class_names, run_dir / SAMPLES_FILE)


def param_counts(model: keras.Model) -> dict:
    """Trainable and frozen parameters and layers of ``model`` (what a phase trained)."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    layers = list(leaf_layers(model))
    return {
        "trainable_params": trainable,
        "non_trainable_params": frozen,
        "trainable_layers": sum(1 for layer in layers if layer.trainable and layer.weights),
        "total_layers": len(layers),
    }


def phase_summary(phase: Any, early_stopping: Any, phase_start: int, end_epoch: int) -> dict:
    """One phase's entry of ``metrics.json``: its settings, epochs and why it stopped."""
    es = early_stopping
    if es is not None and es.stopped_early:
        reason = f"early stopping: {phase.monitor} did not improve for {phase.patience} epochs"
    else:
        reason = f"reached the maximum of {phase.epochs} epochs"
    best_epoch = es.best_epoch + 1 if es is not None and es.best is not None else end_epoch
    return {
        "name": phase.name,
        "policy": phase.policy.describe(),
        "optimizer": phase.optimizer,
        "learning_rate": phase.learning_rate,
        "schedule": phase.schedule,
        "max_epochs": phase.epochs,
        "epochs_run": end_epoch - phase_start,
        "first_epoch": phase_start + 1,
        "last_epoch": end_epoch,
        "stop_reason": reason,
        "best_epoch": best_epoch,
        "best_val_loss": None if es is None or es.best is None else float(es.best),
    }


def _counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(labels, minlength=n_classes).astype(int).tolist()


def run_metrics(trainer: Any, training_seconds: float) -> dict:
    """``metrics.json`` without the test figures: model, data, phases, time and memory."""
    config, model, image_size = trainer.config, trainer.model, trainer.image_size
    d = trainer.datasets
    data = d.data
    return {
        "name": config.name,
        "run_dir": portable_path(trainer.run_dir),
        "finished_at": datetime.now().isoformat(timespec="seconds"),
        "model": {
            "name": config.model.name,
            "input_size": image_size,
            "source_size": int(data.image_shape[0]),
            "eval_size": trainer.eval_size,
            **(
                {"eval_size_choice": trainer.eval_size_choice.record()}
                if trainer.eval_size_choice
                else {}
            ),
            "weights": config.model.weights,
            "total_params": int(model.count_params()),
            "layers": len(model.layers),
        },
        "data": {
            "dataset": data.extra.get("dataset", config.data.dataset),
            "source": data.source,
            "class_names": data.class_names,
            "n_train": int(len(d.train_idx)),
            "n_val": int(len(d.val_idx)),
            "n_test": int(len(data.y_test)),
            "train_counts": _counts(data.y_train[d.train_idx], data.num_classes),
            "test_counts": _counts(data.y_test, data.num_classes),
            **{
                k: v
                for k, v in data.extra.items()
                if k
                in (
                    "layout",
                    "test_source",
                    "val_source",
                    "skipped_unreadable",
                    "ignored_files",
                    "ignored_examples",
                    "data_checks",
                )
            },
            "class_weight": config.data.class_weight,
        },
        "phases": trainer.phase_summaries,
        "training_seconds": round(training_seconds, 2),
        # Peak resident memory of this process so far (Linux reports KiB).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def read_run_config(run_dir: str | Path, strategy_name: str | None = None) -> Any:
    """The :class:`~cifar.config.TrainConfig` a run directory was started with.

    ``strategy_name`` replaces the run's ``strategy`` (e.g. finish on one process).
    """
    from cifar.config import load_config
    from cifar.errors import ConfigError

    config_file = Path(run_dir) / CONFIG_FILE
    if not config_file.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    config = load_config(read_json(config_file))
    if strategy_name:
        config.strategy = strategy_name
    return config


def write_results(run_dir: Path, metrics: dict, report: bool = True) -> None:
    """Write ``metrics.json``, then the report (plots, REPORT.md/HTML) when asked."""
    write_json(run_dir / METRICS_FILE, metrics)
    if report:
        from cifar.report import finalize_run

        finalize_run(run_dir)
    test = metrics["test"]
    print(f"test accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f} -> {run_dir}")
