"""Print the data set summary (layout, per-class counts, data checks) and a sample-image grid."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifar.commands.train import add_config_arguments, config_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar data`` (``--data-dir``/``--folder`` and ``--set`` as ``cifar train``)."""
    add_config_arguments(parser, 'e.g. --set data.near_copies="report"')
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="size image-folder photos are decoded at (default: the input size of the "
        "configured model, as `cifar train` decodes them)",
    )
    parser.add_argument(
        "--val-fraction", type=float, help="validation share (sets data.val_fraction)"
    )
    parser.add_argument(
        "--out", default="runs/data/samples.png", help="where to write the sample grid"
    )


def run(args: argparse.Namespace) -> int:
    """Load the data as ``cifar train`` would, print the per-class summary, save the grid."""
    from cifar.config import load_config
    from cifar.data.samples import plot_sample_grid, summarize
    from cifar.trainer import Trainer

    overrides = config_overrides(args)
    if args.image_size is not None:
        overrides.append(f"model.input_size={args.image_size}")
    if args.val_fraction is not None:
        overrides.append(f"data.val_fraction={args.val_fraction}")
    config = load_config({"runs_dir": str(Path(args.out).parent.parent)}, overrides)
    data = Trainer(config, run_dir=Path(args.out).parent, verbose=0).load_data()
    val_fraction = None if data.val_idx is not None else config.data.val_fraction
    # The loader already logged the ignored files and the data checks' summary line.
    print(summarize(data, val_fraction=val_fraction))
    path = plot_sample_grid(data.x_train, data.y_train, data.class_names, Path(args.out))
    print(f"sample grid: {path}")
    return 0
