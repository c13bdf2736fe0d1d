"""Build one export format's file from the Keras reference model (no checks: see the Exporter)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from exports.formats import TFLITE_MODES, ExportFormat, failure_line
from exports.mediapipe_check import MEDIAPIPE_FAILURES


class FormatBuilder:
    """Writes SavedModel, ONNX and the TFLite variants of one model.

    The TFLite files are converted from a SavedModel: the one this export wrote (see
    :meth:`use_savedmodel`), else an intermediate one written once into the work folder. They
    get MediaPipe image-classifier metadata (:mod:`exports.tflite_metadata`).

    Args:
        model: the inference model (the Keras reference runtime's).
        representative: training images that calibrate the int8 file.
        selective: keep the sensitive parts of float16/int8 files in float32.
        class_names, model_name, run_name: what the TFLite metadata says.
        log: where a skipped metadata step is reported.
    """

    def __init__(
        self,
        model: keras.Model,
        representative: np.ndarray,
        selective: bool,
        class_names: list[str],
        model_name: str,
        run_name: str | None,
        log: Callable[[str], None],
    ) -> None:
        self.model = model
        self.representative = representative
        self.selective = selective
        self.class_names = class_names
        self.model_name = model_name
        self.run_name = run_name
        self.log = log
        self._savedmodel: Path | None = None

    def use_savedmodel(self, path: Path | None) -> None:
        """Convert TFLite from ``path`` (a SavedModel of this model), None: write one."""
        self._savedmodel = path

    def build(self, fmt: ExportFormat, path: Path, work: Path) -> dict:
        """Write ``fmt`` to ``path``; returns its conversion settings."""
        if fmt.name == "savedmodel":
            from exports.to_savedmodel import write_savedmodel

            return write_savedmodel(self.model, path)
        if fmt.name == "onnx":
            from exports.to_onnx import write_onnx

            return write_onnx(self.model, path)
        from exports.to_tflite import write_tflite

        saved_model = self._saved_model(work)
        mode = TFLITE_MODES[fmt.name]
        settings = write_tflite(saved_model, path, mode, self.representative, self.selective)
        # Last: precision and compaction rewrite the flatbuffer, the metadata goes on the result.
        return {**settings, "converted_from": "savedmodel", "metadata": self._embed(fmt, path)}

    def _embed(self, fmt: ExportFormat, path: Path) -> dict:
        """Add MediaPipe image-classifier metadata to ``path``; on failure keep the plain file."""
        try:
            from exports.tflite_metadata import embed_metadata

            return embed_metadata(path, self.class_names, self.model_name, self.run_name)
        except MEDIAPIPE_FAILURES as exc:  # MediaPipe's writer failing to import included
            reason = failure_line(exc)
            self.log(
                f"{fmt.name}: metadata skipped ({reason}); the file runs in LiteRT and "
                "cifar predict, but MediaPipe Tasks will not load it"
            )
            return {"skipped": reason}

    def _saved_model(self, work: Path) -> Path:
        """The SavedModel TFLite converts from: this export's, else an intermediate one."""
        if self._savedmodel is None:
            from exports.to_savedmodel import write_savedmodel

            intermediate = work / "intermediate_saved_model"
            remove_path(intermediate)  # what a failed earlier attempt may have left
            write_savedmodel(self.model, intermediate)
            self._savedmodel = intermediate
        return self._savedmodel


def remove_path(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
