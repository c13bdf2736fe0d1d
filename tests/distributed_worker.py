"""One training process of the distributed tests (run as a script, one per worker).

Usage: python tests/distributed_worker.py STRATEGY RUNS_DIR WEIGHTS_OUT [ORDER]

It also holds :class:`SaveWeights`, a callback the CLI tests add with
``--set 'callbacks.extra=["distributed_worker:SaveWeights"]'``.

STRATEGY is ``default``, ``multiworker`` (cluster from TF_CONFIG) or ``mirrored2`` (MirroredStrategy
over two logical CPU devices). Trains a small CNN without dropout on synthetic images for one
epoch and saves the final weights to WEIGHTS_OUT (.npz); prints the metrics as the last line.
ORDER is ``shuffled`` (the Trainer's pipeline, the default) or ``fixed`` (training images in
their stored order; see :func:`fixed_order`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import keras  # importing Keras runs no TensorFlow operation: devices can still be configured

sys.path.insert(0, str(Path(__file__).resolve().parent))

WEIGHTS_ENV = "CIFAR_TEST_WEIGHTS"


class SaveWeights(keras.callbacks.Callback):
    """Saves the model's weights to ``$CIFAR_TEST_WEIGHTS`` when a phase ends (last one wins)."""

    def on_train_end(self, logs=None):
        import numpy as np

        np.savez(os.environ[WEIGHTS_ENV], *self.model.get_weights())


def main() -> None:
    """Train and save the weights."""
    strategy_name, runs_dir, out = sys.argv[1:4]
    order = sys.argv[4] if len(sys.argv) > 4 else "shuffled"
    strategy = None
    if strategy_name == "mirrored2":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        logical = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, logical)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        strategy_name = "default"  # the config's name; the strategy object is passed in

    import numpy as np
    from conftest import synthetic_data

    from cifar.config import load_config
    from cifar.trainer import Trainer

    trainer_class = fixed_order(Trainer) if order == "fixed" else Trainer

    config = load_config(
        {
            "name": "dist",
            "runs_dir": runs_dir,
            "report": False,
            "strategy": strategy_name,
            "data": {"batch_size": 32},
            "model": {"name": "custom_cnn", "weights": None, "dropout": 0.0},
            "phases": [{"name": "a", "trainable": "all", "epochs": 1, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "tensorboard": False},
        }
    )
    trainer = trainer_class(config, strategy=strategy, data=synthetic_data(200, 50), verbose=0)
    metrics = trainer.fit()
    np.savez(out, *trainer.model.get_weights())
    print(json.dumps({"replicas": trainer.strategy.num_replicas_in_sync, **metrics["phases"][0]}))


def fixed_order(trainer_class: type) -> type:
    """``trainer_class`` training on its split without shuffling.

    Keras's fit under a strategy draws one batch from a first pass over the training set before
    training (``_maybe_symbolic_build`` in keras/src/backend/tensorflow/trainer.py), so a set
    reshuffled at every pass trains in the order one device sees one epoch later: the weights
    then differ by the order, not by the arithmetic this test checks.
    """
    from cifar.data.pipeline import make_dataset

    class FixedOrder(trainer_class):
        def build_datasets(self):
            d = super().build_datasets()
            x, y = d.data.x_train[d.train_idx], d.data.y_train[d.train_idx]
            d.train = make_dataset(x, y, d.data.num_classes, self.image_size, 32)
            return d

    return FixedOrder


if __name__ == "__main__":
    main()
