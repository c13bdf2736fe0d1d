"""Exported TFLite files carry metadata and run as they are in MediaPipe Tasks ImageClassifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, SHARED

from cifar.inference.tflite_runner import TFLiteClassifier, load_images
from exports.mediapipe_check import (
    MEDIAPIPE_AGREEMENT,
    MEDIAPIPE_AGREEMENT_INT8,
    MediaPipeClassifier,
    top1_agreement,
)
from exports.mediapipe_compat import load_metadata_writer, minimum_parser_version
from exports.tflite_graph import custom_ops
from exports.tflite_metadata import embedded_labels, packed_files

TFLITE = ["tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8"]
# Required top-1 agreement of MediaPipe with the LiteRT runner on the same file (issue #14).
MIN_AGREEMENT = {
    name: MEDIAPIPE_AGREEMENT_INT8 if name == "tflite-int8" else MEDIAPIPE_AGREEMENT
    for name in TFLITE
}
SHIPPED = ROOT / "models" / "model_float16.tflite"
PHOTO = SHARED / "data" / "cats_and_dogs_filtered" / "validation" / "cats" / "cat.2000.jpg"


def _metadata_json(path) -> dict:
    load_metadata_writer()  # the displayer lives in the same MediaPipe module
    from mediapipe.tasks.python.metadata import metadata

    return json.loads(metadata.MetadataDisplayer.with_model_file(str(path)).get_metadata_json())


def test_parser_version_follows_mediapipe_rules():
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    writer = load_metadata_writer()

    def version(edit) -> str:
        meta = fb.ModelMetadataT()
        graph = fb.SubGraphMetadataT()
        graph.inputTensorMetadata = [fb.TensorMetadataT()]
        meta.subgraphMetadata = [graph]
        edit(meta, graph)
        builder = writer.flatbuffers.Builder(0)
        builder.Finish(meta.Pack(builder), b"M001")
        return minimum_parser_version(bytes(builder.Output()))

    def vocabulary(meta, graph):
        item = fb.AssociatedFileT()
        item.type = fb.AssociatedFileType.VOCABULARY
        graph.inputTensorMetadata[0].associatedFiles = [item]

    def groups(meta, graph):
        graph.outputTensorGroups = [fb.TensorGroupT()]

    def custom(meta, graph):
        graph.customMetadata = [fb.CustomMetadataT()]

    assert version(lambda m, g: None) == "1.0.0"
    assert version(vocabulary) == "1.0.1"
    assert version(groups) == "1.2.0"
    assert version(custom) == "1.5.0"
    with pytest.raises(ValueError, match="identifier"):
        minimum_parser_version(b"\0" * 64)


@pytest.fixture(scope="module")
def tflite_export(trained_cnn, tmp_path_factory):
    """The 3-epoch CNN's four TFLite files, with metadata, verified on 300 test images."""
    from exports import Exporter

    model, data = trained_cnn
    out = tmp_path_factory.mktemp("mp_export")
    lines = []
    result = Exporter(
        model, class_names=data.class_names, data=data, verify_n=300, representative_n=100,
        log=lines.append,
    ).export(TFLITE, out_dir=out)  # fmt: skip
    return result, data, "\n".join(lines)


@pytest.mark.parametrize("name", TFLITE)
def test_every_tflite_file_runs_in_mediapipe_like_litert(tflite_export, name):
    result, data, _ = tflite_export
    path = result.artifacts[name]
    images = data.x_test[:200]
    probs = TFLiteClassifier(path).predict(images)
    with MediaPipeClassifier(path, max_results=3) as clf:
        names, indices, scores = clf.top_k(images)
    assert top1_agreement(indices, probs) >= MIN_AGREEMENT[name]
    # Names come from the packed labels; scores are the file's own (dequantised) probabilities.
    assert names == [[data.class_names[i] for i in row] for row in indices]
    litert = np.take_along_axis(probs, indices, axis=1)
    np.testing.assert_allclose(scores, litert, atol=1e-5 if name != "tflite-int8" else 1e-6)
    # ... and they are LiteRT's three largest, in order.
    best3 = -np.sort(-probs, axis=1)[:, :3]
    assert np.isclose(scores, best3, atol=1e-5).all(axis=1).mean() >= MIN_AGREEMENT[name]


