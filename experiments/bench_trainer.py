"""Benchmark the Trainer's per-step overhead against a bare ``model.fit``.

Usage: python experiments/bench_trainer.py [--data-dir DIR] [--images 10000] [--epochs 4]
       [--model custom_cnn] [--input-size 32] [--batch-size 32]

Both sides train the same model (same initial weights, data, batch size and tf.data pipeline)
for the same epochs; the first epoch (tracing) is excluded and the median of the others is
compared. The Trainer side runs with its default callbacks (history, early stopping,
TensorBoard, confusion matrix, progress, per-epoch resume checkpoint).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class EpochTimer:
    """Collects wall time per epoch (a Keras callback built lazily to keep imports below)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self._t0)

        return _Timer()


def main(argv: list[str] | None = None) -> None:
    """Run both sides and print the per-step times and the overhead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args(argv)

    import keras

    from cifar.config import load_config
    from cifar.data import load_cifar10
    from cifar.trainer import Trainer
    from experiments.benchlog import machine_line, write_section

    data = load_cifar10(args.data_dir).subset(train=args.images, test=500)
    config = load_config(
        {
            "name": "bench",
            "runs_dir": tempfile.mkdtemp(prefix="bench-trainer-"),
            "report": False,
            "data": {"batch_size": args.batch_size},
            "model": {"name": args.model, "input_size": args.input_size, "weights": None},
            "phases": [
                {"name": "a", "trainable": "all", "epochs": args.epochs, "patience": args.epochs}
            ],
        }
    )
    trainer_timer = EpochTimer()
    trainer = Trainer(config, data=data, callbacks=[trainer_timer], verbose=0)
    trainer.fit()
    steps = trainer.datasets.steps_per_epoch

    keras.utils.set_random_seed(config.seed)
    bare = trainer.build_model()
    phase = config.phases[0]
    bare.compile(
        optimizer=phase.make_optimizer(steps), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    bare_timer = EpochTimer()
    d = trainer.datasets
    bare.fit(d.train, validation_data=d.val, epochs=args.epochs, callbacks=[bare_timer], verbose=0)

    t_bare = statistics.median(bare_timer.times[1:]) / steps * 1000
    t_trainer = statistics.median(trainer_timer.times[1:]) / steps * 1000
    lines = [
        f"machine: {machine_line()}",
        f"data: CIFAR-10 from {data.source}, {len(d.train_idx)} train / {len(d.val_idx)} "
        f"validation images, {args.model} at {args.input_size}x{args.input_size}, batch "
        f"{args.batch_size}, {steps} steps/epoch, median of epochs 2..{args.epochs}",
        f"bare model.fit: {t_bare:.2f} ms/step",
        f"Trainer.fit:    {t_trainer:.2f} ms/step",
        f"Trainer overhead: {100 * (t_trainer / t_bare - 1):+.1f}% (target: within 10%)",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("bench_trainer", "Trainer overhead against a bare model.fit", lines)


if __name__ == "__main__":
    from experiments.benchlog import run

    run(main)
