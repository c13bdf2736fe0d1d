"""Print the data set summary (layout, per-class counts) and write a sample-image grid."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar data``."""
    parser.add_argument(
        "--data-dir",
        help="a cifar-10-batches-py folder or an image folder (recognised by its layout; "
        "default: $CIFAR10_DIR, else the CIFAR-10 download)",
    )
    parser.add_argument("--folder", help="same as --data-dir, for an image folder")
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="size image-folder photos are decoded at (default: the input size of the "
        "configured model, as `cifar train` decodes them)",
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="validation share (default 0.1)"
    )
    parser.add_argument(
        "--out", default="runs/data/samples.png", help="where to write the sample grid"
    )


def run(args: argparse.Namespace) -> int:
    """Load the data as ``cifar train`` would, print the per-class summary, save the grid."""
    from cifar.config import load_config
    from cifar.data.samples import plot_sample_grid, summarize
    from cifar.errors import ConfigError
    from cifar.trainer import Trainer

    if args.folder and args.data_dir:
        raise ConfigError("give --data-dir or --folder, not both")
    source = args.folder or args.data_dir
    config = load_config(
        {
            "runs_dir": str(Path(args.out).parent.parent),
            "data": {"data_dir": source, "val_fraction": args.val_fraction},
            "model": {"input_size": args.image_size},
        }
    )
    data = Trainer(config, run_dir=Path(args.out).parent, verbose=0).load_data()
    print(summarize(data, val_fraction=None if data.val_idx is not None else args.val_fraction))
    path = plot_sample_grid(data.x_train, data.y_train, data.class_names, Path(args.out))
    print(f"sample grid: {path}")
    return 0
