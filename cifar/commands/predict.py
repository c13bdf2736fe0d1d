"""Classify image files with a trained or exported model and print the top classes.

``cifar predict [MODEL] IMAGE...``: MODEL is a ``.keras``, ``.tflite`` or ``.onnx`` file, a
SavedModel folder or a run folder; without it (or ``--model``), ``$CIFAR_MODEL``, else the
shipped model. Below the model's ``min_confidence`` the line says
``not sure (best guess: cat 0.41, below 0.83)`` and still lists the top classes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar predict``."""
    parser.add_argument(
        "paths",
        metavar="[MODEL] IMAGE",
        nargs="+",
        help="optionally a model first (a .keras, .tflite or .onnx file, a SavedModel folder or "
        "a run folder; default: $CIFAR_MODEL, else the shipped model), then PNG, JPEG, WebP, "
        "BMP or GIF files (any size)",
    )
    parser.add_argument("--model", help="the model, when not given as the first path")
    parser.add_argument("--top-k", type=int, default=3, help="classes to print (default 3)")
    parser.add_argument(
        "--min-confidence",
        type=float,
        metavar="P",
        help="answer 'not sure' below this top-1 probability (default: $CIFAR_MIN_CONFIDENCE, "
        "else the model's recorded threshold, else none)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument(
        "--tta",
        type=int,
        default=1,
        metavar="N",
        help="test-time augmentation: average N views of each image (the image, its mirror, "
        "then crops; costs N inferences per image; default 1 = off)",
    )


def split_model_and_images(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """(model or None for the default, image paths) from ``--model`` and the positional paths."""
    from cifar.errors import ConfigError

    paths = list(args.paths)
    if args.model:
        return args.model, paths
    first = Path(paths[0])
    if first.is_dir() or first.suffix.lower() in MODEL_SUFFIXES:
        if len(paths) == 1:
            raise ConfigError(f"name at least one image after the model {paths[0]}")
        return paths[0], paths[1:]
    return None, paths


def run(args: argparse.Namespace) -> int:
    """Load the model once, classify each image; unreadable images are reported, not fatal."""
    from cifar.errors import ConfigError
    from cifar.imageio import ImageError
    from cifar.inference.predictor import Predictor

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    model, images = split_model_and_images(args)
    predictor = Predictor.load(
        model, top_k=args.top_k, min_confidence=args.min_confidence, tta=args.tta
    )
    if predictor.min_confidence is None:
        print(f"note: {predictor.threshold.describe()}", file=sys.stderr)
    k = predictor.top_k
    failed = 0
    for image in images:
        try:
            result = predictor.predict_one(image)
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"image": image, **result.to_dict(k)}))
            continue
        ranked = ", ".join(f"{label} {p:.1%}" for label, p in result.top_k(k))
        if result.not_sure:
            print(f"{image}: {result.verdict()}; top {k}: {ranked}")
        else:
            print(f"{image}: {ranked}")
    return 2 if failed else 0