@pytest.mark.parametrize("name", TFLITE)
def test_metadata_says_what_the_graph_expects(tflite_export, name):
    result, data, _ = tflite_export
    path = result.artifacts[name]
    assert embedded_labels(path) == data.class_names
    meta = _metadata_json(path)
    assert meta["min_parser_version"] == "1.0.0"
    graph = meta["subgraph_metadata"][0]
    (image,) = graph["input_tensor_metadata"]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    (norm,) = image["process_units"]
    assert norm["options"] == {"mean": [0.0], "std": [1.0]}  # raw pixels: scaled in the graph
    assert "32x32" in image["description"]
    assert custom_ops(path.read_bytes()) == []


def test_verification_table_and_metadata_json_have_the_mediapipe_column(tflite_export):
    result, _, log = tflite_export
    assert result.table.splitlines()[0].split()[-1] == "mediapipe"
    for row in result.verifications[1:]:
        assert row.mediapipe_agreement is not None and row.mediapipe_agreement >= 0.97
    entries = json.loads(result.metadata_path.read_text())["artifacts"]
    assert {e["format"] for e in entries} == set(TFLITE)
    for entry in entries:
        assert entry["mediapipe_agreement"] >= 0.97
        assert entry["metadata"]["normalization"] == {"mean": [0.0], "std": [1.0]}
    assert "skipped" not in log


def test_metadata_goes_on_the_compact_file(tflite_export):
    """MediaPipe's populator re-packs the flatbuffer; the exporter compacts it again."""
    from exports.tflite_graph import compact

    result, data, _ = tflite_export
    data_bytes = result.artifacts["tflite-int8"].read_bytes()
    packed = packed_files(data_bytes)
    assert set(packed) == {"labels.txt"}
    flatbuffer = compact(data_bytes)
    tail = len(data_bytes) - len(flatbuffer)
    assert data_bytes[: len(flatbuffer)] == flatbuffer  # already compact: nothing to share
    assert 0 < tail < 1024  # just the zip with labels.txt
    writer = load_metadata_writer().MetadataWriter.create(bytearray(flatbuffer))
    writer.add_image_input([0.0], [1.0]).add_classification_output(
        load_metadata_writer().Labels().add(data.class_names)
    )
    raw, _ = writer.populate()  # what the populator alone would ship
    writer._temp_folder.cleanup()
    assert len(raw) > len(data_bytes)


def test_metadata_failure_keeps_the_plain_file(trained_cnn, tmp_path, monkeypatch):
    from exports import Exporter, tflite_metadata

    def broken(*_args, **_kwargs):
        raise ImportError("No module named 'mediapipe.tasks.cc'")

    monkeypatch.setattr(tflite_metadata, "add_classifier_metadata", broken)
    model, data = trained_cnn
    lines = []
    result = Exporter(
        model, class_names=data.class_names, data=data, verify_n=50, log=lines.append
    ).export(["tflite"], out_dir=tmp_path)
    path = result.artifacts["tflite"]
    assert embedded_labels(path) is None and TFLiteClassifier(path).num_classes == 10
    assert any("metadata skipped (ImportError: No module named" in line for line in lines)
    (entry,) = json.loads(result.metadata_path.read_text())["artifacts"]
    assert "skipped" in entry["metadata"] and "mediapipe_agreement" not in entry


def test_export_warns_when_mediapipe_disagrees(trained_cnn, tmp_path, monkeypatch):
    from exports import Exporter, mediapipe_check

    monkeypatch.setattr(mediapipe_check, "mediapipe_agreement", lambda *_args: 0.5)
    model, data = trained_cnn
    lines = []
    result = Exporter(
        model, class_names=data.class_names, data=data, verify_n=50, log=lines.append
    ).export(["tflite"], out_dir=tmp_path)
    assert result.verifications[1].mediapipe_agreement == 0.5
    assert any("MediaPipe's top-1 agrees with LiteRT on only 50.00%" in line for line in lines)


