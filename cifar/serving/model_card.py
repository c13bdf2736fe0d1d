"""The served model in one line: its file, its data set and its measured test accuracy.

The demo's first tab shows it, so a visitor knows which model answers and how good it is.
What it says comes from the model's records (:class:`cifar.inference.model_records.ModelRecords`):

- the accuracy of this very file, as ``cifar export`` measured it (``metadata.json``'s entry for
  the file: the shipped model's, an export's), else its run's test accuracy
  (``metrics.json`` ``test.accuracy``, measured on the run's ``best_model.keras``);
- the data set from the run's ``metrics.json`` (``data``), else the folder the export was
  verified on (``verification.data``).

Example:
    >>> ModelCard.of(Predictor.load()).markdown()
    '**Model:** `model_float16.tflite` (TFLite) · **data set:** CIFAR-10 (JPEG-q75 ...) · ...'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cifar.inference.model_records import ModelRecords

if TYPE_CHECKING:
    from cifar.inference.predictor import Predictor

__all__ = ["ModelCard"]

KIND_NAMES = {"keras": "Keras", "savedmodel": "SavedModel", "tflite": "TFLite", "onnx": "ONNX"}


@dataclass(frozen=True)
class ModelCard:
    """What a first visitor is told about the served model.

    Attributes:
        file: the model file's name.
        kind: ``keras``, ``savedmodel``, ``tflite`` or ``onnx``.
        dataset: the data set it was trained and tested on (None: unknown).
        test_accuracy: its measured test accuracy (None: not measured).
        measured: what was measured and on how many images (e.g. ``this file, 10,000 test
            images``), or None.
        run: the training run's name, or None.
    """

    file: str
    kind: str
    dataset: str | None
    test_accuracy: float | None
    measured: str | None
    run: str | None

    @classmethod
    def of(cls, predictor: Predictor) -> ModelCard:
        """The card of the model ``predictor`` serves."""
        records = ModelRecords.of(predictor.path)
        metadata, metrics = records.metadata or {}, records.metrics or {}
        accuracy, measured = _accuracy(records, metadata, metrics)
        source = metadata.get("source") or {}
        run = records.run_dir.name if records.run_dir else source.get("run")
        return cls(
            predictor.path.name,
            predictor.kind,
            _dataset(metadata, metrics, predictor.num_classes),
            accuracy,
            measured,
            run,
        )

    def markdown(self) -> str:
        """One Markdown line: model file, data set, test accuracy."""
        kind = KIND_NAMES.get(self.kind, self.kind)
        parts = [f"**Model:** `{self.file}` ({kind}" + (f", run {self.run})" if self.run else ")")]
        parts.append(f"**data set:** {self.dataset or 'not recorded'}")
        if self.test_accuracy is None:
            parts.append("**test accuracy:** not measured (no metrics beside the model)")
        else:
            parts.append(f"**test accuracy:** {self.test_accuracy:.2%} ({self.measured})")
        return " · ".join(parts)


def _accuracy(
    records: ModelRecords, metadata: dict, metrics: dict
) -> tuple[float | None, str | None]:
    """(accuracy, what was measured) of this file, else of its run's Keras model."""
    artifact = records.artifact() or {}
    verification = metadata.get("verification") or {}
    if isinstance(artifact.get("accuracy"), (int, float)):
        n = artifact.get("n_images", verification.get("n_images"))
        split = verification.get("split", "test")
        return float(artifact["accuracy"]), f"this file, {_count(n)}{split} images"
    test = metrics.get("test") or {}
    if isinstance(test.get("accuracy"), (int, float)):
        n = (metrics.get("data") or {}).get("n_test")
        return float(test["accuracy"]), f"the run's best_model.keras, {_count(n)}test images"
    return None, None


def _dataset(metadata: dict, metrics: dict, num_classes: int) -> str | None:
    """The data set's human name from the run's metrics, else from the export's verification."""
    from cifar.report import dataset_name

    data = metrics.get("data") or {}
    source, dataset = data.get("source"), data.get("dataset")
    if source is None:
        source = (metadata.get("verification") or {}).get("data")
        dataset = "cifar10" if source and "cifar-10" in str(source) else "folder"
    if source is None:
        return None
    name = dataset_name(str(source), dataset or "cifar10")
    if dataset == "folder":
        name += f" {Path(str(source)).name}"
    return f"{name}, {num_classes} classes"


def _count(n: object) -> str:
    return f"{n:,} " if isinstance(n, int) else ""
