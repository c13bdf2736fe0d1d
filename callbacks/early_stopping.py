"""Keras early stopping whose progress survives an interrupted run."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``keras.callbacks.EarlyStopping`` that can save and restore its counters and best weights.

    Behaves exactly like the Keras callback (best weights restored at the end of ``fit``); in
    addition :meth:`save_state` / :meth:`load_state` let a resumed run continue with the same
    patience counter, best value and best weights.

    Args:
        monitor: quantity to watch (``"val_loss"`` in the reference recipe).
        patience: epochs without improvement before stopping.
        restore_best_weights: put the best epoch's weights back when training ends.
        **kwargs: any other ``keras.callbacks.EarlyStopping`` argument.

    Example:
        >>> es = ResumableEarlyStopping(monitor="val_loss", patience=3)
        >>> model.fit(train, validation_data=val, epochs=10, callbacks=[es])  # doctest: +SKIP
        >>> es.save_state("ckpt/early_stopping")  # doctest: +SKIP
    """

    def __init__(self, monitor="val_loss", patience=3, restore_best_weights=True, **kwargs):
        super().__init__(
            monitor=monitor, patience=patience, restore_best_weights=restore_best_weights, **kwargs
        )
        self._pending: dict | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._pending is not None:
            state, self._pending = self._pending, None
            self.wait = state["wait"]
            self.best = state["best"]
            self.best_epoch = state["best_epoch"]
            self.best_weights = state.get("best_weights")

    @property
    def stopped_early(self) -> bool:
        """True when the last ``fit`` ended because patience ran out."""
        return self.stopped_epoch > 0

    def state(self) -> dict:
        """Counters as plain data (without the weights)."""
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}

    def save_state(self, prefix: str | Path) -> dict:
        """Write the best weights to ``<prefix>.npz``; return the counters for state.json."""
        if self.best_weights is not None:
            np.savez(f"{prefix}.npz", *self.best_weights)
        return self.state()

    def load_state(self, state: dict, prefix: str | Path) -> None:
        """Restore counters (and best weights from ``<prefix>.npz``) at the next ``fit``."""
        pending = dict(state)
        file = Path(f"{prefix}.npz")
        if file.is_file():
            with np.load(file) as arrays:
                pending["best_weights"] = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        self._pending = pending
