"""Where each worker of a multi-worker run writes: the chief into the run, others into scratch.

The chief chooses the run directory (``--run-dir``, or ``runs/<name>-<timestamp>`` from its own
clock) and broadcasts the path, so every worker names the same run in its log lines and reads
the same checkpoint on resume. Workers other than the chief write their copies of the run's
files into a temporary folder that is removed when training ends, as Keras's multi-worker guide
does for checkpoints: the run directory holds one copy of everything.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from cifar.distributed.strategy import WorkerRole

MAX_PATH_BYTES = 4096


def broadcast_text(strategy: tf.distribute.Strategy, text: str) -> str:
    """The chief's ``text``, on every worker (a collective: every worker must call it)."""
    data = np.zeros(MAX_PATH_BYTES, np.int32)
    encoded = np.frombuffer(text.encode("utf-8"), np.uint8)
    if len(encoded) > MAX_PATH_BYTES:
        raise ValueError(f"text of {len(encoded)} bytes is longer than {MAX_PATH_BYTES}")
    data[: len(encoded)] = encoded

    def first_replica_only():
        # Only global replica 0 (the chief's first device) contributes; the sum is its value.
        ctx = tf.distribute.get_replica_context()
        keep = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.int32)
        return tf.constant(data) * keep

    @tf.function  # strategy.run outside a tf.function is slow and warns about it
    def broadcast():
        return strategy.reduce("SUM", strategy.run(first_replica_only), axis=None)

    summed = broadcast().numpy()
    return bytes(summed[summed > 0].astype(np.uint8)).decode("utf-8")


def agree_on_run_dir(strategy: tf.distribute.Strategy, role: WorkerRole, run_dir: Path) -> Path:
    """The chief's ``run_dir`` on every worker (unchanged on a single process)."""
    return Path(broadcast_text(strategy, str(run_dir))) if role.multiworker else run_dir


def scratch_dir(role: WorkerRole) -> Path:
    """A fresh temporary folder for a non-chief worker's copies of the run's files."""
    return Path(tempfile.mkdtemp(prefix=f"cifar-worker{role.index}-"))


def remove_scratch(path: Path) -> None:
    """Delete a worker's scratch folder (nothing in it is kept)."""
    shutil.rmtree(path, ignore_errors=True)
