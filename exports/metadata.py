"""``metadata.json`` of an export folder: what each file is, takes, returns and how it checked.

The file names and the atomic writers are :mod:`cifar.run_files`'s.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from cifar.run_files import LABELS_FILE, METADATA_FILE, read_optional_json, write_json

FORMAT_VERSION = 1


def artifact_digest(path: Path) -> tuple[int, str]:
    """(bytes, sha256) of a file, or of a folder's files (relative names and contents, sorted)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    size = 0
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return size, digest.hexdigest()


def input_spec(source_size: int) -> dict:
    """What every artefact takes: raw RGB pixels at the stored size, no preprocessing."""
    return {
        "name": "image",
        "shape": [None, source_size, source_size, 3],
        "layout": "NHWC",
        "color": "RGB",
        "range": [0, 255],
        "scaling": "none: pass raw pixel values; the model resizes and scales inside",
        "dtype": "float32 (uint8 for tflite-int8 and the SavedModel's serving_uint8 signature)",
        "resize_other_images_to": [source_size, source_size],
    }


def output_spec(num_classes: int) -> dict:
    """What every artefact returns (the int8 file returns uint8 scores; see its quantization)."""
    return {
        "name": "probabilities",
        "shape": [None, num_classes],
        "dtype": "float32",
        "meaning": f"softmax class probabilities, in class_names ({LABELS_FILE}) order",
    }


def build_metadata(
    source: dict,
    class_names: list[str],
    source_size: int,
    verification: dict,
    artifacts: list[dict],
    previous: dict | None = None,
) -> dict:
    """The whole ``metadata.json``; entries of ``previous`` for formats not re-exported are kept
    when they describe the same source and their file still exists (checked by the caller)."""
    names = {a["format"] for a in artifacts}
    kept = []
    # Only a run's export can be extended later: an in-memory model has no identity to match.
    if previous and source.get("model_sha256") and previous.get("source") == source:
        kept = [a for a in previous.get("artifacts", []) if a.get("format") not in names]
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now().isoformat(timespec="seconds"),
        "source": source,
        "class_names": list(class_names),
        "input": input_spec(source_size),
        "output": output_spec(len(class_names)),
        "verification": verification,
        "artifacts": kept + artifacts,
    }


def read_metadata(out_dir: Path) -> dict | None:
    """An existing ``metadata.json`` (None if absent or unreadable: it will be rewritten)."""
    return read_optional_json(out_dir / METADATA_FILE)


def write_metadata(out_dir: Path, metadata: dict) -> Path:
    """Write ``metadata.json`` atomically."""
    return write_json(out_dir / METADATA_FILE, metadata)
