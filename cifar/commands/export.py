"""Export a trained run to SavedModel, TFLite (float32/float16/dynamic/int8) and ONNX, verified."""

from __future__ import annotations

import argparse

FORMATS_HELP = (
    "comma-separated: savedmodel, tflite, tflite-fp16, tflite-dynamic, tflite-int8, onnx, "
    "or all (default)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar export``."""
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run folder with best_model.keras (or, with --web only, a .tflite file with "
        "metadata, e.g. models/model_float16.tflite)",
    )
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
        "--web",
        metavar="DIR",
        help="also write a static classifier page that runs the model in the browser "
        "(MediaPipe Tasks, WASM; needs npm once to fetch @mediapipe/tasks-vision); serve it "
        "with `cifar serve web DIR`",
    )
    parser.add_argument(
        "--web-format",
        help="the TFLite file the page runs (default: tflite-fp16 when exported, else the first "
        "TFLite format exported)",
    )
    parser.add_argument(
        "--no-gate",
        action="store_true",
        help="keep files whose top-1 agreement with Keras is below their gate (still reported)",
    )


def run(args: argparse.Namespace) -> int:
    """Export, verify every artefact in its runtime, print the table; exit 2 if any failed."""
    from pathlib import Path

    if Path(args.run_dir).suffix == ".tflite":
        return _web_only(args)  # no TensorFlow needed
    from exports import Exporter
    from exports.formats import parse_formats

    chosen = [f.name for f in parse_formats(args.formats)]  # a typo fails before any loading
    web_format = _web_format(args, chosen) if args.web else None
    exporter = Exporter(
        args.run_dir,
        data_dir=args.data_dir,
        verify_n=args.verify_n,
        representative_n=args.representative_n,
        gate=not args.no_gate,
        selective=not args.plain_quantization,
    )
    result = exporter.export(args.formats, args.out_dir)
    if web_format:
        from exports.web import write_web_app

        page = write_web_app(result.artifacts[web_format], args.web)
        print(f"wrote the classifier page {page}; serve it with: cifar serve web {args.web}")
    return 0


def _web_format(args: argparse.Namespace, chosen: list[str]) -> str:
    """The TFLite format the page runs: ``--web-format``, else float16, else the first TFLite."""
    from cifar.errors import ConfigError
    from exports.formats import FORMATS, parse_formats

    if args.web_format:
        (fmt,) = parse_formats(args.web_format)
        if fmt.name not in chosen or FORMATS[fmt.name].runtime != "tflite":
            raise ConfigError(f"--web-format {fmt.name} must be a TFLite format in --formats")
        return fmt.name
    tflite = [name for name in chosen if FORMATS[name].runtime == "tflite"]
    if not tflite:
        raise ConfigError("--web needs a TFLite format in --formats (e.g. tflite-fp16)")
    return "tflite-fp16" if "tflite-fp16" in tflite else tflite[0]


def _web_only(args: argparse.Namespace) -> int:
    """``cifar export MODEL.tflite --web DIR``: the page for an existing file with metadata."""
    from cifar.errors import ConfigError
    from exports.web import write_web_app

    if not args.web:
        raise ConfigError(
            f"{args.run_dir} is a .tflite file: pass a run folder to export, or add --web DIR "
            "to write a classifier page for this file"
        )
    page = write_web_app(args.run_dir, args.web)
    print(f"wrote the classifier page {page}; serve it with: cifar serve web {args.web}")
    return 0
