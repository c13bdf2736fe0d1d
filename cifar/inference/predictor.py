"""The inference core shared by ``cifar predict``, the Flask API and the Gradio app.

A :class:`Predictor` loads one model file through :func:`cifar.inference.runtimes.load_runtime`
(``.keras``, SavedModel, ``.tflite`` or ``.onnx``) once, warms it up, and turns images in any
common format into class probabilities and the top-k classes with their names. Images are decoded
by :mod:`cifar.imageio` and fitted to the runtime's input (the size
:func:`cifar.inference.input_size.input_size` gives: the run's stored image size, 32x32 for
CIFAR-10, the decode size for a photo folder); the runtime resizes further inside if the
network wants more.

Which model: an explicit path (a model file, or a run folder for its ``best_model.keras``), else
``$CIFAR_MODEL``, else the shipped model (``models/*.tflite``). Never silently the newest run:
a one-minute smoke run is not what a first visitor should be shown; a run is served when named.

Below the model's ``min_confidence`` (:mod:`cifar.inference.confidence`) a prediction is
"not sure" (:attr:`Prediction.not_sure`), by the one rule :func:`cifar.calibration.is_not_sure`.

Example:
    >>> predictor = Predictor.load()                     # or Predictor.load("model.tflite")
    >>> result = predictor.predict_one("cat.jpg")
    >>> result.top_k(3)
    [('cat', 0.81), ('dog', 0.12), ('frog', 0.03)]
    >>> result.verdict()                                   # with min_confidence 0.83
    'not sure (best guess: cat 0.81, below 0.83)'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cifar.errors import ModelError
from cifar.imageio import ImageSource, load_images
from cifar.inference.confidence import ConfidenceThreshold, find_min_confidence
from cifar.run_files import (
    BEST_MODEL,
    EXPORT_DIR,
    LABELS_FILE,
    METADATA_FILE,
    read_json,
    read_labels,
    run_dir_of,
)

if TYPE_CHECKING:
    from cifar.inference.runtimes import Runtime

__all__ = [
    "MODEL_ENV",
    "Prediction",
    "Predictor",
    "find_class_names",
    "find_default_model",
    "resolve_model_path",
]

MODEL_ENV = "CIFAR_MODEL"
# Shipped TFLite variants, best first for serving: exact float, then the smaller approximations.
TFLITE_PREFERENCE = ("float32", "float16", "dynamic", "int8")
HOW_TO_GET_A_MODEL = (
    "Train one with `cifar train smoke` (writes runs/<name>-<time>/best_model.keras) or export "
    "a trained run with `cifar export RUN_DIR`, then pass --model PATH (a model file or a run "
    f"folder) or set {MODEL_ENV}=PATH."
)


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of one image, with the class names in label order.

    ``min_confidence``: the served model's threshold (None: none), below which the answer is
    "not sure" (:attr:`not_sure`); the top classes are still given.
    """

    probabilities: np.ndarray
    class_names: tuple[str, ...]
    min_confidence: float | None = None

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        """Probability of the most probable class."""
        return float(np.max(self.probabilities))

    @property
    def not_sure(self) -> bool:
        """True when the top-1 probability is below ``min_confidence`` (never without one)."""
        if self.min_confidence is None:
            return False
        # Imported here: SciPy (beneath cifar.calibration) only loads when a threshold is set.
        from cifar.calibration import is_not_sure

        return bool(is_not_sure(self.probabilities, self.min_confidence))

    def verdict(self) -> str:
        """``cat 0.93``, or ``not sure (best guess: cat 0.41, below 0.83)`` under the threshold."""
        if self.not_sure:
            return (
                f"not sure (best guess: {self.label} {self.confidence:.2f}, below "
                f"{self.min_confidence:.2f})"
            )
        return f"{self.label} {self.confidence:.2f}"

    def top_k(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs, most probable first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]

    def confidences(self) -> dict[str, float]:
        """{label: probability} for every class (the value a ``gr.Label`` takes)."""
        return {
            name: float(p) for name, p in zip(self.class_names, self.probabilities, strict=True)
        }

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        """JSON-ready ``{"predictions": all classes in label order, "top_k": best k,
        "not_sure": bool, "min_confidence": threshold or None}``."""
        return {
            "predictions": [{"label": n, "probability": p} for n, p in self.confidences().items()],
            "top_k": [{"label": n, "probability": p} for n, p in self.top_k(k)],
            "not_sure": self.not_sure,
            "min_confidence": self.min_confidence,
        }


