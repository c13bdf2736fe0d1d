"""The records that describe a model file: its export's ``metadata.json`` and its run's metrics.

A model file is described in up to two places, read here one way for everything that asks
(the ``min_confidence`` threshold, the demo's model card):

- ``metadata.json`` beside it: an export folder's (``RUN/export/metadata.json``, written by
  ``cifar export``) or the shipped model's (``models/metadata.json``); for a SavedModel folder
  also one inside it;
- ``metrics.json`` of the training run it belongs to (``RUN/best_model.keras`` or
  ``RUN/export/...``).

Example:
    >>> records = ModelRecords.of("models/model_float16.tflite")
    >>> records.metadata["source"]["run"], records.metrics
    ('mobilenetv2_finetune_deep', None)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cifar.run_files import METADATA_FILE, METRICS_FILE, read_optional_json, run_dir_of

__all__ = ["ModelRecords"]


@dataclass(frozen=True)
class ModelRecords:
    """What the files around a model say about it (None where there is no such file).

    Attributes:
        path: the model file (or SavedModel folder).
        metadata: the export metadata describing it, or None.
        metadata_path: where ``metadata`` was read from.
        run_dir: the training run it belongs to, or None.
        metrics: that run's ``metrics.json``, or None.
    """

    path: Path
    metadata: dict | None
    metadata_path: Path | None
    run_dir: Path | None
    metrics: dict | None

    @classmethod
    def of(cls, model_path: str | os.PathLike) -> ModelRecords:
        """Read the records of ``model_path`` (unreadable files count as absent)."""
        path = Path(model_path)
        folders = ([path] if path.is_dir() else []) + [path.parent]
        metadata, metadata_path = None, None
        for folder in folders:
            metadata = read_optional_json(folder / METADATA_FILE)
            if metadata is not None:
                metadata_path = folder / METADATA_FILE
                break
        run_dir = run_dir_of(path)
        metrics = read_optional_json(run_dir / METRICS_FILE) if run_dir else None
        return cls(path, metadata, metadata_path, run_dir, metrics)

    @property
    def metrics_path(self) -> Path | None:
        """The run's ``metrics.json`` when it was read."""
        return self.run_dir / METRICS_FILE if self.metrics is not None else None

    def artifact(self) -> dict | None:
        """The export metadata's entry for this very file (``artifacts[].file``), or None."""
        for entry in (self.metadata or {}).get("artifacts", []):
            if isinstance(entry, dict) and entry.get("file") == self.path.name:
                return entry
        return None
