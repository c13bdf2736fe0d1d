"""Benchmark the Trainer's per-step overhead against a bare ``model.fit``.

Usage: python benchmarks/bench_trainer.py [--data-dir DIR] [--images 10000] [--epochs 4]
       [--model custom_cnn] [--input-size 32] [--batch-size 32]

Both sides train the same model (same initial weights, data, batch size and tf.data pipeline)
for the same epochs; the first epoch (tracing) is excluded and the median of the others is
compared. The Trainer side runs with its default callbacks (history, early stopping,
TensorBoard, confusion matrix, progress, per-epoch resume checkpoint).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class EpochTimer:
    """Per epoch: the training-loop time (first batch start to last batch end) and the whole
    epoch (start to next start: validation and every callback included)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.starts: list[float] = []
                self.loops: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self.starts.append(time.perf_counter())
                self._first = None

            def on_train_batch_begin(self, batch, logs=None):
                if self._first is None:
                    self._first = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self._last = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.loops.append(self._last - self._first)

            def on_train_end(self, logs=None):
                self.starts.append(time.perf_counter())

            @property
            def epochs(self) -> list[float]:
                return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]

        return _Timer()


def main(argv: list[str] | None = None) -> None:
    """Run both sides and print the per-step times and the overhead."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__, data_dir=True)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from benchlog import machine_line, write_section
    from cifar.config import load_config
    from cifar.data import load_cifar10, stratified_split
    from cifar.trainer import Trainer

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
    steps = int(np.ceil(len(stratified_split(data.y_train, 0.1, 42)[0]) / args.batch_size))

    def bare_fit(trainer: Trainer) -> float:
        """Median epoch time of a bare ``model.fit`` on the Trainer's own model and data."""
        keras.utils.set_random_seed(config.seed)
        bare = trainer.build_model()
        phase = config.phases[0]
        bare.compile(
            optimizer=phase.make_optimizer(steps),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        timer = EpochTimer()
        d = trainer.datasets
        bare.fit(d.train, validation_data=d.val, epochs=args.epochs, callbacks=[timer], verbose=0)
        return statistics.median(timer.loops[1:]), statistics.median(timer.epochs[1:])

    # bare, Trainer, bare again: the order of runs on a shared machine must not decide it.
    probe = Trainer(config, data=data, verbose=0)
    probe.datasets = probe.build_datasets()
    first = bare_fit(probe)
    trainer_timer = EpochTimer()
    trainer = Trainer(config, data=data, callbacks=[trainer_timer], verbose=0)
    trainer.fit()
    second = bare_fit(trainer)
    d = trainer.datasets
    step_bare = (first[0] + second[0]) / 2 / steps * 1000
    step_trainer = statistics.median(trainer_timer.loops[1:]) / steps * 1000
    epoch_bare = (first[1] + second[1]) / 2
    epoch_trainer = statistics.median(trainer_timer.epochs[1:])
    lines = [
        f"machine: {machine_line()}",
        f"data: CIFAR-10 from {data.source}, {len(d.train_idx)} train / {len(d.val_idx)} "
        f"validation images, {args.model} at {args.input_size}x{args.input_size}, batch "
        f"{args.batch_size}, {steps} steps/epoch, median of epochs 2..{args.epochs}; bare runs "
        "before and after the Trainer, averaged",
        f"training step: bare model.fit {step_bare:.2f} ms, Trainer.fit {step_trainer:.2f} ms, "
        f"overhead {100 * (step_trainer / step_bare - 1):+.1f}% (target: within 10%)",
        f"whole epoch (validation + callbacks): bare {epoch_bare:.2f} s, Trainer "
        f"{epoch_trainer:.2f} s, {epoch_trainer - epoch_bare:+.2f} s per epoch for the Trainer's "
        "callbacks (validation confusion matrix, TensorBoard, history, resume checkpoint)",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("bench_trainer", "Trainer overhead against a bare model.fit", lines)


if __name__ == "__main__":
    from benchlog import run

    run(main)
