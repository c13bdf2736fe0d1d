"""Explain a model's predictions on images: the core of ``cifar explain``.

An :class:`Explainer` holds one Keras classifier cut at its feature map
(:mod:`cifar.explain.split`). It takes images the way the :class:`Predictor` does (decoded by
:mod:`cifar.imageio` at the size the run stored its images, then resized inside to the model's
input), so the class it explains is the class ``cifar predict`` prints for the same file.
Heatmaps need gradients, so only the ``.keras`` file (or its run folder) will do: exported
TFLite, ONNX and SavedModel files are refused with a message saying so.

Example:
    >>> explainer = Explainer.load("runs/photos-20250101-120000")      # or the .keras file
    >>> [r.predicted_class for r in explainer.explain(["cat.jpg", "dog.png"])]
    ['cat', 'dog']
    >>> explainer.explain_pixels(x_test[:8], classes=y_test[:8])     # explain the true classes
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.errors import DataError, ModelError
from cifar.explain.cam import DEFAULT_METHOD, class_heatmaps, upsample
from cifar.explain.overlay import overlay_heatmap
from cifar.explain.split import split_at_feature_map
from cifar.imageio import ImageSource, encode_png, load_images
from cifar.inference.input_size import input_size
from cifar.inference.predictor import find_class_names
from cifar.inference.runtimes import load_keras_model, runtime_kind
from cifar.run_files import BEST_MODEL

__all__ = [
    "HEATMAP_NEEDS_KERAS",
    "Explainer",
    "Explanation",
    "keras_model_file",
]

HEATMAP_NEEDS_KERAS = (
    "a heatmap needs the .keras file (or the run folder holding best_model.keras): "
    "gradients cannot be taken through an exported {kind} model"
)
KIND_NAMES = {"tflite": "TFLite", "onnx": "ONNX", "savedmodel": "SavedModel"}
BATCH_SIZE = 16


def keras_model_file(model: str | os.PathLike) -> Path:
    """The ``.keras`` file of ``model``: the file itself, or ``RUN_DIR/best_model.keras``.

    Raises:
        ModelError: it does not exist, or it is an exported file (TFLite, ONNX, SavedModel),
            which has no gradients; the message says to pass the ``.keras`` file instead.
    """
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelError(f"model {path} does not exist")
    if path.is_dir() and (path / BEST_MODEL).is_file():
        return path / BEST_MODEL
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise ModelError(f"{path} is neither a run folder (no {BEST_MODEL}) nor a model file")
    kind = runtime_kind(path)
    if kind != "keras":
        raise ModelError(f"{path}: " + HEATMAP_NEEDS_KERAS.format(kind=KIND_NAMES[kind]))
    return path


@dataclass(frozen=True)
class Explanation:
    """One image's prediction and the heatmap of the class explained.

    Attributes:
        image: uint8 S x S x 3, the pixels the model saw (its input size).
        heatmap: float32 S x S in [0, 1], where the explained class's score was raised.
        probabilities: float32 C, the model's output.
        class_names: names in label order.
        class_index: the class explained (by default the predicted one).
        method: the heatmap method (see :mod:`cifar.explain.cam`).
    """

    image: np.ndarray
    heatmap: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    class_index: int
    method: str = DEFAULT_METHOD

    @property
    def predicted_index(self) -> int:
        """Index of the most probable class."""
        return int(np.argmax(self.probabilities))

    @property
    def predicted_class(self) -> str:
        """Name of the most probable class."""
        return self.class_names[self.predicted_index]

    @property
    def confidence(self) -> float:
        """Probability of the most probable class."""
        return float(self.probabilities[self.predicted_index])

    @property
    def explained_class(self) -> str:
        """Name of the class the heatmap explains."""
        return self.class_names[self.class_index]

    @property
    def explained_probability(self) -> float:
        """Probability of the class the heatmap explains."""
        return float(self.probabilities[self.class_index])

    def overlay(self) -> np.ndarray:
        """uint8 S x S x 3: the image with the heatmap drawn over it."""
        return overlay_heatmap(self.image, self.heatmap)

    def save_overlay(self, path: str | os.PathLike) -> Path:
        """Write :meth:`overlay` as a PNG file and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(self.overlay()))
        return path


