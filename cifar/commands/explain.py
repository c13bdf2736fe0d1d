"""Explain predictions with heatmaps: where in each photo the model found its class.

Writes ``<photo stem>_heatmap.png`` (the photo as the model saw it, with the heatmap over it)
for each photo and prints one line per photo: file, predicted class, probability, overlay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_OUT = "explain"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar explain``."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a run folder (its best_model.keras) or a .keras file; exported TFLite/ONNX files "
        "have no gradients, so they cannot be explained",
    )
    parser.add_argument(
        "photos", metavar="PHOTO", nargs="+", help="PNG, JPEG, WebP, BMP or GIF files (any size)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help=f"folder for the overlays (default: RUN/{DEFAULT_OUT}/ for a run's model, else "
        f"./{DEFAULT_OUT}/)",
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="explain this class (a name or an index) instead of each photo's predicted class",
    )


def run(args: argparse.Namespace) -> int:
    """Load the model once, explain each photo; unreadable photos are reported, not fatal."""
    from cifar.explain.explainer import keras_model_file

    model_file = keras_model_file(args.model)  # refuses exported files before TF loads
    from cifar.explain.explainer import Explainer
    from cifar.imageio import ImageError

    explainer = Explainer.load(model_file)
    if args.class_name is not None:
        explainer.class_index(args.class_name)  # an unknown class fails before any work
    out = Path(args.out) if args.out else default_out_dir(model_file)
    failed = 0
    for photo in args.photos:
        try:
            (result,) = explainer.explain([photo], class_name=args.class_name)
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        path = result.save_overlay(out / f"{Path(photo).stem}_heatmap.png")
        explained = (
            f" (heatmap of {result.explained_class} {result.explained_probability:.1%})"
            if result.class_index != result.predicted_index
            else ""
        )
        print(f"{photo}: {result.predicted_class} {result.confidence:.1%}{explained} -> {path}")
    return 2 if failed else 0


def default_out_dir(model_file: Path) -> Path:
    """``RUN/explain`` when the model is a run's (config.json beside it), else ``./explain``."""
    from cifar.run_files import run_dir_of

    run_dir = run_dir_of(model_file)
    return run_dir / DEFAULT_OUT if run_dir else Path(DEFAULT_OUT)
