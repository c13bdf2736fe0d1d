"""Benchmark the 160x160 training pipeline: images/s delivered and peak resident memory.

Usage: python benchmarks/bench_data.py [--data-dir DIR] [--size 160] [--batch-size 32]
       [--epochs 1] [--augment] [--write]

Loads CIFAR-10 (``--data-dir`` / ``$CIFAR10_DIR`` / Keras download), builds the training
pipeline exactly as the Trainer does (45,000 images after the 10% validation split, seeded
shuffle, per-batch resize, one-hot, prefetch) and iterates it without a model.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__, data_dir=True)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--augment", action="store_true", help="flip + pad-and-crop on")
    args = parser.parse_args(argv)

    from benchlog import machine_line, peak_rss_mb, stream, write_section
    from cifar.data import load_cifar10, stratified_split
    from cifar.data.augment import AugmentConfig, Augmenter
    from cifar.data.pipeline import make_dataset

    t0 = time.perf_counter()
    data = load_cifar10(args.data_dir)
    load_s = time.perf_counter() - t0
    train_idx, _ = stratified_split(data.y_train, 0.1, 42)
    x, y = data.x_train[train_idx], data.y_train[train_idx]
    augmenter = Augmenter(AugmentConfig(flip=True, crop_padding=4)) if args.augment else None
    ds = make_dataset(x, y, 10, args.size, args.batch_size, training=True, augmenter=augmenter)
    aug = "on" if args.augment else "off"
    lines = [
        f"machine: {machine_line()}",
        f"data: CIFAR-10 from {data.source} ({len(y)} training images after the split), "
        f"loaded in {load_s:.1f} s",
    ]
    print("\n".join(lines))
    for epoch in range(args.epochs):
        n, dt = stream(ds)
        lines.append(
            f"epoch {epoch + 1}: {n} images {args.size}x{args.size} in {dt:.1f} s = "
            f"{n / dt:,.0f} images/s (batch {args.batch_size}, augment {aug})"
        )
        print(lines[-1])
    lines.append(f"peak resident memory: {peak_rss_mb():,.0f} MiB")
    print(lines[-1])
    if args.write:
        write_section(f"bench_data_{aug}", f"Input pipeline (augment {aug})", lines)


if __name__ == "__main__":
    from benchlog import run

    run(main)
