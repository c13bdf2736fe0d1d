"""The Trainer: owns the data pipeline, the model factory and the phase schedule.

``Trainer(config).fit()`` runs every phase (recompiling the model for each), evaluates on the
untouched test set and writes everything into one run directory. Subclass it and override the
``build_*`` hooks or :meth:`on_phase_end` to customise a step without rewriting the loop.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from callbacks.checkpoint import (
    EARLY_STOPPING_PREFIX,
    WEIGHTS_FILE,
    ResumeCheckpoint,
    load_optimizer,
    load_random_state,
    read_state,
    save_checkpoint,
)
from callbacks.early_stopping import ResumableEarlyStopping
from callbacks.history import HistoryLogger
from callbacks.progress import ProgressETA
from callbacks.tensorboard import PhaseTensorBoard
from cifar.activations.plan import ActivationPlanner, PhaseInputs
from cifar.config import TrainConfig, load_config
from cifar.data import ImageData, detect_dataset, load_cifar10, load_image_folder, stratified_split
from cifar.data.augment import Augmenter
from cifar.data.order import steps_per_epoch
from cifar.data.pipeline import make_dataset
from cifar.distributed import barrier, make_strategy, worker_role
from cifar.distributed.rundir import agree_on_run_dir, remove_scratch, scratch_dir
from cifar.errors import ConfigError
from cifar.execution import phase_steps_per_execution
from cifar.finetuning import leaf_layers
from cifar.models import create_model, default_input_size
from cifar.phases import Phase

CHECKPOINT_DIR = "checkpoint"
BEST_MODEL = "best_model.keras"


@dataclass
class Datasets:
    """The splits as tf.data pipelines, plus the arrays they stream from.

    ``train`` is epoch 0's training pipeline; :meth:`train_epochs` builds the one a phase
    fits, holding the batches of exactly the epochs it runs (see
    :func:`cifar.data.order.index_batches`).
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    data: ImageData
    train_idx: np.ndarray
    val_idx: np.ndarray
    steps_per_epoch: int
    make_train: Any = None

    def train_epochs(self, first_epoch: int, epochs: int) -> tf.data.Dataset:
        """The training batches of global epochs ``first_epoch .. first_epoch + epochs - 1``."""
        return self.make_train(first_epoch, epochs)


