"""Benchmark multi-worker training on this machine: steps/s for one and two worker processes.

Usage: python benchmarks/bench_multiworker.py [--data-dir DIR] [--images 4000] [--epochs 4]
       [--batch-size 64] [--model custom_cnn] [--write]

Starts one process with the default strategy (``model.fit``), then one worker process, then
two (localhost TF_CONFIG, free ports) running the Trainer with ``strategy = "multiworker"``, all
on the same CIFAR-10 subset and global batch; the
first epoch (tracing) is excluded and the median training-loop time of the others gives the
steps/s. The two workers then time an all-reduce of a tensor as large as the model's gradients
(what every training step exchanges). Two workers on one 2-core machine share the cores, so
they cannot be faster than one: the figures are the cost of the exchange, which on two machines
adds to a step whose compute is halved.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
ALL_REDUCE_REPEATS = 50


def worker(args: argparse.Namespace) -> None:
    """One worker process: train, time the loop and an all-reduce, print JSON (chief only)."""
    import keras
    import numpy as np
    import tensorflow as tf  # importing runs no operation: the strategy can still be created

    from cifar.config import load_config
    from cifar.data import load_cifar10
    from cifar.trainer import Trainer

    config = load_config(
        {
            "name": "bench-mw",
            "runs_dir": args.runs_dir,
            "report": False,
            "strategy": args.strategy,
            "data": {"batch_size": args.batch_size},
            "model": {"name": args.model, "weights": None},
            "phases": [{"name": "a", "trainable": "all", "epochs": args.epochs, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "tensorboard": False, "progress": False},
        }
    )
    loops: list[float] = []

    class LoopTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            loops.append(time.perf_counter() - self._t0)

    data = load_cifar10(args.data_dir).subset(train=args.images, test=200)  # NumPy only
    trainer = Trainer(config, data=data, callbacks=[LoopTimer()], verbose=0)
    trainer.fit()
    steps = trainer.datasets.steps_per_epoch
    strategy = trainer.strategy
    n_params = int(sum(np.prod(w.shape) for w in trainer.model.trainable_weights))
    grads = tf.constant(np.ones(n_params, np.float32))

    def exchange():
        return tf.distribute.get_replica_context().all_reduce("sum", grads)

    @tf.function
    def all_reduce():
        return strategy.run(exchange)

    all_reduce()  # trace and warm up
    t0 = time.perf_counter()
    for _ in range(ALL_REDUCE_REPEATS):
        all_reduce()
    reduce_ms = (time.perf_counter() - t0) / ALL_REDUCE_REPEATS * 1000
    if trainer.role.is_chief:
        result = {
            "workers": trainer.role.count,
            "steps": steps,
            "step_ms": statistics.median(loops[1:]) / steps * 1000,
            "params": n_params,
            "all_reduce_ms": reduce_ms,
            "n_train": len(trainer.datasets.train_idx),
        }
        print("RESULT " + json.dumps(result), flush=True)


def free_ports(n: int) -> list[int]:
    """``n`` ports nobody listens on right now."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_cluster(n: int, args: argparse.Namespace, runs_dir: str) -> dict:
    """Start ``n`` localhost workers of this script (0: one default process); chief's result."""
    workers = [f"localhost:{p}" for p in free_ports(n)]
    procs = []
    for i in range(max(n, 1)):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        env.pop("TF_CONFIG", None)
        strategy = "multiworker" if n else "default"
        if n:
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            )
        cmd = [sys.executable, __file__, "--worker", "--strategy", strategy]
        cmd += ["--runs-dir", runs_dir, *_forwarded(args)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT))
    outputs = [p.communicate()[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            raise SystemExit(f"a worker failed (exit {p.returncode}):\n{out[-2000:]}")
    line = next(x for x in outputs[0].splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def _forwarded(args: argparse.Namespace) -> list[str]:
    out = ["--images", str(args.images), "--epochs", str(args.epochs)]
    out += ["--batch-size", str(args.batch_size), "--model", args.model]
    return out + (["--data-dir", args.data_dir] if args.data_dir else [])


def main(argv: list[str] | None = None) -> None:
    """Run one worker, then two, and print steps/s and the exchange's cost per step."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__, data_dir=True)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs-dir", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="multiworker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    from benchlog import machine_line, write_section

    lines = [f"machine: {machine_line()}"]
    with tempfile.TemporaryDirectory(prefix="bench-mw-") as runs_dir:
        fit = run_cluster(0, args, runs_dir)
        one = run_cluster(1, args, runs_dir)
        two = run_cluster(2, args, runs_dir)
    lines += [
        f"data: CIFAR-10 subset, {one['n_train']} training images, {args.model} "
        f"({one['params']:,} trainable parameters), global batch {args.batch_size}, "
        f"{one['steps']} steps/epoch, median of epochs 2..{args.epochs}; Trainer with "
        "strategy multiworker (the distributed step of cifar/distributed/loop.py)",
        f"1 process, model.fit (default strategy): {1000 / fit['step_ms']:.1f} steps/s "
        f"({fit['step_ms']:.1f} ms/step)",
        f"1 worker:  {1000 / one['step_ms']:.1f} steps/s ({one['step_ms']:.1f} ms/step)",
        f"2 workers: {1000 / two['step_ms']:.1f} steps/s ({two['step_ms']:.1f} ms/step, "
        f"{two['step_ms'] - one['step_ms']:+.1f} ms/step against 1 worker on the same 2 cores)",
        f"all-reduce of {two['params']:,} float32 gradients between the 2 workers: "
        f"{two['all_reduce_ms']:.2f} ms (1 worker: {one['all_reduce_ms']:.2f} ms), "
        f"mean of {ALL_REDUCE_REPEATS}",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("bench_multiworker", "Multi-worker training on one machine", lines)


if __name__ == "__main__":
    from benchlog import run

    run(main)
