"""Classify image files with a trained or exported model and print the top classes."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar predict``."""
    parser.add_argument(
        "model", metavar="MODEL", help="a .keras, .tflite or .onnx file or a SavedModel folder"
    )
    parser.add_argument(
        "images", metavar="IMAGE", nargs="+", help="PNG, JPEG, WebP, BMP or GIF files (any size)"
    )
    parser.add_argument("--top-k", type=int, default=3, help="classes to print (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument(
        "--tta",
        type=int,
        default=1,
        metavar="N",
        help="test-time augmentation: average N views of each image (the image, its mirror, "
        "then crops; costs N inferences per image; default 1 = off)",
    )


def run(args: argparse.Namespace) -> int:
    """Load the model once, classify each image; unreadable images are reported, not fatal."""
    from cifar.errors import ConfigError
    from cifar.imageio import ImageError
    from cifar.inference.predictor import Predictor

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    predictor = Predictor.load(args.model, top_k=args.top_k, tta=args.tta)
    k = predictor.top_k
    failed = 0
    for image in args.images:
        try:
            result = predictor.predict_one(image)
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"image": image, **result.to_dict(k)}))
        else:
            ranked = ", ".join(f"{label} {p:.1%}" for label, p in result.top_k(k))
            print(f"{image}: {ranked}")
    return 2 if failed else 0
