"""On-device CIFAR-10 classifier for exported ``.tflite`` files: LiteRT, NumPy and Pillow only.

It needs no other file of the project but ``cifar/image_fit.py`` (the decode rule it shares
with :mod:`cifar.imageio`): copy both next to ``model.tflite`` and ``labels.txt`` on a Raspberry
Pi (``pip install ai-edge-litert numpy pillow``) and run::

    python tflite_runner.py model.tflite cat.jpg dog.png

(in the repository: ``python -m cifar.inference.tflite_runner model.tflite cat.jpg``).

It never imports TensorFlow. Images are decoded as everywhere else in the project (EXIF
orientation applied, converted to RGB, short side resized to the model's input size and the
long side centre-cropped); the float models take float32 0..255 pixels, the int8 model takes
uint8 and returns quantised scores, and both quantisations are applied here from the
parameters stored in the file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # in the repository, or with the package installed
    from cifar.image_fit import fit_image
except ImportError:  # on a device: image_fit.py copied next to this file
    from image_fit import fit_image

__all__ = [
    "RunnerError",
    "TFLiteClassifier",
    "check_images",
    "load_images",
    "main",
    "predict_in_batches",
    "read_labels",
    "top_k",
]


class RunnerError(Exception):
    """A model, label or image file could not be used; the message says which and why."""


@dataclass(frozen=True)
class Quantization:
    """Affine quantisation of one tensor: ``real = (q - zero_point) * scale`` (scale 0 = none)."""

    dtype: np.dtype
    scale: float
    zero_point: int

    @classmethod
    def of(cls, detail: dict) -> Quantization:
        """The quantisation recorded in an interpreter's input or output detail."""
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return cls(np.dtype(detail["dtype"]), float(scale), int(zero_point))

    @property
    def quantized(self) -> bool:
        """True for integer tensors carrying a scale (the int8 model's input/output)."""
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Real values -> this tensor's dtype (rounded and clipped for integer tensors)."""
        if not self.quantized:
            return np.asarray(values, dtype=self.dtype)
        info = np.iinfo(self.dtype)
        q = np.round(np.asarray(values, np.float32) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """This tensor's values -> float32 real values."""
        values = np.asarray(values)
        if not self.quantized:
            return values.astype(np.float32)
        return ((values.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


class TFLiteClassifier:
    """An image classifier over a ``.tflite`` file, batched, with int8 (de)quantisation.

    Args:
        model_path: the ``.tflite`` file.
        num_threads: CPU threads for the interpreter (None: LiteRT's default).

    Example:
        >>> clf = TFLiteClassifier("export/model_int8.tflite")
        >>> probs = clf.predict(images_uint8_n_32_32_3)   # float32 N x 10, dequantised
    """

    def __init__(self, model_path: str | Path, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(model_path)
        if not self.path.is_file():
            raise RunnerError(f"TFLite model {self.path} does not exist")
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RunnerError(f"{self.path} is not a loadable TFLite model: {exc}") from exc
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4:
            raise RunnerError(
                f"{self.path}: expected one N x S x S x 3 image input and one output, "
                f"found {len(inputs)} inputs and {len(outputs)} outputs"
            )
        self._input, self._output = inputs[0], outputs[0]
        self.input_quant = Quantization.of(self._input)
        self.output_quant = Quantization.of(self._output)
        self.input_size = int(self._input["shape"][1])
        self.num_classes = int(self._output["shape"][-1])
        self._batch = int(self._input["shape"][0])

    @property
    def input_dtype(self) -> np.dtype:
        """dtype the model's input takes (float32, or uint8 for the int8 model)."""
        return self.input_quant.dtype

    def _resize_batch(self, n: int) -> None:
        if n != self._batch:
            self.interpreter.resize_tensor_input(
                self._input["index"], [n, *self._input["shape"][1:]]
            )
            self.interpreter.allocate_tensors()
            self._batch = n

    def predict(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 or float N x S x S x 3 RGB 0..255 -> float32 N x C probabilities."""
        images = check_images(images, self.input_size, self.path.name)
        return predict_in_batches(self.predict_batch, images, self.num_classes, batch_size)

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of one already checked batch (quantised in, dequantised out)."""
        self._resize_batch(len(images))
        self.interpreter.set_tensor(self._input["index"], self.input_quant.quantize(images))
        self.interpreter.invoke()
        return self.output_quant.dequantize(self.interpreter.get_tensor(self._output["index"]))


def check_images(images: np.ndarray, size: int, model_name: str) -> np.ndarray:
    """``images`` as an array if it is N x size x size x 3, else RunnerError saying what to do."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise RunnerError(
            f"{model_name} takes N x {size} x {size} x 3 RGB images, got shape "
            f"{images.shape}; resize images to {size}x{size} first"
        )
    return images


def predict_in_batches(
    predict_batch, images: np.ndarray, num_classes: int, batch_size: int
) -> np.ndarray:
    """float32 N x C from ``predict_batch`` called on consecutive slices of ``images``."""
    out = np.empty((len(images), num_classes), np.float32)
    for start in range(0, len(images), batch_size):
        out[start : start + batch_size] = predict_batch(images[start : start + batch_size])
    return out


def read_labels(path: str | Path | None, num_classes: int) -> list[str]:
    """Class names from ``labels.txt`` (one per line); ``class_<i>`` when there is no file."""
    if path is None or not Path(path).is_file():
        return [f"class_{i}" for i in range(num_classes)]
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if len(names) != num_classes:
        raise RunnerError(f"{path} lists {len(names)} classes but the model outputs {num_classes}")
    return names


def load_images(paths: list[str | Path], size: int) -> np.ndarray:
    """Image files -> uint8 N x size x size x 3 RGB, by the project's one decode rule.

    Upright (EXIF orientation), short side resized (bilinear) to ``size``, long side
    centre-cropped: the pixels :func:`cifar.imageio.load_image` gives for the same file.
    """
    from PIL import Image

    batch = np.empty((len(paths), size, size, 3), np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                batch[i] = np.asarray(fit_image(img, size), np.uint8)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise RunnerError(f"cannot read image {path}: {exc}") from exc
    return batch


def top_k(probs: np.ndarray, labels: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable (label, probability) pairs of one probability vector."""
    order = np.argsort(probs)[::-1][:k]
    return [(labels[i], float(probs[i])) for i in order]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tflite_runner", description="Classify image files with an exported .tflite model."
    )
    parser.add_argument("model", help="the .tflite file (float32, float16 or int8)")
    parser.add_argument("images", nargs="+", help="image files (any size; fitted to the input)")
    parser.add_argument("--labels", help="labels.txt (default: the one next to the model)")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print")
    parser.add_argument("--threads", type=int, default=None, help="interpreter CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the top classes of each image; exit 2 with one line on a bad file."""
    args = _parse(argv)
    try:
        clf = TFLiteClassifier(args.model, num_threads=args.threads)
        labels_path = args.labels or Path(args.model).with_name("labels.txt")
        labels = read_labels(labels_path, clf.num_classes)
        probs = clf.predict(load_images(args.images, clf.input_size))
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, row in zip(args.images, probs, strict=True):
        ranked = ", ".join(f"{name} {p:.3f}" for name, p in top_k(row, labels, args.top))
        print(f"{path}: {ranked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
