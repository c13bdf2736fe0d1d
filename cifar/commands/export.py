"""Export a trained run to SavedModel, TFLite (float32/float16/dynamic/int8) and ONNX, verified."""

from __future__ import annotations

import argparse

FORMATS_HELP = (
    "comma-separated: savedmodel, tflite, tflite-fp16, tflite-dynamic, tflite-int8, onnx, "
    "or all (default)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar export``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with best_model.keras")
    parser.add_argument("--formats", default="all", help=FORMATS_HELP)
    parser.add_argument("--out-dir", help="where to write (default: RUN_DIR/export)")
    parser.add_argument(
        "--data-dir", help="cifar-10-batches-py folder for verification (default: the run's)"
    )
    parser.add_argument(
        "--verify-n", type=int, default=2000, help="test images each artefact is checked on"
    )
    parser.add_argument(
        "--representative-n",
        type=int,
        default=300,
        help="training images that calibrate the int8 model and choose what stays float32",
    )
    parser.add_argument(
        "--plain-quantization",
        action="store_true",
        help="plain converter output: float16 everywhere, int8 with no float op "
        "(default: the few numerically sensitive parts stay float32)",
    )
    parser.add_argument(
        "--no-gate",
        action="store_true",
        help="keep files whose top-1 agreement with Keras is below their gate (still reported)",
    )


def run(args: argparse.Namespace) -> int:
    """Export, verify every artefact in its runtime, print the table; exit 2 if any failed."""
    from exports import Exporter
    from exports.formats import parse_formats

    parse_formats(args.formats)  # reject a typo before loading the model and the data
    exporter = Exporter(
        args.run_dir,
        data_dir=args.data_dir,
        verify_n=args.verify_n,
        representative_n=args.representative_n,
        gate=not args.no_gate,
        selective=not args.plain_quantization,
    )
    exporter.export(args.formats, args.out_dir)
    return 0
