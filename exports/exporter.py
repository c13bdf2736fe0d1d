"""The Exporter: build each format, check it in its real runtime, move it into place; metadata
last. Building is :mod:`exports.build`'s job, the checks are :mod:`exports.verify` (parity with
Keras), :mod:`exports.graph_checks` (training-only and TensorFlow-only ops) and
:mod:`exports.mediapipe_check`; this module orchestrates them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from tensorflow.lite.python.convert_phase import ConverterError

from cifar.data import ImageData
from cifar.errors import CifarError, ConfigError, DataError, ModelError
from cifar.inference.runtimes import KerasRuntime, Runtime, TFLiteRuntime, load_runtime
from cifar.run_files import LABELS_FILE, METADATA_FILE, write_labels
from exports.build import FormatBuilder, remove_path
from exports.formats import FORMATS, ExportFormat, failure_line, parse_formats
from exports.graph_checks import graph_failure
from exports.mediapipe_check import check_mediapipe
from exports.metadata import artifact_digest, build_metadata, read_metadata, write_metadata
from exports.source import ExportSource, source_from_model, source_from_run
from exports.verify import ParityError, Verification, format_table, parity_failure, verify_runtime

WORK_PREFIX = ".tmp-export-"
# A format failing for one of these is the user's to fix (a missing optional package, an option
# or a model the format cannot express, a file failing its checks): one line in the table and
# in ExportError. Anything else is a bug of ours and keeps its traceback.
USER_FAILURES = (CifarError, ImportError, ConverterError)


class ExportError(ModelError):
    """Some formats could not be exported; ``failures`` maps each to its cause."""

    def __init__(self, failures: dict[str, str], out_dir: Path) -> None:
        self.failures = dict(failures)
        self.out_dir = out_dir
        causes = "; ".join(f"{name} ({cause})" for name, cause in failures.items())
        them = "it" if len(failures) == 1 else "them"
        super().__init__(
            f"export failed for {causes}. No file was written for {them}; "
            f"the other formats are in {out_dir}"
        )


@dataclass
class ExportResult:
    """What an export wrote and how each artefact compared with the Keras model."""

    out_dir: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    verifications: list[Verification] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    metadata_path: Path | None = None
    table: str = ""


class Exporter:
    """Export a trained model to SavedModel, TFLite (4 variants) and ONNX, each verified.

    Every artefact is built under a hidden temporary folder in the export directory, its graph
    checked (no training-only ops; a TFLite file has no TensorFlow-only Flex or custom ops, which
    MediaPipe and the browser cannot run), loaded in its real runtime (TensorFlow, LiteRT, ONNX
    Runtime), compared with the Keras model on the same test images, and only then moved to its
    final name; a failed format leaves nothing and gets a FAILED line in the table.
    TFLite files get MediaPipe image-classifier metadata (:mod:`exports.tflite_metadata`) and
    are also run in MediaPipe's ImageClassifier (the table's ``mediapipe`` column).

    Args:
        model_or_run_dir: a run directory (``best_model.keras``, ``labels.txt``,
            ``config.json``, ``metrics.json``) or an in-memory ``keras.Model``.
        class_names: class names of an in-memory model (default: from ``data``).
        data: images to verify on and to calibrate int8 with (default: the run's data set, or
            ``data_dir`` / ``$CIFAR10_DIR`` / the Keras download).
        data_dir: overrides where the data is read from.
        source_size: stored image size the artefacts take (default: the run's, else 32).
        verify_n: test images every artefact is checked on.
        representative_n: training images that calibrate the int8 model.
        seed: which (stratified) images are drawn.
        gate: enforce each format's agreement gate (False: keep files that load and carry no
            training ops however far they drift, e.g. an int8 file of a model that quantises
            badly; the table and metadata still say how far).
        selective: keep the numerically sensitive parts of the float16 and int8 files in
            float32, chosen on the representative training images (:mod:`exports.precision`);
            False writes the plain converter output (float16 everywhere; int8 with no float
            op).
        log: called with progress lines (None: silent).

    Example:
        >>> result = Exporter("runs/custom_cnn-20250101-120000").export(["tflite-int8", "onnx"])
        >>> print(result.table)  # doctest: +SKIP
    """

    def __init__(
        self,
        model_or_run_dir: keras.Model | str | os.PathLike,
        *,
        class_names: list[str] | None = None,
        data: ImageData | None = None,
        data_dir: str | os.PathLike | None = None,
        source_size: int | None = None,
        verify_n: int = 2000,
        representative_n: int = 300,
        seed: int = 0,
        gate: bool = True,
        selective: bool = True,
        log: Callable[[str], None] | None = print,
    ) -> None:
        if verify_n < 1 or representative_n < 1:
            raise ConfigError("verify_n and representative_n must be at least 1")
        if isinstance(model_or_run_dir, keras.Model):
            self.source: ExportSource = source_from_model(
                model_or_run_dir, class_names, data, data_dir, source_size
            )
        else:
            self.source = source_from_run(model_or_run_dir, data, data_dir)
            if source_size:
                self.source.source_size = int(source_size)
        n_out = int(self.source.model.output_shape[-1])
        if len(self.source.class_names) != n_out:
            raise ModelError(
                f"{len(self.source.class_names)} class names but the model has {n_out} outputs"
            )
        self.verify_n = verify_n
        self.gate = gate
        self.selective = selective
        self.representative_n = representative_n
        self.seed = seed
        self.log = log or (lambda _msg: None)
        self.keras: KerasRuntime | None = None  # the reference, built on first export
        self.representative: np.ndarray | None = None
        self.reference_probs: np.ndarray | None = None
        self.builder: FormatBuilder | None = None
        self._checked: tuple | None = None

    # ------------------------------------------------------------------ public API

    def export(
        self, formats: str | list[str] | None = None, out_dir: str | os.PathLike | None = None
    ) -> ExportResult:
        """Write the requested formats (default: all) into ``out_dir`` (default RUN_DIR/export).

        Raises:
            ExportError: after writing everything that succeeded, if any format failed for a
                reason the user can act on (see ``USER_FAILURES``); other errors propagate.
        """
        chosen = parse_formats(formats)
        out = Path(out_dir) if out_dir else self.source.default_out_dir
        if out is None:
            raise ConfigError("out_dir is required when exporting an in-memory model")
        out.mkdir(parents=True, exist_ok=True)
        images, labels, reference_row = self._reference()
        result = ExportResult(out_dir=out, verifications=[reference_row])
        entries: list[dict] = []
        work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out))
        # Never convert an older saved_model/ found in the folder: it may be another model's.
        self.builder.use_savedmodel(None)
        try:
            for fmt in chosen:
                try:
                    row, entry = self._export_one(fmt, out, work, images, labels)
                except USER_FAILURES as exc:
                    result.failures[fmt.name] = failure_line(exc)
                    self.log(f"{fmt.name}: FAILED: {result.failures[fmt.name]}")
                    continue
                result.artifacts[fmt.name] = out / fmt.filename
                if fmt.name == "savedmodel":
                    self.builder.use_savedmodel(out / fmt.filename)
                result.verifications.append(row)
                entries.append(entry)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        write_labels(out, self.source.class_names)
        result.metadata_path = self._write_metadata(out, entries, reference_row, result.failures)
        result.table = format_table(result.verifications, result.failures)
        self.log(f"verified on {len(images)} test images of {self.source.data.source}:")
        self.log(result.table)
        self.log(f"wrote {len(entries)} artefact(s), {LABELS_FILE} and {METADATA_FILE} to {out}")
        if result.failures:
            raise ExportError(result.failures, out)
        return result

    # ------------------------------------------------------------------ steps

    def _reference(self) -> tuple[np.ndarray, np.ndarray, Verification]:
        """Verification images, their labels, and the Keras model's own row (computed once)."""
        if self._checked is None:
            data = self.source.data
            size = self.source.source_size
            if data.image_shape != (size, size, 3):
                raise DataError(
                    f"data images are {data.image_shape}, but the export takes "
                    f"{size}x{size}x3 (the model's source_size)"
                )
            picked = data.subset(train=self.representative_n, test=self.verify_n, seed=self.seed)
            self.keras = KerasRuntime.from_model(
                self.source.model, size, path=self.source.model_file or ""
            )
            self.representative = picked.x_train
            reference = self.keras.predict(picked.x_test)
            size_bytes = (
                artifact_digest(self.source.model_file)[0] if self.source.model_file else None
            )
            file = self.source.model_file.name if self.source.model_file else "(in memory)"
            row = verify_runtime(
                "keras", self.keras, picked.x_test, picked.y_test, reference, file, size_bytes
            )
            self.reference_probs = reference
            src = self.source
            self.builder = FormatBuilder(
                self.keras.model,
                self.representative,
                self.selective,
                src.class_names,
                src.model_name or src.model.name,
                src.run_name,
                self.log,
            )
            self._checked = (picked.x_test, picked.y_test, row)
        return self._checked

    def _export_one(
        self, fmt: ExportFormat, out: Path, work: Path, images: np.ndarray, labels: np.ndarray
    ) -> tuple[Verification, dict]:
        """Build ``fmt`` under ``work``, verify it, move it to ``out``; return its row and entry."""
        start = time.perf_counter()
        tmp = work / fmt.filename
        try:
            settings = self.builder.build(fmt, tmp, work)
            # Before loading: LiteRT refuses a file with Flex ops with a less helpful message.
            reason = graph_failure(tmp, fmt.runtime)
            if reason:
                raise ParityError(reason)
            runtime = load_runtime(tmp)
            row = verify_runtime(
                fmt.name, runtime, images, labels, self.reference_probs, file=fmt.filename
            )
            reason = parity_failure(row, fmt.min_agreement, fmt.max_abs_diff) if self.gate else ""
            if reason and fmt.max_abs_diff is None:  # reduced precision: maybe a fragile model
                reason += "; to keep the file anyway pass --no-gate (Exporter(gate=False))"
            if reason:
                raise ParityError(reason)
            if "embedded" in settings.get("metadata", {}):
                row.mediapipe_agreement = check_mediapipe(
                    fmt.name,
                    tmp,
                    images,
                    runtime.predict(images),
                    fmt.input_dtype == "uint8",
                    self.log,
                )
            settings.update(_quantization(runtime))
            del runtime  # release the file before it moves
            row.bytes, sha256 = artifact_digest(tmp)
            _move_into_place(tmp, out / fmt.filename, work)
        except BaseException:
            remove_path(tmp)
            raise
        seconds = time.perf_counter() - start
        self.log(
            f"{fmt.name}: ok in {seconds:.1f} s, top-1 agreement {row.agreement:.2%} "
            f"-> {out / fmt.filename}"
        )
        entry = {
            "format": fmt.name,
            "file": fmt.filename,
            "runtime": fmt.runtime,
            "description": fmt.description,
            "input_dtype": fmt.input_dtype,
            "bytes": row.bytes,
            "sha256": sha256,
            **settings,
            **{k: v for k, v in row.to_dict().items() if k not in ("format", "file", "runtime")},
            "export_seconds": round(seconds, 2),
        }
        return row, entry

    def _write_metadata(
        self, out: Path, entries: list[dict], reference: Verification, failures: dict[str, str]
    ) -> Path:
        previous = read_metadata(out)
        if previous:
            previous["artifacts"] = [
                a for a in previous.get("artifacts", []) if (out / str(a.get("file", ""))).exists()
            ]
        data = self.source.data
        verification = {
            "n_images": reference.n_images,
            "split": "test",
            "data": data.source,
            "seed": self.seed,
            "agreement_gate": self.gate,
            "representative_images": int(len(self.representative)),
            "keras": reference.to_dict(),
        }
        metadata = build_metadata(
            self.source.describe(),
            self.source.class_names,
            self.source.source_size,
            verification,
            entries,
            previous,
        )
        if failures:
            metadata["failed"] = dict(failures)
        described = {a["file"] for a in metadata["artifacts"]}
        for fmt in FORMATS.values():
            if fmt.filename not in described and (out / fmt.filename).exists():
                self.log(
                    f"warning: {out / fmt.filename} was not written by this export and is not "
                    "described by metadata.json (another model's?); re-export or remove it"
                )
        return write_metadata(out, metadata)


def _quantization(runtime: Runtime) -> dict:
    """Input/output quantisation of a TFLite file (what the runner applies), else nothing."""
    if not isinstance(runtime, TFLiteRuntime) or not runtime.classifier.input_quant.quantized:
        return {}
    clf = runtime.classifier

    def describe(q) -> dict:
        return {"dtype": str(q.dtype), "scale": q.scale, "zero_point": q.zero_point}

    return {
        "quantization": {"input": describe(clf.input_quant), "output": describe(clf.output_quant)}
    }


def _move_into_place(tmp: Path, final: Path, work: Path) -> None:
    """Rename the verified ``tmp`` to ``final`` (same folder tree, so a rename, not a copy)."""
    if final.is_dir() and not final.is_symlink():
        os.replace(final, work / f"replaced-{final.name}")  # a folder cannot be replaced in one go
    os.replace(tmp, final)
