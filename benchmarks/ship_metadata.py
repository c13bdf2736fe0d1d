"""Add MediaPipe metadata to the shipped ``models/*.tflite`` file, without retraining.

Usage::

    python benchmarks/ship_metadata.py [--models-dir models] [--data-dir CIFAR_DIR]

Adds the same metadata ``cifar export`` writes (labels from ``models/labels.txt``, model name and
run from ``models/metadata.json``), checks that the LiteRT interpreter's probabilities on the
test images are bit-identical before and after (metadata must not change what the file
computes), measures MediaPipe ImageClassifier's top-1 agreement with LiteRT on the same images,
then updates the file's entry in ``models/metadata.json`` (bytes, sha256, metadata,
``mediapipe_agreement``) and the generated section of ``models/README.md``.
A file that already carries metadata keeps it: only the measurement and the records are redone.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

from cifar.data import load_cifar10
from cifar.inference.tflite_runner import TFLiteClassifier
from cifar.run_files import LABELS_FILE, METADATA_FILE, read_json, read_labels
from exports.mediapipe_check import mediapipe_agreement
from exports.metadata import artifact_digest, write_metadata
from exports.tflite_metadata import embed_metadata, embedded_labels

BEGIN, END = "<!-- ship_metadata:begin -->", "<!-- ship_metadata:end -->"


def readme_section(entry: dict, n_classes: int, n_images: int, data: str) -> str:
    """The generated paragraph of ``models/README.md``."""
    md = entry["metadata"]
    return (
        f"{BEGIN}\n"
        f"The file carries TFLite metadata (written by `benchmarks/ship_metadata.py` with the "
        f"same code as `cifar export`): name `{md['name']}`, the {n_classes} class names packed as "
        f'`labels.txt`, input "{md["input"]}" with normalisation mean '
        f"{md['normalization']['mean'][0]:g} / std {md['normalization']['std'][0]:g} (raw "
        f"pixels; the graph scales them), output as category scores. So MediaPipe Tasks "
        f"`ImageClassifier` loads it as it is. On {n_images:,} test images of {data}, MediaPipe's "
        f"top-1 agrees with the LiteRT interpreter's on {entry['mediapipe_agreement']:.2%}; "
        f"the LiteRT probabilities are bit-identical to the file without metadata. "
        f"{entry['bytes'] / 1e6:.2f} MB, sha256 `{entry['sha256'][:16]}...`.\n"
        f"{END}"
    )


def main(argv: list[str] | None = None) -> int:
    """Embed, verify, record; exit 1 if the probabilities changed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"))
    parser.add_argument("--verify-n", type=int, default=10000, help="test images (default all)")
    args = parser.parse_args(argv)
    models = Path(args.models_dir)
    meta_path = models / METADATA_FILE
    meta = read_json(meta_path)
    labels = read_labels(models / LABELS_FILE)
    data = load_cifar10(args.data_dir)
    images = data.x_test[: args.verify_n]
    for entry in meta["artifacts"]:
        path = models / entry["file"]
        if path.suffix != ".tflite" or not path.is_file():
            continue
        before = TFLiteClassifier(path).predict(images)
        if embedded_labels(path) is None:
            source = meta.get("source", {})
            entry["metadata"] = embed_metadata(path, labels, source["model"], source.get("run"))
            print(f"{path}: metadata added")
        after = TFLiteClassifier(path).predict(images)
        if not np.array_equal(before, after):
            print(f"{path}: probabilities changed with the metadata", file=sys.stderr)
            return 1
        entry["mediapipe_agreement"] = round(mediapipe_agreement(path, images, after), 6)
        entry["mediapipe_n_images"] = len(images)
        entry["bytes"], entry["sha256"] = artifact_digest(path)
        print(
            f"{path}: MediaPipe top-1 agreement with LiteRT {entry['mediapipe_agreement']:.2%} "
            f"on {len(images)} test images; {entry['bytes']} bytes"
        )
        readme = models / "README.md"
        text = readme.read_text()
        section = readme_section(
            entry, len(labels), len(images), "CIFAR-10 (JPEG-q75 reconstruction)"
        )
        if BEGIN in text:
            text = re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        readme.write_text(text)
    write_metadata(models, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
