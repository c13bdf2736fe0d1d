"""Run a ``.tflite`` file in MediaPipe Tasks ``ImageClassifier``, the runtime apps use.

This is the consumer's view of an exported file: MediaPipe reads the metadata (normalisation,
labels), converts the image itself and returns named categories. The exporter compares its top-1
with the LiteRT interpreter's on the verification images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from exports.formats import failure_line

# Top-1 agreement of MediaPipe's ImageClassifier with LiteRT on the same file below which the
# export warns (the consumer's runtime should reproduce the file; int8 scores tie more often).
MEDIAPIPE_AGREEMENT = 0.99
MEDIAPIPE_AGREEMENT_INT8 = 0.97
# What a missing or broken MediaPipe, or MediaPipe refusing a file, raises: the export reports
# them and goes on (the file itself was verified in LiteRT). Anything else is a bug of ours.
MEDIAPIPE_FAILURES = (ImportError, RuntimeError, ValueError)


class MediaPipeClassifier:
    """MediaPipe's ``ImageClassifier`` over a file with metadata, for uint8 RGB arrays.

    Example:
        >>> with MediaPipeClassifier("export/model_float16.tflite") as clf:
        ...     names, scores = clf.top_k(images_uint8_n_32_32_3)
    """

    def __init__(self, model_path: str | Path, max_results: int = 3) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.ImageClassifierOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)), max_results=max_results
        )
        self.max_results = max_results
        self._classifier = vision.ImageClassifier.create_from_options(options)

    def classify(self, image: np.ndarray) -> list[tuple[int, str, float]]:
        """(class index, name, score) of one H x W x 3 uint8 RGB image, best first."""
        import mediapipe as mp

        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        (head,) = self._classifier.classify(frame).classifications
        return [(c.index, c.category_name, float(c.score)) for c in head.categories]

    def top_k(self, images: np.ndarray) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
        """Names (N lists), class indices (N x k) and scores (N x k) of a batch of images."""
        results = [self.classify(image) for image in np.asarray(images, np.uint8)]
        names = [[name for _, name, _ in r] for r in results]
        indices = np.array([[i for i, _, _ in r] for r in results], np.int64)
        scores = np.array([[s for _, _, s in r] for r in results], np.float32)
        return names, indices, scores

    def close(self) -> None:
        """Release the MediaPipe graph (also done on ``with`` exit)."""
        if self._classifier is not None:
            self._classifier.close()
            self._classifier = None

    def __enter__(self) -> MediaPipeClassifier:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def top1_agreement(indices: np.ndarray, probs: np.ndarray) -> float:
    """Share of images whose MediaPipe top-1 class has the largest probability in ``probs``.

    A class tied with the maximum counts as agreeing: quantised (int8) scores tie often, and
    MediaPipe and ``argmax`` may order tied classes differently.
    """
    chosen = probs[np.arange(len(probs)), indices[:, 0]]
    return float(np.mean(chosen >= probs.max(axis=1) - 1e-6))


def mediapipe_agreement(model_path: str | Path, images: np.ndarray, probs: np.ndarray) -> float:
    """Top-1 agreement of MediaPipe's ``ImageClassifier`` on ``images`` with ``probs``."""
    with MediaPipeClassifier(model_path, max_results=1) as clf:
        _, indices, _ = clf.top_k(images)
    return top1_agreement(indices, probs)


def check_mediapipe(
    name: str,
    path: Path,
    images: np.ndarray,
    litert_probs: np.ndarray,
    quantized_input: bool,
    log: Callable[[str], None],
) -> float | None:
    """Top-1 agreement of MediaPipe with LiteRT on the file ``path`` (None: MediaPipe failed).

    Logs a warning when it is below :data:`MEDIAPIPE_AGREEMENT` (the int8 threshold for a
    file with quantised input) and a line saying why when MediaPipe could not run the file.
    """
    try:
        agreement = mediapipe_agreement(path, images, litert_probs)
    except MEDIAPIPE_FAILURES as exc:  # reported, not fatal
        log(f"{name}: MediaPipe check failed ({failure_line(exc)})")
        return None
    expected = MEDIAPIPE_AGREEMENT_INT8 if quantized_input else MEDIAPIPE_AGREEMENT
    if agreement < expected:
        log(
            f"warning: {name}: MediaPipe's top-1 agrees with LiteRT on only "
            f"{agreement:.2%} of the images (expected at least {expected:.0%})"
        )
    return agreement
