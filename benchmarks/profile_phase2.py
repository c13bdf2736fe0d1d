"""Where a cached phase-2 training step of the deep recipe spends its time, and what helps.

Usage: python benchmarks/profile_phase2.py [--weights FILE] [--experiment mobilenetv2_finetune_deep]
       [--steps 20] [--write]

It trains the tail of the experiment's fine-tuning phase (for the deep recipe: blocks 6-16 of
MobileNetV2 at 160x160 on cached ``block_5_add`` activations) under the TensorFlow profiler,
sums the kernel time of every TensorFlow op by kind (convolutions and their gradients,
depthwise convolutions and theirs, element-wise ops: BatchNorm's affine, ReLU6 and their
gradients, the optimizer update, the rest), and prints the training throughput as a fraction
of the CPU's fp32 peak. Then it times the same step under other settings (frozen BatchNorm
not folded, as before :mod:`cifar.models.folding`; TensorFlow threads, batch size, XLA, oneDNN
off), each in a fresh process, so the default can be compared. Each rate is the best of three
timed passes.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (label, environment, extra arguments) of each setting timed against the default.
VARIANTS = [
    ("default (TensorFlow's threads, batch 32, frozen BatchNorm folded)", {}, []),
    ("frozen BatchNorm not folded (before cifar.models.folding)", {}, ["--no-fold"]),
    ("inter-op threads 1", {"PROFILE_INTER_OP": "1"}, []),
    ("batch 16", {}, ["--batch-size", "16"]),
    ("batch 64", {}, ["--batch-size", "64"]),
    ("XLA (jit_compile)", {}, ["--jit-compile"]),
    ("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", {"TF_ENABLE_ONEDNN_OPTS": "0"}, []),
]
KINDS = [
    ("convolution gradients", ("Conv2DBackprop",)),
    ("depthwise convolution and gradients", ("Depthwise",)),
    ("convolutions (forward)", ("Conv2D",)),
    ("dense", ("MatMul",)),
    ("ReLU6 and its gradient", ("Relu6",)),
    (
        "optimizer update (Adam)",
        ("AssignAddVariableOp", "AssignSubVariableOp", "Sqrt", "RealDiv", "Square"),
    ),
    ("element-wise (BatchNorm affine, residual adds, their gradients)", ("Mul", "AddV2", "Sub")),
]


def kind_of(op_type: str) -> str:
    """The group an op type belongs to (first match in KINDS, else "other")."""
    for kind, markers in KINDS:
        if any(m in op_type for m in markers):
            return kind
    return "other (reductions, reshapes, casts, data)"


def op_times(logdir: str) -> dict[str, float]:
    """Milliseconds of kernel time per op type from the profiler's XPlane file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    file = sorted(Path(logdir).rglob("*.xplane.pb"))[-1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(file.read_bytes())
    totals: dict[str, float] = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # executor bookkeeping, not an op
                    continue
                op_type = name.rsplit(":", 1)[1].replace("_MklNative", "").replace("_Mkl", "")
                totals[op_type] += event.duration_ps / 1e9
    return dict(totals)


