"""TensorBoard logging with the phase and learning rate of every epoch."""

from __future__ import annotations

import keras
import tensorflow as tf


class PhaseTensorBoard(keras.callbacks.TensorBoard):
    """``keras.callbacks.TensorBoard`` that also logs ``epoch_phase`` and ``epoch_learning_rate``.

    Epochs are numbered globally across phases (the Trainer passes ``initial_epoch``), so the
    curves of all phases line up on one axis and the ``epoch_phase`` scalar marks where each
    phase begins.

    Args:
        log_dir: the run's ``tensorboard/`` folder.
        phase_index: index of the phase this callback instance serves.
        phase_name: its name (logged as text once).
        **kwargs: any other ``keras.callbacks.TensorBoard`` argument.

    Example:
        >>> tb = PhaseTensorBoard("runs/x/tensorboard", phase_index=1, phase_name="finetune")
    """

    def __init__(self, log_dir: str, phase_index: int = 0, phase_name: str = "", **kwargs):
        kwargs.setdefault("histogram_freq", 0)
        kwargs.setdefault("write_graph", False)
        kwargs.setdefault("update_freq", "epoch")
        kwargs.setdefault("profile_batch", 0)
        super().__init__(log_dir=log_dir, **kwargs)
        self.phase_index = phase_index
        self.phase_name = phase_name

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        lr = self.model.optimizer.learning_rate
        lr_value = float(keras.ops.convert_to_numpy(lr))
        with self._train_writer.as_default():
            tf.summary.scalar("epoch_phase", float(self.phase_index), step=epoch)
            tf.summary.scalar("epoch_learning_rate", lr_value, step=epoch)
            if epoch == self._start_epoch:
                tf.summary.text("phase", f"{self.phase_index}: {self.phase_name}", step=epoch)
        self._train_writer.flush()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._start_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if self._start_epoch is None:
            self._start_epoch = epoch