class Predictor:
    """One loaded, warmed-up model that classifies images in any common format.

    Thread-safe: calls into the runtime are serialised, since the LiteRT interpreter and
    friends must not run two inferences at once on one instance.

    Args:
        runtime: a :class:`cifar.inference.runtimes.Runtime` (``load_runtime(path)``).
        class_names: names in label order (default: found beside the model file, see
            :func:`find_class_names`).
        top_k: how many classes :meth:`Prediction.to_dict` callers show by default.
        warmup: run one inference now, so the first request is not the slow one.
        min_confidence: a threshold set by hand; None: the model's own, found by
            :func:`cifar.inference.confidence.find_min_confidence` (``threshold`` says which).
        tta: average the probabilities of this many test-time views per image (1: one
            pass; see :mod:`cifar.data.tta`); costs ``tta`` inferences per image.

    Example:
        >>> predictor = Predictor.load("runs/smoke-20250101-120000/best_model.keras")
        >>> [p.label for p in predictor.predict(["a.png", "b.jpg"])]
        ['cat', 'ship']
    """

    def __init__(
        self,
        runtime: Runtime,
        class_names: Sequence[str] | None = None,
        top_k: int = 3,
        warmup: bool = True,
        min_confidence: float | None = None,
        tta: int = 1,
    ) -> None:
        if tta != 1:
            from cifar.data.tta import check_views

            check_views(tta)
        self.tta = int(tta)
        self.runtime = runtime
        self.path = Path(runtime.path)
        self.input_size = int(runtime.input_size)
        self.num_classes = int(runtime.num_classes)
        if class_names is None:
            class_names, self.labels_source = find_class_names(self.path, self.num_classes)
        else:
            self.labels_source = "argument"
        if len(class_names) != self.num_classes:
            raise ModelError(
                f"{len(class_names)} class names given but {self.path} outputs "
                f"{self.num_classes} classes"
            )
        self.class_names = tuple(class_names)
        self.top_k = max(1, min(int(top_k), self.num_classes))
        self.threshold: ConfidenceThreshold = find_min_confidence(self.path, min_confidence)
        self._lock = threading.Lock()
        if warmup:
            self.predict_pixels(np.zeros((1, self.input_size, self.input_size, 3), np.uint8))

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        top_k: int = 3,
        warmup: bool = True,
        runs_dir: str | os.PathLike = "runs",
        models_dir: str | os.PathLike | None = None,
        min_confidence: float | None = None,
        tta: int = 1,
    ) -> Predictor:
        """Load ``model`` (default: see :func:`resolve_model_path`) and warm it up.

        ``min_confidence``: set by hand (default: the model's own, or none).
        """
        from cifar.inference.runtimes import load_runtime

        path = resolve_model_path(model, runs_dir=runs_dir, models_dir=models_dir)
        return cls(
            load_runtime(path), top_k=top_k, warmup=warmup, min_confidence=min_confidence, tta=tta
        )

    @property
    def kind(self) -> str:
        """Runtime kind: ``keras``, ``savedmodel``, ``tflite`` or ``onnx``."""
        return self.runtime.kind

    @property
    def min_confidence(self) -> float | None:
        """The threshold below which answers are "not sure" (None: no threshold)."""
        return self.threshold.min_confidence

    @property
    def run_dir(self) -> Path | None:
        """The training run the model comes from (``RUN_DIR/best_model.keras`` or
        ``RUN_DIR/export/...``), or None for a file outside a run."""
        return run_dir_of(self.path)

    def info(self) -> dict[str, Any]:
        """What is served: file, runtime kind, sizes, classes and the package version."""
        from cifar import __version__

        return {
            "name": self.path.name,
            "path": str(self.path),
            "kind": self.kind,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "labels_source": self.labels_source,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "min_confidence": self.min_confidence,
            "min_confidence_source": self.threshold.source,
            "version": __version__,
        }

    def predict_pixels(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x S x S x 3 RGB at the input size -> float32 N x C probabilities."""
        with self._lock:
            if self.tta == 1:
                return np.asarray(self.runtime.predict(images), dtype=np.float32)
            from cifar.data.tta import average  # only TTA needs it, not every server start

            return average(self.runtime.predict, images, self.tta)

    def predict(
        self, images: Sequence[ImageSource], names: Sequence[str] | None = None
    ) -> list[Prediction]:
        """Decode, resize and classify several images in one batch.

        Args:
            images: encoded bytes, paths, file objects, PIL images or arrays (any size).
            names: names for error messages (e.g. uploaded file names).

        Raises:
            cifar.imageio.ImageError: an image is unusable; the message names it.
        """
        if len(images) == 0:
            return []
        pixels = load_images(images, self.input_size, names=names)
        probs = self.predict_pixels(pixels)
        return [Prediction(row, self.class_names, self.min_confidence) for row in probs]

    def predict_one(self, image: ImageSource, name: str | None = None) -> Prediction:
        """Classify one image (see :meth:`predict`)."""
        return self.predict([image], names=None if name is None else [name])[0]

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, kind={self.kind!r}, classes={self.num_classes})"


# The trained model shipped with the repository (next to the package in a checkout);
# $CIFAR_MODELS_DIR points the fallback elsewhere.
SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "models"
MODELS_DIR_ENV = "CIFAR_MODELS_DIR"


def resolve_model_path(
    model: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs",
    models_dir: str | os.PathLike | None = None,
) -> Path:
    """The model file to serve: ``model``, else ``$CIFAR_MODEL``, else the shipped model.

    A run folder given as ``model`` means its ``best_model.keras``. Runs are never picked
    without being named: after ``cifar train smoke`` the default is still the shipped model.

    Raises:
        ModelError: the given file does not exist, or there is no model anywhere (the message
            names the newest run in ``runs_dir`` to pass, and says how to train or export one).
    """
    chosen = model if model not in (None, "") else os.environ.get(MODEL_ENV) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.exists():
            origin = "--model" if model not in (None, "") else f"${MODEL_ENV}"
            raise ModelError(
                f"model file {path} (from {origin}) does not exist. {HOW_TO_GET_A_MODEL}"
            )
        if path.is_dir() and (path / BEST_MODEL).is_file():
            return path / BEST_MODEL
        return path
    if models_dir is None:
        models_dir = os.environ.get(MODELS_DIR_ENV) or SHIPPED_MODELS
    found = find_default_model(models_dir)
    if found is None:
        runs = sorted(Path(runs_dir).glob(f"*/{BEST_MODEL}"), key=lambda p: p.stat().st_mtime)
        hint = f" To serve your newest run, name it: --model {runs[-1].parent}." if runs else ""
        raise ModelError(
            f"no model to serve: no --model, no ${MODEL_ENV} and no shipped model "
            f"({models_dir}/*.tflite).{hint} " + HOW_TO_GET_A_MODEL
        )
    return found


def find_default_model(models_dir: str | os.PathLike = SHIPPED_MODELS) -> Path | None:
    """The shipped model: the best ``*.tflite`` file in ``models_dir`` (None if there is none).

    TFLite variants are preferred float32, float16, dynamic-range, then int8.
    """
    shipped = [p for p in Path(models_dir).glob("*.tflite") if p.is_file()]
    if not shipped:
        return None
    return min(shipped, key=lambda p: (_tflite_rank(p), p.name))


def _tflite_rank(path: Path) -> int:
    """Preference of a ``.tflite`` file by its variant tag in the name (lower is better)."""
    name = path.name.lower()
    return next((i for i, tag in enumerate(TFLITE_PREFERENCE) if tag in name), 0)


def find_class_names(model_path: str | os.PathLike, num_classes: int) -> tuple[list[str], str]:
    """Class names for a model file, and where they came from.

    Looks for ``labels.txt`` (one name per line) or ``metadata.json`` (``class_names`` or
    ``labels``) beside the model, inside a SavedModel folder, and in the run folder of
    ``RUN_DIR/export/...``; falls back to the CIFAR-10 names for a 10-class model and to
    ``class_<i>`` otherwise.

    Raises:
        ModelError: a labels file lists a different number of classes than the model has.
        RunFileError: a ``metadata.json`` there is not valid JSON.
    """
    path = Path(model_path)
    folders = [path] if path.is_dir() else []
    folders.append(path.parent)
    if path.parent.name == EXPORT_DIR:
        folders.append(path.parent.parent)
    for folder in folders:
        names = _read_names(folder)
        if names is None:
            continue
        names, source = names
        if len(names) != num_classes:
            raise ModelError(
                f"{source} lists {len(names)} classes but the model {path} outputs {num_classes}"
            )
        return names, str(source)
    if num_classes == 10:
        from cifar.data import CIFAR10_CLASSES

        return list(CIFAR10_CLASSES), "CIFAR-10 default (no labels.txt beside the model)"
    return [f"class_{i}" for i in range(num_classes)], "generic (no labels.txt beside the model)"


def _read_names(folder: Path) -> tuple[list[str], Path] | None:
    names = read_labels(folder / LABELS_FILE)
    if names is not None:
        return names, folder / LABELS_FILE
    metadata = folder / METADATA_FILE
    data = read_json(metadata, None)
    for key in ("class_names", "labels"):
        if data is not None and isinstance(data.get(key), list):
            return [str(n) for n in data[key]], metadata
    return None
