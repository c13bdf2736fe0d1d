"""One training process of the distributed tests (run as a script, one per worker).

Usage: python tests/distributed_worker.py STRATEGY RUNS_DIR WEIGHTS_OUT

It also holds :class:`SaveWeights`, a callback the CLI tests add with
``--set 'callbacks.extra=["distributed_worker:SaveWeights"]'``.

STRATEGY is ``default``, ``multiworker`` (cluster from TF_CONFIG) or ``mirrored2`` (MirroredStrategy
over two logical CPU devices). Trains a small CNN without dropout on synthetic images for one
epoch and saves the final weights to WEIGHTS_OUT (.npz); prints the metrics as the last line.
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
    trainer = Trainer(config, strategy=strategy, data=synthetic_data(200, 50), verbose=0)
    metrics = trainer.fit()
    np.savez(out, *trainer.model.get_weights())
    print(json.dumps({"replicas": trainer.strategy.num_replicas_in_sync, **metrics["phases"][0]}))


if __name__ == "__main__":
    main()