class Explainer:
    """One Keras classifier ready to explain images with gradient heatmaps.

    Args:
        model: a registry model (or any functional classifier ending in GAP/Flatten ... Dense
            softmax), e.g. ``keras.models.load_model("best_model.keras")``.
        class_names: names in label order (default: ``class_<i>``).
        source_size: the size images are decoded at before the model resizes them (the size
            the run stored its images at, 32 for CIFAR-10; default: the model's input size).
        method: heatmap method, one of :data:`cifar.explain.cam.METHODS`.
        path: the file the model came from (for messages).
    """

    def __init__(
        self,
        model,
        class_names: Sequence[str] | None = None,
        source_size: int | None = None,
        method: str = DEFAULT_METHOD,
        path: str | os.PathLike | None = None,
    ) -> None:
        self.model = model
        self.split = split_at_feature_map(model)
        self.input_size = int(model.input_shape[1])
        self.source_size = int(source_size or self.input_size)
        self.num_classes = int(model.output_shape[-1])
        names = class_names or [f"class_{i}" for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ModelError(
                f"{len(names)} class names given but the model outputs {self.num_classes} classes"
            )
        self.class_names = tuple(names)
        self.method = method
        self.path = Path(path) if path is not None else None
        self._resize = None
        if self.source_size != self.input_size:
            from cifar.inference.keras_model import resize_layer

            self._resize = resize_layer(self.input_size)

    @classmethod
    def load(cls, model: str | os.PathLike, method: str = DEFAULT_METHOD) -> Explainer:
        """Load a ``.keras`` file or a run folder's ``best_model.keras``, with its class names
        (``labels.txt`` beside it) and its run's stored image size."""
        path = keras_model_file(model)
        keras_model = load_keras_model(path)
        names, _ = find_class_names(path, int(keras_model.output_shape[-1]))
        return cls(keras_model, names, input_size(path), method=method, path=path)

    @property
    def layer_name(self) -> str:
        """The layer whose feature map the heatmaps are drawn on (e.g. ``backbone``)."""
        return self.split.layer_name

    def class_index(self, name_or_index: str | int) -> int:
        """Index of a class given by name or number (``"cat"``, ``3`` or ``"3"``).

        Raises:
            ModelError: no such class; the message lists the model's classes.
        """
        text = str(name_or_index)
        if text in self.class_names:
            return self.class_names.index(text)
        if text.lstrip("-").isdigit() and 0 <= int(text) < self.num_classes:
            return int(text)
        raise ModelError(
            f"unknown class {text!r}: the model's classes are {', '.join(self.class_names)} "
            f"(or an index 0..{self.num_classes - 1})"
        )

    def explain_pixels(
        self,
        images: np.ndarray,
        classes: int | Sequence[int] | np.ndarray | None = None,
    ) -> list[Explanation]:
        """Explain N x S x S x 3 raw 0-255 RGB images (S: the source or the input size).

        Args:
            images: e.g. ``data.x_test[idx]`` (32 x 32 for CIFAR-10) or decoded photos.
            classes: the class to explain, one for all or one per image (default: each
                image's predicted class); e.g. the true labels for a "top losses" view.

        Raises:
            DataError: the images are not N x S x S x 3 at the source or the input size.
        """
        images = np.asarray(images)
        sizes = {self.source_size, self.input_size}
        if (
            images.ndim != 4
            or images.shape[-1] != 3
            or images.shape[1:3] not in {(s, s) for s in sizes}
        ):
            raise DataError(
                f"expected N x S x S x 3 images with S in {sorted(sizes)}, got {images.shape}"
            )
        per_image = None
        if classes is not None:
            per_image = np.broadcast_to(np.asarray(classes, np.int64), (len(images),))
            if per_image.size and not (0 <= per_image.min() <= per_image.max() < self.num_classes):
                raise ModelError(f"class indices must lie in 0..{self.num_classes - 1}")
        results: list[Explanation] = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = images[start : start + BATCH_SIZE].astype(np.float32)
            if batch.shape[1] != self.input_size:
                batch = np.asarray(self._resize(batch))
            wanted = None if per_image is None else per_image[start : start + BATCH_SIZE]
            maps, probs = class_heatmaps(self.split, batch, wanted, self.method)
            heatmaps = upsample(maps, self.input_size)
            shown = np.clip(batch, 0, 255).round().astype(np.uint8)
            for i in range(len(batch)):
                index = int(np.argmax(probs[i]) if wanted is None else wanted[i])
                results.append(
                    Explanation(
                        shown[i], heatmaps[i], probs[i], self.class_names, index, self.method
                    )
                )
        return results

    def explain(
        self,
        images: Sequence[ImageSource],
        names: Sequence[str] | None = None,
        class_name: str | int | None = None,
    ) -> list[Explanation]:
        """Decode photos (any format, by the one image rule) and explain them.

        Args:
            images: paths, bytes, file objects, PIL images or arrays (any size).
            names: names for error messages (e.g. uploaded file names).
            class_name: the class to explain, by name or index (default: the predicted one).

        Raises:
            cifar.imageio.ImageError: an image is unusable; the message names it.
            ModelError: ``class_name`` is not one of the model's classes.
        """
        if len(images) == 0:
            return []
        classes = None if class_name is None else self.class_index(class_name)
        pixels = load_images(images, self.source_size, names=names)
        return self.explain_pixels(pixels, classes)

    def __repr__(self) -> str:
        return (
            f"Explainer({str(self.path or self.model.name)!r}, layer={self.layer_name!r}, "
            f"method={self.method!r})"
        )
