"""TFLite model metadata for MediaPipe Tasks ``ImageClassifier`` (and any metadata reader).

MediaPipe refuses a float model without ``NormalizationOptions`` and names no category without a
label file, so every exported ``.tflite`` file carries, written with MediaPipe's own metadata
writer: a name and description, the input as an RGB image with its normalisation, and the output
as category scores with ``labels.txt`` packed in the file.

The normalisation is mean 0, std 1: the exported graph takes raw 0..255 pixels and scales them
itself (MobileNetV2 to [-1, 1], the CNN to [0, 1]), so the usual 127.5 / 127.5 would normalise
twice. The image size is the input tensor's own shape (the metadata schema has no size field);
the input description states it.

MediaPipe's populator re-serialises the whole flatbuffer without sharing identical vectors, so
the result is compacted again (:func:`exports.tflite_graph.compact`) and the packed files
re-appended the way the populator appends them (a zip archive after the flatbuffer).
"""

from __future__ import annotations

import gc
import io
import zipfile
from pathlib import Path

NORM_MEAN = [0.0]
NORM_STD = [1.0]
LABELS_NAME = "labels.txt"


def describe_input(size: int) -> str:
    """The input tensor's description: what a caller passes."""
    return (
        f"RGB image, {size}x{size} pixels, raw values 0..255 (no scaling: the model resizes and "
        "scales inside; other sizes are resized to this one by the caller or by MediaPipe)"
    )


def describe_model(model_name: str, class_names: list[str], run_name: str | None = None) -> str:
    """The model description written into the metadata."""
    listed = ", ".join(class_names[:10]) + (", ..." if len(class_names) > 10 else "")
    run = f" from run {run_name}" if run_name else ""
    return (
        f"{model_name}{run}: classifies an RGB image into {len(class_names)} classes "
        f"({listed}); outputs softmax probabilities."
    )


def embed_metadata(
    path: Path, class_names: list[str], model_name: str, run_name: str | None = None
) -> dict:
    """Rewrite the ``.tflite`` file ``path`` with metadata; returns what ``metadata.json`` records.

    Raises:
        ImportError, ValueError: as :func:`add_classifier_metadata` (the file is then unchanged).
    """
    description = describe_model(model_name, class_names, run_name)
    model = add_classifier_metadata(path.read_bytes(), class_names, model_name, description)
    path.write_bytes(model)
    size, _ = _image_classifier_shape(model)
    return {
        "embedded": "TFLite metadata (MediaPipe metadata writer)",
        "name": model_name,
        "description": description,
        "normalization": {"mean": NORM_MEAN, "std": NORM_STD},
        "labels": f"{LABELS_NAME}, packed in the file",
        "input": f"RGB image {size}x{size}",
    }


def add_classifier_metadata(
    model: bytes, class_names: list[str], name: str, description: str
) -> bytes:
    """``model`` with image-classifier metadata and ``class_names`` packed as ``labels.txt``.

    Raises:
        ImportError: MediaPipe's writer cannot be imported (see :mod:`exports.mediapipe_compat`).
        ValueError: the model is not a one-image-input, one-score-output classifier, or the
            labels do not match its outputs.
    """
    from exports.mediapipe_compat import load_metadata_writer
    from exports.tflite_graph import compact

    writer_module = load_metadata_writer()
    size, n_out = _image_classifier_shape(model)
    if len(class_names) != n_out:
        raise ValueError(f"{len(class_names)} class names but the model has {n_out} outputs")
    writer = writer_module.MetadataWriter.create(bytearray(model))
    try:
        writer.add_general_info(name, description)
        writer.add_image_input(NORM_MEAN, NORM_STD, name="image", description=describe_input(size))
        writer.add_classification_output(
            writer_module.Labels().add(list(class_names)),
            name="probabilities",
            description="Softmax probability of each class, in labels.txt order.",
        )
        populated, _json = writer.populate()
    finally:
        # The writer sits in a reference cycle; collected at interpreter exit, its __del__ fails
        # (os is already gone) and prints a traceback. Clean up and collect it now instead.
        writer._temp_folder.cleanup()
        del writer
        gc.collect()
    packed = packed_files(populated)
    return append_files(compact(bytes(populated)), packed)


def packed_files(model: bytes) -> dict[str, bytes]:
    """Files packed after the flatbuffer (MediaPipe's associated files), by name."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except zipfile.BadZipFile:
        return {}


def embedded_labels(path: str | Path) -> list[str] | None:
    """The class names packed in a ``.tflite`` file's metadata, or None when it has none."""
    text = packed_files(Path(path).read_bytes()).get(LABELS_NAME)
    if text is None:
        return None
    return [line.strip() for line in text.decode().splitlines() if line.strip()]


def append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """``model`` followed by a zip archive of ``files`` (how MediaPipe packs associated files)."""
    if not files:
        return model
    buffer = io.BytesIO(model)
    buffer.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buffer, "a") as archive:
        for filename, data in files.items():
            archive.writestr(filename, data)
    return buffer.getvalue()


def _image_classifier_shape(model: bytes) -> tuple[int, int]:
    """(input size, number of classes) of a one-input N x S x S x 3, one-output N x C model."""
    from mediapipe.tasks.metadata import schema_py_generated as schema

    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    inputs = [
        list(graph.Tensors(graph.Inputs(i)).ShapeAsNumpy()) for i in range(graph.InputsLength())
    ]
    outputs = [
        list(graph.Tensors(graph.Outputs(i)).ShapeAsNumpy()) for i in range(graph.OutputsLength())
    ]
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]) != 4 or inputs[0][3] != 3:
        raise ValueError(
            f"not an image classifier: inputs {inputs}, outputs {outputs} "
            "(expected one N x S x S x 3 input and one N x C output)"
        )
    return int(inputs[0][1]), int(outputs[0][-1])
