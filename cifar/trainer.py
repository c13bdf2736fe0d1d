"""The Trainer: owns the data pipeline, the model factory and the phase schedule.

``Trainer(config).fit()`` runs every phase (recompiling the model for each), evaluates on the
untouched test set and writes everything into one run directory. Subclass it and override the
``build_*`` hooks or :meth:`on_phase_end` to customise a step without rewriting the loop.
Each concern it calls lives in its own module: the splits (:mod:`cifar.data.splits`), cached
activations (:mod:`cifar.activations.plan`), resume (:mod:`cifar.run_state`) and the run
directory's files (:mod:`cifar.run_files` names and writes them, :mod:`cifar.run_record` says
what the Trainer records).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from callbacks.checkpoint import ResumeCheckpoint
from callbacks.extra import import_callback
from callbacks.history import HistoryLogger
from callbacks.progress import ProgressETA
from callbacks.tensorboard import PhaseTensorBoard
from cifar import run_files, run_record
from cifar.activations.plan import ActivationPlanner, PhaseInputs
from cifar.config import TrainConfig
from cifar.data import ImageData, load_dataset
from cifar.data.splits import Datasets, balanced_class_weights, build_datasets
from cifar.distributed import barrier, make_strategy, worker_role
from cifar.distributed.loop import fit_phase
from cifar.distributed.rundir import agree_on_run_dir, remove_scratch, scratch_dir
from cifar.execution import phase_steps_per_execution
from cifar.inference.input_size import input_size
from cifar.models import create_model
from cifar.phases import Phase
from cifar.run_state import RunState, find_early_stopping

__all__ = ["Datasets", "PhaseInputs", "Trainer", "resume_trainer"]


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
        self.image_size = input_size(self.config.model)
        # The size the trained network is calibrated, evaluated and saved at (see
        # choose_eval_size); the training size until the phases are done.
        self.eval_size = self.image_size
        self.eval_size_choice = None
        # The run every worker agrees on (checkpoints are read there); this process writes
        # into run_dir, which is a scratch folder on workers other than the chief.
        c = self.config
        chosen = Path(run_dir) if run_dir else run_files.new_run_dir(c.runs_dir, c.name)
        self.shared_run_dir = agree_on_run_dir(self.strategy, self.role, chosen)
        self.run_dir = self.shared_run_dir if self.role.is_chief else scratch_dir(self.role)
        self._data = data
        self.model: keras.Model | None = None
        self.datasets: Datasets | None = None
        self.phase_inputs: PhaseInputs | None = None
        self.state: RunState | None = None
        self.folded = None  # the temperature folded into the model at the end (calibrate)
        self._val_probs = None
        self._val_predictions = None  # (labels, probs) of the model as trained, if known

    @property
    def phase_summaries(self) -> list[dict]:
        """One summary per finished phase (``metrics.json``'s ``phases``)."""
        return self.state.completed_phases if self.state else []

    # ------------------------------------------------------------------ construction hooks

    @property
    def cache_dir(self) -> Path:
        """Where decoded image folders and cached activations live (beside the run folder)."""
        return self.run_dir.parent / ".cache"

    def load_data(self) -> ImageData:
        """Load the configured data set (override to bring your own ``ImageData``)."""
        return load_dataset(
            self.config.data, self.image_size, self.config.seed, self.cache_dir, self.log
        )

    def build_datasets(self) -> Datasets:
        """Split off the validation set and build the three tf.data pipelines."""
        data = self._data if self._data is not None else self.load_data()
        return build_datasets(data, self.config.data, self.image_size, self.config.seed)

    def build_model(self) -> keras.Model:
        """Create the configured model from the registry (called inside the strategy scope)."""
        m = self.config.model
        n_cls = self.datasets.data.num_classes if self.datasets else 10
        return create_model(m.name, num_classes=n_cls, input_size=self.image_size, **m.options())

    def build_model_at(self, size: int) -> keras.Model:
        """The configured model at input ``size`` without pretrained weights (they are copied)."""
        m = self.config.model
        n_cls = self.datasets.data.num_classes if self.datasets else 10
        options = {**m.options(), "weights": None}
        return create_model(m.name, num_classes=n_cls, input_size=size, **options)

    def compile_for_phase(self, phase: Phase, model: keras.Model) -> None:
        """Compile ``model`` (the full model, or a cached phase's tail) with a fresh optimizer."""
        cached = self.phase_inputs is not None and self.phase_inputs.cached
        model.compile(
            optimizer=phase.make_optimizer(self.datasets.steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=phase.label_smoothing),
            metrics=["accuracy"],
            jit_compile=self.config.jit_compile,
            steps_per_execution=phase_steps_per_execution(
                self.config.steps_per_execution, self.datasets.steps_per_epoch, cached
            ),
        )

    def class_weights(self) -> dict[int, float] | None:
        """Per-class loss weights for ``data.class_weight = "balanced"`` (else None)."""
        if self.config.data.class_weight != "balanced":
            return None
        d = self.datasets
        return balanced_class_weights(d.data.y_train[d.train_idx], d.data.num_classes)

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
            cbs.append(phase.make_early_stopping())
        if cfg.tensorboard:
            cbs.append(PhaseTensorBoard(str(self.run_dir / "tensorboard"), index, phase.name))
        if cfg.confusion_matrix_every and self.role.is_chief:  # only the chief's figures are kept
            from callbacks.confusion_matrix import ConfusionMatrixLogger

            names, every = self.datasets.data.class_names, cfg.confusion_matrix_every
            cbs.append(
                ConfusionMatrixLogger.for_run(self.run_dir, self.phase_inputs.val, names, every)
            )
        if cfg.progress:
            later = sum(p.epochs for p in self.config.phases[index + 1 :])
            n, prefix = len(self.config.phases), self.role.prefix
            cbs.append(ProgressETA(phase.name, index, n, start_epoch, later, prefix=prefix))
        cbs.extend(import_callback(path) for path in cfg.extra)
        cbs.extend(self.extra_callbacks)
        # The checkpoint runs last so it sees the early-stopping counters of this epoch.
        folder, state_fn = self.run_dir / run_files.CHECKPOINT_DIR, self.state.epoch_state
        es = find_early_stopping(cbs)
        cbs.append(ResumeCheckpoint(folder, state_fn(index, start_epoch), es, self.model))
        return cbs

    def build_phase_inputs(
        self, phase: Phase, index: int, first_epoch: int = 0, epochs: int | None = None
    ) -> PhaseInputs:
        """What a phase fits for global epochs ``first_epoch`` to ``first_epoch + epochs - 1``:
        the full model on images, or (where :mod:`cifar.activations.plan` finds it exact) a
        tail on cached activations."""
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
        n_train = len(self.datasets.train_idx)
        self.config.phases = [p.capped_to(n_train) for p in self.config.phases]
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
        self.state = state = RunState(self.shared_run_dir / run_files.CHECKPOINT_DIR)
        if self.role.is_chief:
            data = self.datasets.data
            run_record.write_run_info(self.run_dir, self.config, self.image_size, data)
        metrics_file = self.shared_run_dir / run_files.METRICS_FILE
        if state.finished(len(self.config.phases)) and metrics_file.is_file():
            self.log(f"{self.shared_run_dir} is already complete; nothing to resume")
            return run_files.read_json(metrics_file)
        if state.restore_model(self.model):
            where = f"phase {state.start_phase + 1}, epoch {state.global_epoch + 1}"
            self.log(f"resuming {self.shared_run_dir} at {where}")
        for index in range(state.start_phase, len(self.config.phases)):
            self._run_phase(self.config.phases[index], index, state.phase_resume(index))
        training_seconds = state.training_seconds()
        self.choose_eval_size()
        # Every worker fits T on the same validation predictions, so all end with the same
        # (folded) weights, as after every step; only the chief's copy is kept.
        self.folded = self.calibrate()
        self.model.save(self.run_dir / run_files.BEST_MODEL)
        if self.role.is_chief:
            from cifar.trust import write_record

            write_record(self.run_dir, self.folded)
        # The chief evaluates and reports; the others wait for it, since a worker that exits
        # first makes TensorFlow log on the chief that a task has crashed.
        metrics = self._finish(training_seconds) if self.role.is_chief else None
        if self.role.multiworker:
            barrier(self.strategy)
        return metrics or self._metrics(training_seconds)

    def _run_phase(self, phase: Phase, index: int, resume: dict | None) -> None:
        start_epoch = self.state.global_epoch
        phase_start = resume["phase_start_epoch"] if resume else start_epoch
        phase.policy.apply(self.model)
        max_epoch = phase_start + phase.epochs
        self.phase_inputs = inputs = self.build_phase_inputs(
            phase, index, start_epoch, max_epoch - start_epoch
        )
        with self.strategy.scope():
            self.compile_for_phase(phase, inputs.model)
        callbacks = self.build_callbacks(phase, index, phase_start)
        self.state.restore_phase(resume, inputs.model, callbacks, self.strategy)
        self.on_phase_begin(phase, index)
        counts, t0 = run_record.param_counts(self.model), time.perf_counter()
        history = fit_phase(
            inputs.model,
            self.strategy,
            inputs.train,
            inputs.val,
            multiworker=self.role.multiworker,
            class_weight=self.class_weights(),
            initial_epoch=start_epoch,
            epochs=max_epoch,
            # The pipeline holds every epoch of the phase back to back, each shuffled by
            # (seed, epoch): one iterator, so a resumed phase continues the same sequence.
            steps_per_epoch=self.datasets.steps_per_epoch,
            callbacks=callbacks,
            verbose=self.verbose,
        )
        inputs.release()
        end_epoch = start_epoch + len(history.epoch)
        es = find_early_stopping(callbacks)
        seconds = time.perf_counter() - t0 + (resume or {}).get("phase_seconds", 0.0)
        summary = run_record.phase_summary(phase, es, phase_start, end_epoch)
        summary.update(counts, cache=inputs.description, seconds=round(seconds, 2))
        # Phase boundary checkpoint: best weights restored, next phase starts fresh.
        self.state.end_phase(self.run_dir / run_files.CHECKPOINT_DIR, self.model, summary)
        self.on_phase_end(phase, index, summary)

    # ------------------------------------------------------------------ results

    def evaluate(self) -> dict:
        """Evaluate the current model on the test set and write the evaluation files."""
        from cifar.evaluation import evaluate_and_save

        d, batch_size = self.datasets.data, max(self.config.data.batch_size, 64)
        return evaluate_and_save(
            self.run_dir,
            self.model,
            d.x_test,
            d.y_test,
            d.class_names,
            self.eval_size,
            batch_size,
            tta=self.config.tta,
        )

    def choose_eval_size(self) -> None:
        """Settle the size the trained network is calibrated, evaluated and saved at.

        ``model.eval_size`` unset keeps the training size; a number or ``"auto"`` (chosen on
        the validation split among the training size and larger multiples of 32 up to the
        stored size, see :mod:`cifar.eval_size`) rebuilds ``self.model`` at that size with the
        same weights and resizes the validation and test pipelines to match.
        """
        from cifar.eval_size import EvalSizeChoice, candidate_sizes, choose_eval_size, rebuild_at
        from cifar.evaluation import predict_dataset

        setting = self.config.model.eval_size
        if setting is None:
            return
        with self.strategy.scope():
            models: dict[int, keras.Model] = {}
            predicted: dict[int, tuple[np.ndarray, np.ndarray]] = {}

            def model_at(size: int) -> keras.Model:
                if size not in models:
                    models[size] = rebuild_at(self.model, size, self.build_model_at)
                return models[size]

            def predict_val(size: int) -> tuple[np.ndarray, np.ndarray]:
                val = self.datasets.at_eval_size(size).val
                predicted[size] = predict_dataset(model_at(size), val)
                return predicted[size]

            if setting == "auto":
                stored = int(self.datasets.data.image_shape[0])
                sizes = candidate_sizes(self.image_size, max(stored, self.image_size))
                choice = choose_eval_size(sizes, predict_val)
            else:
                choice = EvalSizeChoice(int(setting), "configured")
            self.model = model_at(choice.size)
        self.datasets = self.datasets.at_eval_size(choice.size)
        self.eval_size, self.eval_size_choice = choice.size, choice
        # calibrate() fits T on these same predictions rather than predict them again.
        self._val_predictions = predicted.get(choice.size)
        tried = ", ".join(f"{c['size']}: {c['val_nll']:.4f}" for c in choice.candidates)
        self.log(
            f"evaluation size: {choice.size}x{choice.size} ({choice.chosen_by}"
            + (f"; validation NLL after T at {tried})" if tried else ")")
        )

    def calibrate(self):
        """Fit T on the validation split and fold it into the model's final Dense layer.

        Called once, after the last phase restored its best weights (a resumed run restores
        the checkpoint's unfolded weights first, so it never folds twice). Returns the
        :class:`~cifar.trust.FoldedTemperature` (T = 1 when
        ``calibration.temperature`` is off).
        """
        from cifar.evaluation import predict_dataset
        from cifar.trust import fit_and_fold

        known = self._val_predictions
        labels, probs = known if known else predict_dataset(self.model, self.datasets.val)
        self._val_probs = probs
        folded = fit_and_fold(self.model, probs, labels, self.config.calibration.temperature)
        if folded.folded:
            from cifar.calibration import apply_temperature

            self._val_probs = apply_temperature(probs, folded.temperature).astype(np.float32)
            self.log(f"calibration: T = {folded.temperature:.4f} (fitted on validation, folded)")
        return folded

    def measure_confidence(self) -> dict:
        """``calibration``, ``selective`` and ``top_losses`` of the test evaluation just written."""
        from cifar.trust import measure_run

        d = self.datasets
        return measure_run(
            self.run_dir,
            self.model,
            d.data,
            d.val_idx,
            self.eval_size,
            self.folded,
            self.config.calibration,
            batch_size=max(self.config.data.batch_size, 64),
            val_probs=self._val_probs,
            log=self.log,
        )

    def _finish(self, training_seconds: float) -> dict:
        metrics = {**self._metrics(training_seconds), "test": self.evaluate()}
        metrics.update(self.measure_confidence())
        run_record.write_results(self.run_dir, metrics, report=self.config.report)
        return metrics

    def _metrics(self, training_seconds: float) -> dict:
        return run_record.run_metrics(self, training_seconds)


def resume_trainer(run_dir: str | Path, strategy_name: str | None = None, **kwargs) -> Trainer:
    """A Trainer continuing the run in ``run_dir`` from its last checkpoint.

    ``strategy_name`` replaces the run's ``strategy`` (e.g. finish on one process).
    """
    return Trainer(run_record.read_run_config(run_dir, strategy_name), run_dir=run_dir, **kwargs)
