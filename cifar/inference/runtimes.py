"""One interface over every model file we produce: ``.keras``, SavedModel, ``.tflite``, ``.onnx``.

Each runtime takes raw RGB images at the size :func:`cifar.inference.input_size.input_size` gives
(the run's stored image size: 32x32 for CIFAR-10; uint8 or float 0..255) and returns class
probabilities, so evaluation, serving and the export check treat them alike.
TensorFlow is imported only by the runtimes that need it (Keras and SavedModel).

Example:
    >>> runtime = load_runtime("runs/cnn-20250101-120000/export/model_int8.tflite")
    >>> probs = runtime.predict(data.x_test[:100])   # float32 100 x 10
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from cifar.errors import DataError, ModelError
from cifar.inference.input_size import input_size

# The device runner (NumPy only until a model loads) keeps one definition of the input contract.
from cifar.inference.tflite_runner import (
    RunnerError,
    TFLiteClassifier,
    check_images,
    predict_in_batches,
)

__all__ = [
    "KerasRuntime",
    "OnnxRuntime",
    "Runtime",
    "SavedModelRuntime",
    "TFLiteRuntime",
    "load_keras_model",
    "load_runtime",
    "runtime_kind",
]

SOURCE_SIZE = 32
SERVING_SIGNATURE = "serving_default"


class Runtime(ABC):
    """A loaded model file that maps N x S x S x 3 RGB 0..255 images to N x C probabilities."""

    kind: str = ""

    def __init__(self, path: Path, input_size: int, num_classes: int) -> None:
        self.path = path
        self.input_size = input_size
        self.num_classes = num_classes

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 or float32 N x S x S x 3 RGB in 0..255 -> float32 N x C probabilities (batched)."""
        try:
            images = check_images(images, self.input_size, f"{self.kind} model {self.path.name}")
        except RunnerError as exc:
            raise DataError(str(exc)) from None
        return predict_in_batches(self._predict_batch, images, self.num_classes, batch_size)

    @abstractmethod
    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of one batch of already validated images."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, input_size={self.input_size})"


class KerasRuntime(Runtime):
    """A ``.keras`` file (e.g. ``best_model.keras``) wrapped to take stored-size images.

    ``source_size`` is the size the training images were stored at: by default
    :func:`~cifar.inference.input_size.input_size` of the run the file sits in (32 for
    CIFAR-10, the model's input size for an image folder), else of the model itself.

    Example:
        >>> runtime = KerasRuntime(Path("runs/x/best_model.keras"))   # a 160x160 MobileNetV2
        >>> runtime.input_size                                         # trained on CIFAR's 32x32
        32
    """

    kind = "keras"

    def __init__(self, path: Path, source_size: int | None = None, model=None) -> None:
        from cifar.inference.keras_model import build_inference_model, compiled_predict_step

        if model is None:
            model = load_keras_model(path)
        source_size = source_size or input_size(path) or input_size(model)
        self.model = build_inference_model(model, source_size=source_size)
        super().__init__(path, source_size, int(self.model.output_shape[-1]))
        # One traced graph for every batch size: no per-call retracing, no per-image predict().
        self._step = compiled_predict_step(self.model)

    @classmethod
    def from_model(
        cls, model, source_size: int | None = None, path: str | Path = ""
    ) -> KerasRuntime:
        """Wrap an in-memory Keras model (``path`` only labels it in messages).

        ``source_size``: the stored image size it takes; None means the model's own input size.
        """
        return cls(Path(path or f"{model.name}.keras"), source_size=source_size, model=model)

    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        return self._step(images.astype(np.float32)).numpy()


def load_keras_model(path: str | Path):
    """Load a `.keras` file without compiling it; ModelError if it is not a usable model."""
    import keras

    import cifar.models.layers  # noqa: F401 - registers the layers saved models may contain

    if not Path(path).is_file():
        raise ModelError(f"Keras model file {path} does not exist")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # zip, json or weight errors all mean "not a usable .keras file"
        raise ModelError(f"{path} is not a loadable Keras model: {exc}") from exc


class SavedModelRuntime(Runtime):
    """A SavedModel directory exported here, called through its ``serving_default`` signature."""

    kind = "savedmodel"

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
            fn = loaded.signatures[SERVING_SIGNATURE]
        except KeyError:
            raise ModelError(f"SavedModel {path} has no {SERVING_SIGNATURE!r} signature") from None
        except Exception as exc:  # protobuf / variables errors
            raise ModelError(f"{path} is not a loadable SavedModel: {exc}") from exc
        self._loaded, self._fn = loaded, fn  # keep the object alive: it owns the variables
        (spec,) = fn.structured_input_signature[1].values()
        self._input_name = next(iter(fn.structured_input_signature[1]))
        self._input_dtype = spec.dtype.as_numpy_dtype
        (self._output_name,) = fn.structured_outputs
        size = int(spec.shape[1])
        super().__init__(path, size, int(fn.structured_outputs[self._output_name].shape[-1]))

    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        out = self._fn(**{self._input_name: images.astype(self._input_dtype)})
        return out[self._output_name].numpy()


class TFLiteRuntime(Runtime):
    """A ``.tflite`` file in the LiteRT interpreter; int8 models are (de)quantised for you."""

    kind = "tflite"

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        try:
            self.classifier = TFLiteClassifier(path, num_threads=num_threads)
        except RunnerError as exc:
            raise ModelError(str(exc)) from exc
        super().__init__(path, self.classifier.input_size, self.classifier.num_classes)

    @property
    def input_dtype(self) -> np.dtype:
        """float32 for float models, uint8 for the int8 model."""
        return self.classifier.input_dtype

    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        return self.classifier.predict_batch(images)


class OnnxRuntime(Runtime):
    """An ``.onnx`` file in ONNX Runtime (CPU execution provider)."""

    kind = "onnx"

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph classes
            raise ModelError(f"{path} is not a loadable ONNX model: {exc}") from exc
        (inp,) = self.session.get_inputs()
        self._input_name = inp.name
        size = inp.shape[1]
        out_shape = self.session.get_outputs()[0].shape
        super().__init__(path, int(size), int(out_shape[-1]))

    def _predict_batch(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input_name: images.astype(np.float32)})[0]


def runtime_kind(path: str | Path) -> str:
    """``keras`` | ``savedmodel`` | ``tflite`` | ``onnx`` from a path's suffix or layout."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise ModelError(
            f"{path} is a folder but not a SavedModel (no saved_model.pb); pass a .keras, "
            ".tflite or .onnx file or a SavedModel folder"
        )
    kinds = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}
    if path.suffix.lower() in kinds:
        return kinds[path.suffix.lower()]
    raise ModelError(
        f"unknown model file type {path.name!r}: expected .keras, .tflite, .onnx or a "
        "SavedModel folder"
    )


def load_runtime(path: str | Path, source_size: int | None = None) -> Runtime:
    """Load any model file we produce; ``source_size`` only matters for ``.keras`` files."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    kind = runtime_kind(path)
    if kind == "keras":
        return KerasRuntime(path, source_size=source_size)
    if kind == "savedmodel":
        return SavedModelRuntime(path)
    if kind == "tflite":
        return TFLiteRuntime(path)
    return OnnxRuntime(path)