class Trainer:
    """Runs a :class:`~cifar.config.TrainConfig` end to end.

    Args:
        config: the run configuration (``TrainConfig()`` is the reference recipe).
        strategy: a ``tf.distribute.Strategy``; model and optimizers are built in its scope
            (default: the one ``config.strategy`` names).
        callbacks: extra Keras callbacks added to every phase.
        run_dir: write into this folder instead of ``runs/<name>-<timestamp>/`` (several
            workers: the chief's choice counts, and only the chief writes there).
        data: an already loaded :class:`~cifar.data.ImageData` (skips loading).
        verbose: Keras progress bar (1), none (0), or ``"auto"`` (bar only on a terminal).

    Example:
        >>> from cifar.config import load_config
        >>> trainer = Trainer(load_config("smoke"))
        >>> metrics = trainer.fit()  # doctest: +SKIP
        >>> metrics["test"]["accuracy"]  # doctest: +SKIP
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        strategy: tf.distribute.Strategy | None = None,
        callbacks: list[keras.callbacks.Callback] | None = None,
        run_dir: str | Path | None = None,
        data: ImageData | None = None,
        verbose: int | str = "auto",
    ):
        self.config = (config or TrainConfig()).validate()
        self.strategy = strategy or make_strategy(self.config.strategy)
        self.role = worker_role(self.strategy)
        self.extra_callbacks = list(callbacks or [])
        self.verbose = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else int(verbose)
        self.image_size = self.config.model.input_size or default_input_size(self.config.model.name)
        # The run every worker agrees on (checkpoints are read there); this process writes
        # into run_dir, which is a scratch folder on workers other than the chief.
        self.shared_run_dir = agree_on_run_dir(
            self.strategy, self.role, Path(run_dir) if run_dir else self._new_run_dir()
        )
        self.run_dir = self.shared_run_dir if self.role.is_chief else scratch_dir(self.role)
        self._data = data
        self.model: keras.Model | None = None
        self.datasets: Datasets | None = None
        self.phase_summaries: list[dict] = []
        self.phase_inputs: PhaseInputs | None = None

    # ------------------------------------------------------------------ construction hooks

    @property
    def cache_dir(self) -> Path:
        """Where decoded image folders and cached activations live (beside the run folder)."""
        return self.run_dir.parent / ".cache"

    def load_data(self) -> ImageData:
        """Load the configured data set (override to bring your own ``ImageData``)."""
        cfg = self.config.data
        kind = cfg.dataset
        if kind == "auto":
            kind = detect_dataset(cfg.data_dir) if cfg.data_dir else "cifar10"
        if kind == "folder":
            if not cfg.data_dir:
                raise ConfigError("invalid configuration: data.data_dir: required for 'folder'")
            data = load_image_folder(
                cfg.data_dir,
                image_size=self.image_size,
                test_fraction=cfg.test_fraction,
                seed=self.config.seed,
                cache_dir=self.cache_dir,
                skip_bad=cfg.skip_bad_images,
                log=self.log,
            )
            self.log(
                f"data: image folder {data.source}: {data.extra['layout']} layout, "
                f"{len(data.y_train)} training and {len(data.y_test)} test images at "
                f"{self.image_size}x{self.image_size}; test images: {data.extra['test_source']}"
            )
        else:
            data = load_cifar10(cfg.data_dir)
        data.extra["dataset"] = kind
        if cfg.train_subset or cfg.test_subset:
            data = data.subset(cfg.train_subset, cfg.test_subset, seed=self.config.seed)
        return data

    def build_datasets(self) -> Datasets:
        """Split off the validation set and build the three tf.data pipelines."""
        data = self._data if self._data is not None else self.load_data()
        cfg = self.config.data
        if data.val_idx is not None:  # the image folder's own validation folder
            val_idx = np.asarray(data.val_idx)
            train_idx = np.setdiff1d(np.arange(len(data.y_train)), val_idx)
        else:
            train_idx, val_idx = stratified_split(data.y_train, cfg.val_fraction, self.config.seed)
        n_cls = data.num_classes
        augmenter = Augmenter(cfg.augment, seed=self.config.seed) if cfg.augment.enabled else None
        common = {"num_classes": n_cls, "image_size": self.image_size, "batch_size": cfg.batch_size}

        def make_train(first_epoch: int, epochs: int) -> tf.data.Dataset:
            return make_dataset(
                data.x_train,
                data.y_train,
                training=True,
                seed=self.config.seed,
                augmenter=augmenter,
                indices=train_idx,
                first_epoch=first_epoch,
                epochs=epochs,
                **common,
            )

        val = make_dataset(data.x_train, data.y_train, indices=val_idx, **common)
        test = make_dataset(data.x_test, data.y_test, **common)
        steps = steps_per_epoch(len(train_idx), cfg.batch_size)
        return Datasets(make_train(0, 1), val, test, data, train_idx, val_idx, steps, make_train)

    def build_model(self) -> keras.Model:
        """Create the configured model from the registry (called inside the strategy scope)."""
        m = self.config.model
        options = {"weights": m.weights}
        if m.head_units is not None:
            options["head_units"] = m.head_units
        if m.dropout is not None:
            options["dropout"] = m.dropout
        n_cls = self.datasets.data.num_classes if self.datasets else 10
        return create_model(m.name, num_classes=n_cls, input_size=self.image_size, **options)

    def compile_for_phase(self, phase: Phase, model: keras.Model) -> None:
        """Compile ``model`` (the full model, or a cached phase's tail) with a fresh optimizer."""
        model.compile(
            optimizer=phase.make_optimizer(self.datasets.steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=phase.label_smoothing),
            metrics=["accuracy"],
            jit_compile=self.config.jit_compile,
            steps_per_execution=phase_steps_per_execution(
                self.config.steps_per_execution,
                self.datasets.steps_per_epoch,
                cached=self.phase_inputs is not None and self.phase_inputs.cached,
            ),
        )

    def class_weights(self) -> dict[int, float] | None:
        """Per-class loss weights for ``data.class_weight = "balanced"`` (else None)."""
        if self.config.data.class_weight != "balanced":
            return None
        from sklearn.utils.class_weight import compute_class_weight

        y = self.datasets.data.y_train[self.datasets.train_idx]
        classes = np.arange(self.datasets.data.num_classes)
        present = np.unique(y)
        weights = compute_class_weight("balanced", classes=present, y=y)
        table = dict.fromkeys(classes.tolist(), 1.0)
        table.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
        return table

    def build_callbacks(
        self, phase: Phase, index: int, start_epoch: int
    ) -> list[keras.callbacks.Callback]:
        """The callbacks of one phase (override to add or replace some).

        ``self.phase_inputs`` holds what this phase fits on (model and datasets).
        """
        cfg = self.config.callbacks
        cbs: list[keras.callbacks.Callback] = [
            HistoryLogger(self.run_dir, phase.name, index, start_epoch)
        ]
        if phase.patience > 0:
            cbs.append(self._early_stopping(phase))
        if cfg.tensorboard:
            cbs.append(PhaseTensorBoard(str(self.run_dir / "tensorboard"), index, phase.name))
        if cfg.confusion_matrix_every and self.role.is_chief:  # only the chief's figures are kept
            from callbacks.confusion_matrix import ConfusionMatrixLogger

            cbs.append(
                ConfusionMatrixLogger(
                    self.phase_inputs.val,
                    self.datasets.data.class_names,
                    log_dir=self.run_dir / "tensorboard",
                    image_dir=self.run_dir / "confusion_matrices",
                    every=cfg.confusion_matrix_every,
                )
            )
        if cfg.progress:
            later = sum(p.epochs for p in self.config.phases[index + 1 :])
            n = len(self.config.phases)
            cbs.append(
                ProgressETA(phase.name, index, n, start_epoch, later, prefix=self.role.prefix)
            )
        cbs.extend(_import_callback(path) for path in cfg.extra)
        cbs.extend(self.extra_callbacks)
        # The checkpoint runs last so it sees the early-stopping counters of this epoch.
        es = next((cb for cb in cbs if isinstance(cb, ResumableEarlyStopping)), None)
        cbs.append(
            ResumeCheckpoint(
                self.run_dir / CHECKPOINT_DIR,
                self._state_fn(index, start_epoch),
                es,
                weights_model=self.model,
            )
        )
        return cbs

    def build_phase_inputs(
        self, phase: Phase, index: int, first_epoch: int = 0, epochs: int | None = None
    ) -> PhaseInputs:
        """What a phase fits: the full model on images, or a tail on cached activations.

        The training pipeline holds the batches of global epochs ``first_epoch`` to
        ``first_epoch + epochs - 1`` (default: the phase's maximum from ``first_epoch``);
        :class:`~cifar.activations.plan.ActivationPlanner` decides whether caching is exact.
        """
        epochs = phase.epochs if epochs is None else epochs
        planner = ActivationPlanner(
            self.config, self.image_size, self.cache_dir, self.log, self.role.multiworker
        )
        return planner.phase_inputs(self.model, self.datasets, phase.name, first_epoch, epochs)

    def log(self, message: str) -> None:
        """Print a progress message (override to route it elsewhere)."""
        print(self.role.prefix + message, flush=True)

    def on_phase_begin(self, phase: Phase, index: int) -> None:
        """Called after the phase compiled and before it trains (override freely)."""

    def on_phase_end(self, phase: Phase, index: int, summary: dict) -> None:
        """Called after a phase finished and its best weights were restored (override freely)."""

    # ------------------------------------------------------------------ the loop

    def prepare(self) -> None:
        """Seed everything, load and split the data, build the model (``fit`` starts here)."""
        keras.utils.set_random_seed(self.config.seed)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.datasets = self.build_datasets()
        with self.strategy.scope():
            self.model = self.build_model()

    def fit(self) -> dict:
        """Run all phases (resuming from the run's checkpoint if any), evaluate, write results."""
        try:
            return self._fit()
        finally:
            if self.run_dir != self.shared_run_dir:
                remove_scratch(self.run_dir)

    def _fit(self) -> dict:
        self.prepare()
        state = read_state(self.shared_run_dir / CHECKPOINT_DIR)
        if self.role.is_chief:
            self._write_run_info()
        start_phase, global_epoch = 0, 0
        if state is not None and state["phase_index"] >= len(self.config.phases):
            metrics_file = self.shared_run_dir / "metrics.json"
            if metrics_file.is_file():
                self.log(f"{self.shared_run_dir} is already complete; nothing to resume")
                return json.loads(metrics_file.read_text())
        if state is not None:
            start_phase, global_epoch = state["phase_index"], state["global_epoch"]
            self.phase_summaries = state["completed_phases"]
            folder = self.shared_run_dir / CHECKPOINT_DIR / state["folder"]
            self.model.load_weights(folder / WEIGHTS_FILE)
            load_random_state(self.model, folder)
            where = f"phase {start_phase + 1}, epoch {global_epoch + 1}"
            self.log(f"resuming {self.shared_run_dir} at {where}")
        t_start = time.perf_counter() - (state or {}).get("training_seconds", 0.0)
        for index in range(start_phase, len(self.config.phases)):
            phase = self.config.phases[index]
            resume = state if state is not None and index == start_phase else None
            global_epoch = self._run_phase(phase, index, global_epoch, resume, t_start)
        training_seconds = time.perf_counter() - t_start
        self.model.save(self.run_dir / BEST_MODEL)
        # The chief evaluates and reports; the others wait for it, since a worker that exits
        # first makes TensorFlow log on the chief that a task has crashed.
        metrics = self._finish(training_seconds) if self.role.is_chief else None
        if self.role.multiworker:
            barrier(self.strategy)
        return metrics or self._metrics(training_seconds)

    def _run_phase(
        self, phase: Phase, index: int, start_epoch: int, resume: dict | None, t_start: float
    ) -> int:
        phase_start = resume["phase_start_epoch"] if resume else start_epoch
        phase.policy.apply(self.model)
        max_epoch = phase_start + phase.epochs
        self.phase_inputs = self.build_phase_inputs(
            phase, index, start_epoch, max_epoch - start_epoch
        )
        fit_model = self.phase_inputs.model
        with self.strategy.scope():
            self.compile_for_phase(phase, fit_model)
        callbacks = self.build_callbacks(phase, index, phase_start)
        self._t_start = t_start
        if resume and resume.get("phase_epochs_done", 0) > 0:
            folder = self.shared_run_dir / CHECKPOINT_DIR / resume["folder"]
            with self.strategy.scope():
                load_optimizer(fit_model.optimizer, fit_model, folder)
            es = next((c for c in callbacks if isinstance(c, ResumableEarlyStopping)), None)
            if es is not None and "early_stopping" in resume:
                es.load_state(resume["early_stopping"], folder / EARLY_STOPPING_PREFIX)
        self.on_phase_begin(phase, index)
        counts = _param_counts(self.model)
        t0 = time.perf_counter()
        if self.role.multiworker:  # Keras's fit fails under this strategy (see the module)
            from cifar.distributed.loop import fit_multiworker

            history = fit_multiworker(
                fit_model,
                self.strategy,
                self.phase_inputs.train,
                self.phase_inputs.val,
                steps_per_epoch=self.datasets.steps_per_epoch,
                initial_epoch=start_epoch,
                epochs=max_epoch,
                callbacks=callbacks,
                verbose=self.verbose,
            )
        else:
            history = fit_model.fit(
                self.phase_inputs.train,
                validation_data=self.phase_inputs.val,
                initial_epoch=start_epoch,
                epochs=max_epoch,
                # The pipeline holds every epoch of the phase back to back, each shuffled by
                # (seed, epoch): one iterator, so a resumed phase continues the same sequence.
                steps_per_epoch=self.datasets.steps_per_epoch,
                class_weight=self.class_weights(),
                callbacks=callbacks,
                verbose=self.verbose,
                shuffle=False,
            )
        end_epoch = start_epoch + len(history.epoch)
        summary = self._phase_summary(phase, callbacks, phase_start, end_epoch, counts)
        summary["cache"] = self.phase_inputs.description
        summary["seconds"] = round(
            time.perf_counter() - t0 + (resume or {}).get("phase_seconds", 0.0), 2
        )
        self.phase_summaries.append(summary)
        self.on_phase_end(phase, index, summary)
        # Phase boundary checkpoint: best weights restored, next phase starts fresh.
        save_checkpoint(
            self.run_dir / CHECKPOINT_DIR,
            self.model,
            {
                "phase_index": index + 1,
                "global_epoch": end_epoch,
                "phase_start_epoch": end_epoch,
                "phase_epochs_done": 0,
                "completed_phases": self.phase_summaries,
                "training_seconds": time.perf_counter() - t_start,
            },
        )
        return end_epoch

    def _state_fn(self, index: int, phase_start: int):
        t_phase = time.perf_counter()

        def state(global_epoch: int) -> dict:
            return {
                "phase_index": index,
                "global_epoch": global_epoch,
                "phase_start_epoch": phase_start,
                "phase_epochs_done": global_epoch - phase_start,
                "completed_phases": self.phase_summaries,
                "phase_seconds": time.perf_counter() - t_phase,
                "training_seconds": time.perf_counter() - self._t_start,
            }

        return state

    def _phase_summary(self, phase, callbacks, phase_start, end_epoch, counts) -> dict:
        es = next((c for c in callbacks if isinstance(c, ResumableEarlyStopping)), None)
        epochs_run = end_epoch - phase_start
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
            "epochs_run": epochs_run,
            "first_epoch": phase_start + 1,
            "last_epoch": end_epoch,
            "stop_reason": reason,
            "best_epoch": best_epoch,
            "best_val_loss": None if es is None or es.best is None else float(es.best),
            **counts,
        }

    # ------------------------------------------------------------------ results

    def evaluate(self) -> dict:
        """Evaluate the current model on the test set and write the evaluation files."""
        from cifar.evaluation import evaluate_and_save

        data = self.datasets.data
        return evaluate_and_save(
            self.run_dir,
            self.model,
            data.x_test,
            data.y_test,
            data.class_names,
            image_size=self.image_size,
            batch_size=max(self.config.data.batch_size, 64),
        )

    def _finish(self, training_seconds: float) -> dict:
        metrics = self._metrics(training_seconds)
        metrics["test"] = self.evaluate()
        _write_json(self.run_dir / "metrics.json", metrics)
        if self.config.report:
            from cifar.report import finalize_run

            finalize_run(self.run_dir)
        print(
            f"test accuracy {metrics['test']['accuracy']:.4f}, loss {metrics['test']['loss']:.4f}"
            f" -> {self.run_dir}"
        )
        return metrics

    def _metrics(self, training_seconds: float) -> dict:
        d = self.datasets
        return {
            "name": self.config.name,
            "run_dir": str(self.run_dir),
            "finished_at": datetime.now().isoformat(timespec="seconds"),
            "model": {
                "name": self.config.model.name,
                "input_size": self.image_size,
                "source_size": int(d.data.image_shape[0]),
                "weights": self.config.model.weights,
                "total_params": int(self.model.count_params()),
                "layers": len(self.model.layers),
            },
            "data": {
                "dataset": d.data.extra.get("dataset", self.config.data.dataset),
                "source": d.data.source,
                "class_names": d.data.class_names,
                "n_train": int(len(d.train_idx)),
                "n_val": int(len(d.val_idx)),
                "n_test": int(len(d.data.y_test)),
                "train_counts": _counts(d.data.y_train[d.train_idx], d.data.num_classes),
                "test_counts": _counts(d.data.y_test, d.data.num_classes),
                **{
                    k: v
                    for k, v in d.data.extra.items()
                    if k in ("layout", "test_source", "val_source", "skipped_unreadable")
                },
                "class_weight": self.config.data.class_weight,
            },
            "phases": self.phase_summaries,
            "training_seconds": round(training_seconds, 2),
            # Peak resident memory of this process so far (Linux reports KiB).
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }

    def _write_run_info(self) -> None:
        config = self.config.to_dict()
        config["model"]["input_size"] = self.image_size
        config["phases"] = [
            {**asdict(p), "trainable": p.policy.describe()} for p in self.config.phases
        ]
        _write_json(self.run_dir / "config.json", config)
        data = self.datasets.data
        (self.run_dir / "labels.txt").write_text("\n".join(data.class_names) + "\n")
        if not (self.run_dir / "samples.png").exists():
            from cifar.data.samples import plot_sample_grid

            plot_sample_grid(
                data.x_train, data.y_train, data.class_names, self.run_dir / "samples.png"
            )

    def _new_run_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(self.config.runs_dir) / f"{self.config.name}-{stamp}"
        suffix = 1
        while path.exists():  # two runs started in the same second
            suffix += 1
            path = Path(self.config.runs_dir) / f"{self.config.name}-{stamp}-{suffix}"
        return path

    def _early_stopping(self, phase: Phase) -> ResumableEarlyStopping:
        return ResumableEarlyStopping(
            monitor=phase.monitor, patience=phase.patience, restore_best_weights=True
        )


def _import_callback(path: str) -> keras.callbacks.Callback:
    import importlib

    module_name, _, cls_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"invalid configuration: callbacks.extra: cannot import {path!r} ({exc})"
        ) from exc
    return cls()


def _param_counts(model: keras.Model) -> dict:
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    layers = list(leaf_layers(model))
    return {
        "trainable_params": trainable,
        "non_trainable_params": frozen,
        "trainable_layers": sum(1 for layer in layers if layer.trainable and layer.weights),
        "total_layers": len(layers),
    }


def _counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(labels, minlength=n_classes).astype(int).tolist()


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def resume_trainer(run_dir: str | Path, strategy_name: str | None = None, **kwargs) -> Trainer:
    """A Trainer continuing the run in ``run_dir`` from its last checkpoint.

    ``strategy_name`` replaces the run's ``strategy`` (e.g. finish on one process).
    """
    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    config = load_config(json.loads(config_file.read_text()))
    if strategy_name:
        config.strategy = strategy_name
    return Trainer(config, run_dir=run_dir, **kwargs)