def test_other_input_size_and_classes(tmp_path):
    """An image-folder model: labels are its class folders, the size its input (64x64, 3)."""
    import keras

    from cifar.data.folder import load_image_folder
    from cifar.imageio import encode_png
    from exports import Exporter

    rng = np.random.default_rng(0)
    colours = {
        "blue_things": [40, 40, 200],
        "green_things": [40, 200, 40],
        "red_things": [200, 40, 40],
    }
    for name, colour in colours.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(30):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (80, 72, 3)), 0, 255)
            (tmp_path / "photos" / name / f"{i}.png").write_bytes(
                encode_png(pixels.astype(np.uint8))
            )
    data = load_image_folder(tmp_path / "photos", image_size=64)
    assert data.class_names == list(colours) and data.image_shape == (64, 64, 3)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(h))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train.astype("float32"), data.y_train, epochs=30, verbose=0)
    result = Exporter(model, data=data, verify_n=18, representative_n=30, log=None).export(
        ["tflite", "tflite-int8"], out_dir=tmp_path / "export"
    )
    for path in result.artifacts.values():
        assert embedded_labels(path) == data.class_names
        assert TFLiteClassifier(path).input_size == 64
        assert "64x64" in _metadata_json(path)["subgraph_metadata"][0][
            "input_tensor_metadata"][0]["description"]  # fmt: skip
        with MediaPipeClassifier(path) as clf:
            top = [clf.classify(image)[0][1] for image in data.x_test]
        assert top == [data.class_names[label] for label in data.y_test]


def test_shipped_model_classifies_a_photo_with_cifar10_names():
    """The acceptance check: models/ loads in MediaPipe as it is, on a fresh clone."""
    from mediapipe.tasks.python import vision

    from cifar.data import CIFAR10_CLASSES

    assert embedded_labels(SHIPPED) == (ROOT / "models" / "labels.txt").read_text().split()
    assert custom_ops(SHIPPED.read_bytes()) == []  # a trained MobileNetV2: builtin only
    import mediapipe as mp

    classifier = vision.ImageClassifier.create_from_model_path(str(SHIPPED))
    try:
        if PHOTO.is_file():
            image = mp.Image.create_from_file(str(PHOTO))
        else:  # no ../shared: a synthetic 200x150 "photo" still has to get named classes
            rng = np.random.default_rng(0)
            image = mp.Image(
                image_format=mp.ImageFormat.SRGB,
                data=rng.integers(0, 256, (150, 200, 3), dtype=np.uint8),
            )
        (head,) = classifier.classify(image).classifications
    finally:
        classifier.close()
    names = [c.category_name for c in head.categories]
    assert len(names) == 10 and set(names) == set(CIFAR10_CLASSES)
    scores = [c.score for c in head.categories]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-3
    if PHOTO.is_file():
        assert names[0] in ("cat", "dog")  # a cat photo squeezed to 32x32
        runner = TFLiteClassifier(SHIPPED).predict(load_images([PHOTO], 32))[0]
        assert CIFAR10_CLASSES[int(runner.argmax())] in names[:2]


def test_shipped_metadata_json_describes_the_shipped_file():
    from exports.metadata import artifact_digest

    meta = json.loads((ROOT / "models" / "metadata.json").read_text())
    (entry,) = [a for a in meta["artifacts"] if a["file"] == SHIPPED.name]
    assert (entry["bytes"], entry["sha256"]) == artifact_digest(SHIPPED)
    assert entry["metadata"]["labels"] == "labels.txt, packed in the file"


def test_custom_ops_spots_a_flex_op():
    """What Keras's model.export(format="litert") allows by default and MediaPipe cannot run."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 3, 3], tf.float32)])
    def determinant(x):
        return tf.linalg.det(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [determinant.get_concrete_function()], determinant
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    assert custom_ops(converter.convert()) == ["FlexMatrixDeterminant"]
