"""Print the data set summary and write a sample-image grid."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar data``."""
    parser.add_argument(
        "--data-dir", help="cifar-10-batches-py folder (default: $CIFAR10_DIR, else download)"
    )
    parser.add_argument("--folder", help="an image folder root/<class>/*.png instead of CIFAR-10")
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="validation share (default 0.1)"
    )
    parser.add_argument(
        "--out", default="runs/data/samples.png", help="where to write the sample grid"
    )


def run(args: argparse.Namespace) -> int:
    """Load the data, print the per-class summary, save the grid."""
    from cifar.data import load_cifar10, load_image_folder
    from cifar.data.samples import plot_sample_grid, summarize

    data = load_image_folder(args.folder) if args.folder else load_cifar10(args.data_dir)
    print(summarize(data, val_fraction=args.val_fraction))
    path = plot_sample_grid(data.x_train, data.y_train, data.class_names, Path(args.out))
    print(f"sample grid: {path}")
    return 0
