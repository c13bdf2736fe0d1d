"""What an export starts from: a Keras model, its class names, data, and the run it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras

from cifar.data import ImageData, load_cifar10
from cifar.data.dataset import portable_path
from cifar.errors import ConfigError, ModelError
from cifar.inference.input_size import input_size
from cifar.inference.runtimes import SOURCE_SIZE, load_keras_model
from cifar.run_files import (
    BEST_MODEL,
    CONFIG_FILE,
    EXPORT_DIR,
    LABELS_FILE,
    METRICS_FILE,
    read_json,
    read_labels,
)


@dataclass
class ExportSource:
    """A model to export plus everything the metadata and the verification need.

    ``data`` is loaded on first use (only when an export actually runs).
    """

    model: keras.Model
    class_names: list[str]
    source_size: int = SOURCE_SIZE
    run_dir: Path | None = None
    run_name: str | None = None
    keras_accuracy: float | None = None
    model_file: Path | None = None
    model_name: str | None = None
    load_data: Callable[[], ImageData] = field(default=load_cifar10, repr=False)
    _data: ImageData | None = field(default=None, repr=False)

    @property
    def data(self) -> ImageData:
        """The data set (loaded once): test images verify, training images calibrate int8."""
        if self._data is None:
            self._data = self.load_data()
        return self._data

    @property
    def default_out_dir(self) -> Path | None:
        """``RUN_DIR/export`` for a run, None for an in-memory model (caller must choose)."""
        return self.run_dir / EXPORT_DIR if self.run_dir else None

    def describe(self) -> dict:
        """The ``source`` block of ``metadata.json``."""
        from exports.metadata import artifact_digest

        return {
            "run": self.run_name,
            # metadata.json ships with the model: no machine's absolute paths in it.
            "run_dir": portable_path(self.run_dir) if self.run_dir else None,
            "model_file": portable_path(self.model_file) if self.model_file else None,
            "model_sha256": artifact_digest(self.model_file)[1] if self.model_file else None,
            "model": self.model_name or self.model.name,
            "model_input_size": int(self.model.input_shape[1]),
            "source_size": self.source_size,
            "keras_test_accuracy": self.keras_accuracy,
        }


def source_from_model(
    model: keras.Model,
    class_names: list[str] | None = None,
    data: ImageData | None = None,
    data_dir: str | Path | None = None,
    source_size: int | None = None,
) -> ExportSource:
    """An in-memory model; data from ``data``, else ``data_dir``/``$CIFAR10_DIR``/download."""
    if data is not None and class_names is None:
        class_names = list(data.class_names)
    n_out = int(model.output_shape[-1])
    names = list(class_names) if class_names else [f"class_{i}" for i in range(n_out)]
    return ExportSource(
        model=model,
        class_names=names,
        source_size=int(source_size or (data.image_shape[0] if data is not None else SOURCE_SIZE)),
        load_data=lambda: load_cifar10(data_dir),
        _data=data,
    )


def source_from_run(
    run_dir: str | Path, data: ImageData | None = None, data_dir: str | Path | None = None
) -> ExportSource:
    """A run directory: ``best_model.keras``, ``labels.txt``, ``config.json``, ``metrics.json``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelError(f"run directory {run_dir} does not exist")
    model_file = run_dir / BEST_MODEL
    if not model_file.is_file():
        raise ModelError(
            f"{run_dir} has no {BEST_MODEL}; pass a finished run directory "
            "(cifar train writes runs/<name>-<time>/)"
        )
    config = read_json(run_dir / CONFIG_FILE, {})
    metrics = read_json(run_dir / METRICS_FILE, {})
    model = load_keras_model(model_file)
    class_names = read_labels(run_dir / LABELS_FILE) or metrics.get("data", {}).get("class_names")
    source = source_from_model(model, class_names, data, data_dir)
    source.source_size = input_size(metrics) or source.source_size
    source.run_dir = run_dir
    source.run_name = metrics.get("name") or config.get("name") or run_dir.name
    source.keras_accuracy = metrics.get("test", {}).get("accuracy")
    source.model_file = model_file
    source.model_name = metrics.get("model", {}).get("name") or config.get("model", {}).get("name")
    if data is None:
        source.load_data = lambda: _load_run_data(run_dir, config, data_dir)
    return source


def _load_run_data(run_dir: Path, config: dict, data_dir: str | Path | None) -> ImageData:
    """The run's data exactly as the Trainer loaded it (same folder, subsets and seed)."""
    from cifar.config import load_config
    from cifar.trainer import Trainer

    data_cfg = dict(config.get("data") or {})
    if data_dir is not None:
        data_cfg["data_dir"] = str(data_dir)
    try:
        cfg = load_config(
            {
                "seed": config.get("seed", 42),
                "runs_dir": str(run_dir.parent),
                "data": data_cfg,
                # An image folder is decoded at the model's input size: the run's, not a default.
                "model": {"input_size": (config.get("model") or {}).get("input_size")},
            }
        )
    except ConfigError as exc:
        raise ConfigError(f"{run_dir / CONFIG_FILE}: {exc}") from exc
    return Trainer(cfg, run_dir=run_dir, verbose=0).load_data()
