"""Per-epoch history across phases, written as JSON and CSV after every epoch."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import keras

from cifar.run_files import HISTORY_FILE, read_json, write_json

COLUMNS = ["epoch", "phase", "phase_index", "phase_epoch", "seconds"]


class HistoryLogger(keras.callbacks.Callback):
    """Appends one row per epoch (global epoch, phase name, metrics, learning rate, seconds).

    Rows already in ``history.json`` (an earlier phase, or a resumed run) are kept, and rows
    of epochs that are run again after a resume replace the old ones.

    Args:
        run_dir: folder receiving ``history.json`` and ``history.csv``.
        phase_name: name of the phase this instance serves.
        phase_index: index of the phase.
        phase_start_epoch: global epoch index at which the phase began.

    Example:
        >>> logger = HistoryLogger("runs/x", "frozen", 0, 0)
    """

    def __init__(
        self, run_dir: str | Path, phase_name: str, phase_index: int, phase_start_epoch: int
    ):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.phase_name = phase_name
        self.phase_index = phase_index
        self.phase_start_epoch = phase_start_epoch
        self._t0 = 0.0

    @property
    def json_path(self) -> Path:
        """Where the JSON history lives."""
        return self.run_dir / HISTORY_FILE

    def rows(self) -> list[dict]:
        """The history written so far."""
        return read_json(self.json_path, [], kind=list)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {
            "epoch": epoch + 1,
            "phase": self.phase_name,
            "phase_index": self.phase_index,
            "phase_epoch": epoch - self.phase_start_epoch + 1,
            "seconds": round(time.perf_counter() - self._t0, 3),
        }
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        rows = [r for r in self.rows() if r["epoch"] < row["epoch"]] + [row]
        write_json(self.json_path, rows)
        keys = COLUMNS + sorted({k for r in rows for k in r} - set(COLUMNS))
        tmp = self.run_dir / "history.csv.tmp"
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.run_dir / "history.csv")
