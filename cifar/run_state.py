"""Resume bookkeeping: where a run stands, what each checkpoint records, what resume restores.

The files themselves (weights, optimizer, RNG and early-stopping state, ``state.json``) are
written by :mod:`callbacks.checkpoint`; this module decides which state dictionary goes in
them and puts a resumed run back where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from callbacks.checkpoint import (
    EARLY_STOPPING_PREFIX,
    WEIGHTS_FILE,
    load_optimizer,
    load_random_state,
    read_state,
    save_checkpoint,
)
from callbacks.early_stopping import ResumableEarlyStopping


class RunState:
    """The run's progress: completed phases, the global epoch, and the training clock.

    Args:
        checkpoint_dir: the run's ``checkpoint/`` folder (the chief's, on several workers).

    Example:
        >>> state = RunState("runs/exp-20260101-000000/checkpoint")  # doctest: +SKIP
        >>> state.restore_model(model)  # doctest: +SKIP
        >>> state.start_phase, state.global_epoch  # doctest: +SKIP
        (1, 10)
    """

    def __init__(self, checkpoint_dir: str | Path):
        self.dir = Path(checkpoint_dir)
        self.saved = read_state(self.dir)
        saved = self.saved or {}
        self.start_phase: int = saved.get("phase_index", 0)
        self.global_epoch: int = saved.get("global_epoch", 0)
        self.completed_phases: list[dict] = list(saved.get("completed_phases", []))
        self.t_start = time.perf_counter() - saved.get("training_seconds", 0.0)

    def finished(self, n_phases: int) -> bool:
        """Every phase ran (the run only lacks what follows training, if anything)."""
        return self.saved is not None and self.start_phase >= n_phases

    def training_seconds(self) -> float:
        """Training time so far, including that of the runs this one resumes."""
        return time.perf_counter() - self.t_start

    def restore_model(self, model: keras.Model) -> bool:
        """Load the checkpoint's weights and RNG state into ``model``; False with none."""
        if self.saved is None:
            return False
        folder = self.dir / self.saved["folder"]
        model.load_weights(folder / WEIGHTS_FILE)
        load_random_state(model, folder)
        return True

    def phase_resume(self, index: int) -> dict | None:
        """The saved state if phase ``index`` is the one to resume (None: it starts fresh)."""
        return self.saved if self.saved is not None and index == self.start_phase else None

    def restore_phase(
        self,
        resume: dict | None,
        model: keras.Model,
        callbacks: list[keras.callbacks.Callback],
        strategy: tf.distribute.Strategy,
    ) -> None:
        """Mid-phase resume: the optimizer's variables and the early-stopping counters."""
        if not resume or resume.get("phase_epochs_done", 0) <= 0:
            return
        folder = self.dir / resume["folder"]
        with strategy.scope():
            load_optimizer(model.optimizer, model, folder)
        es = find_early_stopping(callbacks)
        if es is not None and "early_stopping" in resume:
            es.load_state(resume["early_stopping"], folder / EARLY_STOPPING_PREFIX)

    def epoch_state(self, index: int, phase_start: int) -> Callable[[int], dict]:
        """What the checkpoint after each epoch of phase ``index`` records."""
        t_phase = time.perf_counter()

        def state(global_epoch: int) -> dict:
            return {
                "phase_index": index,
                "global_epoch": global_epoch,
                "phase_start_epoch": phase_start,
                "phase_epochs_done": global_epoch - phase_start,
                "completed_phases": self.completed_phases,
                "phase_seconds": time.perf_counter() - t_phase,
                "training_seconds": self.training_seconds(),
            }

        return state

    def end_phase(self, checkpoint_dir: Path, model: keras.Model, summary: dict) -> None:
        """Record a finished phase and checkpoint its boundary into ``checkpoint_dir`` (this
        process's own; the next phase starts fresh)."""
        self.completed_phases.append(summary)
        self.global_epoch = summary["last_epoch"]
        save_checkpoint(
            checkpoint_dir,
            model,
            {
                "phase_index": len(self.completed_phases),
                "global_epoch": self.global_epoch,
                "phase_start_epoch": self.global_epoch,
                "phase_epochs_done": 0,
                "completed_phases": self.completed_phases,
                "training_seconds": self.training_seconds(),
            },
        )


def find_early_stopping(callbacks: list) -> ResumableEarlyStopping | None:
    """The phase's early-stopping callback, if it has one."""
    return next((cb for cb in callbacks if isinstance(cb, ResumableEarlyStopping)), None)
