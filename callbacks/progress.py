"""One line per epoch with the run's estimated time to completion."""

from __future__ import annotations

import sys
import time

import keras


class ProgressETA(keras.callbacks.Callback):
    """Prints ``[phase i/n name] epoch e/E (run epoch g)  metrics  time/epoch  ETA`` per epoch.

    The ETA assumes every remaining epoch of this and later phases runs (early stopping can
    only make it shorter) at the average epoch time of the current phase. One line per epoch
    keeps log files of background runs readable where a progress bar would flood them.

    Args:
        phase_name: name of the current phase.
        phase_index: its index.
        num_phases: number of phases in the schedule.
        phase_start_epoch: global epoch index at which the phase began (Keras numbers epochs
            across phases; a resumed phase starts later than this).
        remaining_epochs_after: maximum epochs of the phases after this one.
        stream: where to print (stdout by default).
        prefix: put in front of every line (says which worker speaks in a multi-worker run).

    Example:
        >>> ProgressETA("frozen", 0, num_phases=2, remaining_epochs_after=10)
    """

    def __init__(
        self,
        phase_name: str,
        phase_index: int,
        num_phases: int = 1,
        phase_start_epoch: int = 0,
        remaining_epochs_after: int = 0,
        stream=None,
        prefix: str = "",
    ):
        super().__init__()
        self.phase_name = phase_name
        self.phase_index = phase_index
        self.num_phases = num_phases
        self.phase_start_epoch = phase_start_epoch
        self.remaining_epochs_after = remaining_epochs_after
        self.stream = stream or sys.stdout
        self.prefix = prefix
        self._times: list[float] = []

    def on_train_begin(self, logs=None):
        self._times = []
        self._end_epoch = self.params.get("epochs", 0)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        self._times.append(elapsed)
        avg = sum(self._times) / len(self._times)
        left = (self._end_epoch - epoch - 1) + self.remaining_epochs_after
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if "learning" not in k)
        print(
            f"{self.prefix}[phase {self.phase_index + 1}/{self.num_phases} {self.phase_name}] "
            f"epoch {epoch - self.phase_start_epoch + 1}/{self._end_epoch - self.phase_start_epoch}"
            f" (run epoch {epoch + 1})  {metrics}  {_fmt(elapsed)}/epoch  "
            f"ETA <= {_fmt(avg * left)}",
            file=self.stream,
            flush=True,
        )


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