def measure(args: argparse.Namespace) -> dict:
    """Time (and with ``--profile`` profile) the tail's train step; a JSON-able result."""
    import keras
    import numpy as np
    import tensorflow as tf

    if os.environ.get("PROFILE_INTER_OP"):
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["PROFILE_INTER_OP"]))
    from bench_training import macs
    from cifar.activations import make_feature_dataset, split_model
    from cifar.config import load_config
    from cifar.models import create_model

    config = load_config(args.experiment)
    phase = config.phases[-1]
    model = create_model("mobilenet_v2", weights=args.weights, input_size=160)
    phase.policy.apply(model)
    split = split_model(model, fold_batchnorm=not args.no_fold)
    bs, steps = args.batch_size, args.steps
    rng = np.random.default_rng(0)
    # Activations of the right shape and scale; the step's cost does not depend on values.
    acts = rng.standard_normal((bs * steps, *split.activation_shape)).astype(np.float16)
    labels = rng.integers(0, 10, bs * steps)
    data = make_feature_dataset(acts, labels, 10, bs, True, 0, 1, 0, 4)
    split.tail.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss="categorical_crossentropy",
        jit_compile=args.jit_compile,
    )
    split.tail.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)  # trace and warm up
    logdir = tempfile.mkdtemp(prefix="profile_phase2-")
    if args.profile:
        tf.profiler.experimental.start(logdir)
    seconds = float("inf")
    for _ in range(1 if args.profile else 3):  # the best pass: neighbours only slow one down
        t0 = time.perf_counter()
        split.tail.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        seconds = min(seconds, time.perf_counter() - t0)
    if args.profile:
        tf.profiler.experimental.stop()
    # As bench_training counts it: the tail starts at the first trainable layer, so its
    # forward, input-gradient and weight-gradient passes each cost about its forward MACs.
    tail_macs = sum(macs(split.tail).values())
    flops_per_image = 2 * 3 * tail_macs
    result = {
        "cut": split.cut,
        "activation_shape": list(split.activation_shape),
        "images_per_second": bs * steps / seconds,
        "step_ms": 1000 * seconds / steps,
        "gflop_per_image": flops_per_image / 1e9,
    }
    if args.profile:
        result["op_ms"] = {k: v / steps for k, v in op_times(logdir).items()}
    return result


def main(argv: list[str] | None = None) -> None:
    """Profile the default setting, time the variants, print (and optionally write) it all."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__)
    parser.add_argument("--weights", default="imagenet", help="MobileNetV2 weights (.h5 path)")
    parser.add_argument("--experiment", default="mobilenetv2_finetune_deep")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--no-fold", action="store_true", help="keep frozen BatchNorm unfolded")
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)))
        return
    from benchlog import machine_line, peak_gflops

    peak = peak_gflops()

    def child(env: dict, extra: list[str], profile: bool = False) -> dict:
        command = [sys.executable, __file__, "--child", "--weights", args.weights]
        command += ["--experiment", args.experiment, "--steps", str(args.steps), *extra]
        done = subprocess.run(
            command + (["--profile"] if profile else []),
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"error: {' '.join(extra) or 'default'} run failed:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def pct(result: dict) -> str:
        if not peak:
            return ""
        achieved = result["images_per_second"] * result["gflop_per_image"]
        return f", {achieved:.0f} GFLOP/s = {100 * achieved / peak:.1f}% of peak"

    base = child({}, [])  # timed without the profiler, whose tracing costs time
    base["op_ms"] = child({}, [], profile=True)["op_ms"]
    lines = [
        f"machine: {machine_line()}"
        + (f", fp32 arithmetic peak {peak:.0f} GFLOP/s" if peak else ""),
        f"step: {args.experiment} fine-tuning tail on cached {base['cut']} "
        f"{tuple(base['activation_shape'])}, {base['gflop_per_image']:.2f} GFLOP per image "
        f"(forward + both gradients), {args.steps} steps",
        f"default: {base['step_ms']:.0f} ms per step of {args.batch_size}, "
        f"{base['images_per_second']:.1f} "
        f"images/s{pct(base)}",
        "kernel time per step by kind (both cores; ops may overlap):",
    ]
    kinds: dict[str, float] = collections.Counter()
    for op_type, ms in base["op_ms"].items():
        kinds[kind_of(op_type)] += ms
    total = sum(kinds.values())
    lines += [f"  {ms:7.1f} ms  {100 * ms / total:4.1f}%  {k}" for k, ms in kinds.most_common()]
    lines.append("settings (each in a fresh process; ratio against the default):")
    for label, env, extra in VARIANTS:
        result = base if not env and not extra else child(env, extra)
        ratio = result["images_per_second"] / base["images_per_second"]
        lines.append(
            f"  {label}: {result['images_per_second']:.1f} images/s{pct(result)}, {ratio:.2f}x"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))
    if args.write:
        from benchlog import write_section

        default = args.experiment == parser.get_default("experiment")
        name = "profile_phase2" + ("" if default else f"_{args.experiment}")
        write_section(name, f"Phase 2 of {args.experiment}: where the step goes", lines)


if __name__ == "__main__":
    from benchlog import run

    run(main)
