"""Compare models: train each with one experiment on the same data and split, one table."""

from __future__ import annotations

import argparse
import shlex

from cifar.commands.train import add_config_arguments, config_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar compare``."""
    parser.add_argument("experiment", help="experiment name (e.g. smoke) or .toml path")
    parser.add_argument(
        "--models",
        required=True,
        help="comma-separated registry names, e.g. mobilenet_v2,efficientnetv2_b0,resnet50",
    )
    add_config_arguments(parser, "for every model, e.g. --set model.input_size=96")
    parser.add_argument(
        "--out-dir", help="where COMPARISON.md goes (default: RUNS_DIR/compare-<time>)"
    )
    parser.add_argument(
        "--verify-n", type=int, default=500, help="test images the float16 export is checked on"
    )


def run(args: argparse.Namespace) -> int:
    """Train and export every model, then print and write the comparison table."""
    from cifar.commands.comparison import compare_models, parse_models

    models = parse_models(args.models)
    overrides = config_overrides(args)
    command = ["cifar", "compare", args.experiment, "--models", ",".join(models)]
    command += [f"--set={item}" for item in args.overrides]
    result = compare_models(
        args.experiment,
        models,
        overrides,
        out_dir=args.out_dir,
        command=shlex.join(command),
        verify_n=args.verify_n,
    )
    print(result.report.read_text())
    print(f"wrote {result.report}")
    return 0 if all("error" not in row for row in result.rows) else 2
