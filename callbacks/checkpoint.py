"""Per-epoch checkpoint of everything needed to resume a run where it stopped."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from cifar.run_files import read_json, write_json

STATE_FILE = "state.json"
WEIGHTS_FILE = "model.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"
RANDOM_STATE_FILE = "random_state.npz"
EARLY_STOPPING_PREFIX = "early_stopping_best"


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves model weights, optimizer variables and trainer state after every epoch.

    Each checkpoint goes into a fresh ``epoch_NNNN/`` folder and ``state.json`` (which names
    that folder) is replaced atomically last, so a process killed mid-save leaves the previous
    complete checkpoint in force; older folders are deleted afterwards.

    Args:
        checkpoint_dir: the run's ``checkpoint/`` folder.
        state_fn: returns the trainer's state after a finished global epoch (JSON-able dict).
        early_stopping: the phase's ResumableEarlyStopping (its counters are saved too).
        weights_model: the model whose weights are saved when it differs from the model being
            fitted (a cached phase fits a tail that shares the full model's layers).

    Example:
        >>> ckpt = ResumeCheckpoint("runs/x/checkpoint", lambda epoch: {"epoch": epoch})
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        state_fn: Callable[[int], dict],
        early_stopping=None,
        weights_model: keras.Model | None = None,
    ):
        super().__init__()
        self.dir = Path(checkpoint_dir)
        self.state_fn = state_fn
        self.early_stopping = early_stopping
        self.weights_model = weights_model

    def on_epoch_end(self, epoch, logs=None):
        # A cached phase trains a tail model: save the full model's weights, the tail's optimizer.
        save_checkpoint(
            self.dir,
            self.weights_model or self.model,
            self.state_fn(epoch + 1),
            self.early_stopping,
            optimizer=self.model.optimizer,
        )


def save_checkpoint(
    directory: Path, model: keras.Model, state: dict, early_stopping=None, optimizer=None
) -> None:
    """Write weights, optimizer and early-stopping state, then point ``state.json`` at them."""
    optimizer = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    directory.mkdir(parents=True, exist_ok=True)
    folder = directory / f"epoch_{state['global_epoch']:04d}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    model.save_weights(folder / WEIGHTS_FILE)
    np.savez(folder / RANDOM_STATE_FILE, *[np.asarray(v) for v in random_state(model)])
    if optimizer is not None:
        store: dict = {}
        optimizer.save_own_variables(store)
        np.savez(folder / OPTIMIZER_FILE, **{str(k): np.asarray(v) for k, v in store.items()})
    if early_stopping is not None:
        state["early_stopping"] = early_stopping.save_state(folder / EARLY_STOPPING_PREFIX)
    state["folder"] = folder.name
    write_json(directory / STATE_FILE, state)
    for old in directory.glob("epoch_*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


def load_optimizer(optimizer: keras.optimizers.Optimizer, model: keras.Model, folder: Path) -> bool:
    """Restore optimizer variables saved by :func:`save_checkpoint`; False when none exist."""
    file = folder / OPTIMIZER_FILE
    if not file.is_file():
        return False
    optimizer.build(model.trainable_variables)
    with np.load(file) as arrays:
        optimizer.load_own_variables({k: arrays[k] for k in arrays.files})
    return True


def random_state(model: keras.Model) -> list:
    """The model's RNG state variables (Dropout's seed generators), in a stable order.

    ``save_weights`` leaves them out, so a resumed run would otherwise draw the dropout masks
    of the run's first epochs again instead of those of the epoch it resumes at.
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights and "seed_generator" in v.path]


def load_random_state(model: keras.Model, folder: Path) -> bool:
    """Restore what :func:`random_state` saved; False when the checkpoint has none."""
    file = Path(folder) / RANDOM_STATE_FILE
    if not file.is_file():
        return False
    variables = random_state(model)
    with np.load(file) as arrays:
        if len(arrays.files) != len(variables):
            return False
        for i, variable in enumerate(variables):
            variable.assign(arrays[f"arr_{i}"])
    return True


def read_state(directory: Path) -> dict | None:
    """The last complete checkpoint state, or None."""
    file = Path(directory) / STATE_FILE
    return read_json(file, None)
