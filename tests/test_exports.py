"""The Exporter: every format written, verified in its real runtime, atomic on failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import CIFAR_DIR, HAVE_CIFAR, requires_cifar

from cifar import cli
from cifar.config import load_config
from cifar.errors import ConfigError, ModelError
from cifar.inference.runtimes import load_runtime
from exports import Exporter
from exports.exporter import WORK_PREFIX, ExportError
from exports.formats import FORMATS, parse_formats
from exports.graph_checks import runtime_only_ops, training_ops
from exports.metadata import artifact_digest
from exports.tflite_graph import custom_ops
from exports.to_onnx import OPSET

# Largest probability difference from Keras on the check batch, per format (measured about 10x
# lower on the 3-epoch CNN: float32 ~2e-7, float16 ~2e-4, dynamic ~3e-3, int8 ~3e-2).
TOLERANCE = {
    "savedmodel": 1e-6,
    "tflite": 1e-5,
    "onnx": 1e-5,
    "tflite-fp16": 2e-3,
    "tflite-dynamic": 3e-2,
    "tflite-int8": 0.15,
}
VERIFY_N = 200


def make_run_dir(root: Path, model: keras.Model, data, name: str = "cnn_test") -> Path:
    """A run directory as the Trainer writes it, from an already trained model."""
    run = root / f"{name}-20250101-000000"
    run.mkdir(parents=True)
    model.save(run / "best_model.keras")
    (run / "labels.txt").write_text("\n".join(data.class_names) + "\n")
    data_dir = str(CIFAR_DIR) if HAVE_CIFAR else None
    config = load_config(
        {
            "name": name,
            "seed": 0,
            "data": {"data_dir": data_dir, "train_subset": 1000, "test_subset": 300},
            "model": {"name": "custom_cnn", "input_size": 32},
        }
    )
    (run / "config.json").write_text(json.dumps(config.to_dict(), default=str))
    probs = model.predict(data.x_test.astype("float32"), verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == data.y_test))
    metrics = {
        "name": name,
        "run_dir": str(run),
        "model": {"name": "custom_cnn", "input_size": 32, "source_size": 32},
        "data": {"class_names": data.class_names, "source": data.source},
        "test": {"accuracy": accuracy},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, trained_cnn) -> Path:
    model, data = trained_cnn
    return make_run_dir(tmp_path_factory.mktemp("runs"), model, data)


@pytest.fixture(scope="module")
def exported(run_dir, trained_cnn):
    """Every format exported from the fabricated run (about 10 s)."""
    _, data = trained_cnn
    exporter = Exporter(run_dir, data=data, verify_n=VERIFY_N, representative_n=100, log=None)
    return exporter, exporter.export()


def test_every_format_is_written_next_to_labels_and_metadata(exported, run_dir, trained_cnn):
    _, result = exported
    out = run_dir / "export"
    assert result.out_dir == out and not result.failures
    assert set(result.artifacts) == set(FORMATS)
    for fmt in FORMATS.values():
        assert (out / fmt.filename).exists(), fmt.name
    assert not list(out.glob(f"{WORK_PREFIX}*")), "temporary folder left behind"
    assert (out / "labels.txt").read_text().split() == trained_cnn[1].class_names

    meta = json.loads((out / "metadata.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert meta["class_names"] == trained_cnn[1].class_names
    assert meta["input"]["shape"] == [None, 32, 32, 3] and meta["input"]["range"] == [0, 255]
    assert meta["output"]["shape"] == [None, 10]
    assert meta["source"]["run"] == "cnn_test"
    assert meta["source"]["keras_test_accuracy"] == metrics["test"]["accuracy"]
    assert meta["verification"]["n_images"] == VERIFY_N
    entries = {a["format"]: a for a in meta["artifacts"]}
    assert set(entries) == set(FORMATS)
    for name, entry in entries.items():
        size, sha = artifact_digest(out / entry["file"])
        assert (entry["bytes"], entry["sha256"]) == (size, sha), name
        assert 0 <= entry["accuracy"] <= 1 and entry["agreement"] >= FORMATS[name].min_agreement
    assert entries["onnx"]["opset"] == OPSET
    assert entries["tflite-int8"]["quantization"]["input"]["dtype"] == "uint8"
    assert entries["tflite-int8"]["bytes"] < 0.35 * entries["tflite"]["bytes"]
    assert "agree" in result.table and "tflite-int8" in result.table


@pytest.mark.parametrize("name", list(FORMATS))
def test_artifact_agrees_with_keras_in_its_runtime(exported, trained_cnn, name):
    exporter, result = exported
    _, data = trained_cnn
    images = data.x_test[:64]
    reference = exporter.keras.predict(images)
    runtime = load_runtime(result.artifacts[name])
    assert runtime.kind == FORMATS[name].runtime and runtime.input_size == 32
    probs = runtime.predict(images)
    assert probs.shape == (64, 10) and probs.dtype == np.float32
    assert np.abs(probs - reference).max() <= TOLERANCE[name]
    agreement = np.mean(probs.argmax(1) == reference.argmax(1))
    assert agreement >= (0.85 if name == "tflite-int8" else 0.95)


def test_int8_model_takes_uint8_and_its_outputs_are_dequantised(exported, trained_cnn):
    from ai_edge_litert.interpreter import Interpreter

    _, result = exported
    images = trained_cnn[1].x_test[:8]
    interpreter = Interpreter(model_path=str(result.artifacts["tflite-int8"]))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and out["dtype"] == np.uint8
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    assert in_scale > 0 and out_scale > 0
    # By hand: quantise, run, dequantise, exactly as the runner must.
    interpreter.resize_tensor_input(inp["index"], [8, 32, 32, 3])
    interpreter.allocate_tensors()
    q_in = np.clip(np.round(images / in_scale) + in_zero, 0, 255).astype(np.uint8)
    interpreter.set_tensor(inp["index"], q_in)
    interpreter.invoke()
    raw = interpreter.get_tensor(out["index"])
    by_hand = (raw.astype(np.float32) - out_zero) * out_scale
    probs = load_runtime(result.artifacts["tflite-int8"]).predict(images)
    np.testing.assert_allclose(probs, by_hand, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05)  # probabilities, not 0..255
    assert raw.max() > 1  # the raw scores really are quantised


def test_savedmodel_signatures_take_float_and_uint8_with_any_batch(exported, trained_cnn):
    import tensorflow as tf

    _, result = exported
    loaded = tf.saved_model.load(str(result.artifacts["savedmodel"]))
    images = trained_cnn[1].x_test[:5]
    as_float = loaded.signatures["serving_default"](image=tf.constant(images, tf.float32))
    as_uint8 = loaded.signatures["serving_uint8"](image=tf.constant(images, tf.uint8))
    assert as_float["probabilities"].shape == (5, 10)
    np.testing.assert_allclose(as_float["probabilities"], as_uint8["probabilities"], atol=1e-6)
    one = loaded.signatures["serving_default"](image=tf.constant(images[:1], tf.float32))
    assert one["probabilities"].shape == (1, 10)


def test_onnx_has_a_named_dynamic_batch_and_the_recorded_opset(exported):
    import onnx

    _, result = exported
    proto = onnx.load(str(result.artifacts["onnx"]))
    assert proto.graph.input[0].name == "image"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.graph.output[0].name == "probabilities"
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
    runtime = load_runtime(result.artifacts["onnx"])
    assert runtime.predict(np.zeros((7, 32, 32, 3), np.uint8)).shape == (7, 10)


def test_exported_graphs_have_no_training_only_ops(exported, tmp_path):
    _, result = exported
    assert training_ops(result.artifacts["savedmodel"], "savedmodel") == []
    assert training_ops(result.artifacts["onnx"], "onnx") == []
    for name in ("tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8"):
        assert runtime_only_ops(result.artifacts[name], "tflite") == [], name
    # The check itself can fail: a graph with dropout forced on holds random ops.
    from exports.to_savedmodel import write_savedmodel

    write_savedmodel(_dropout_always_on(), tmp_path / "sm")
    assert any("Random" in op for op in training_ops(tmp_path / "sm", "savedmodel"))


class _AlwaysDropout(keras.layers.Dropout):
    """A buggy custom layer: drops units even at inference (``training=False`` is ignored)."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def _dropout_always_on() -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.Dense(32, activation="relu")(x)
    x = _AlwaysDropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


class _Determinant(keras.layers.Layer):
    """Scales the image by det(3x3 corner + I): MatrixDeterminant has no LiteRT builtin."""

    def call(self, x):
        corner = keras.ops.reshape(x[:, :3, :3, 0], (-1, 3, 3)) / 255 + keras.ops.eye(3)
        return x * keras.ops.reshape(keras.ops.linalg.det(corner), (-1, 1, 1, 1))


def test_unconvertible_op_fails_that_format_only_and_leaves_no_file(trained_cnn, tmp_path):
    _, data = trained_cnn
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(_Determinant()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    exporter = Exporter(model, data=data, verify_n=32, representative_n=8, log=None)
    with pytest.raises(ExportError) as info:
        exporter.export("tflite,savedmodel", tmp_path)
    assert list(info.value.failures) == ["tflite"]
    message = str(info.value)
    assert "tflite" in message and "MatrixDeterminant" in message and "ConverterError" in message
    assert not (tmp_path / "model_float32.tflite").exists()
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert not list(tmp_path.glob(f"{WORK_PREFIX}*"))
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert [a["format"] for a in meta["artifacts"]] == ["savedmodel"]
    assert "MatrixDeterminant" in meta["failed"]["tflite"]


def _with_select_tf_ops(saved_model, path, mode, *_args):
    """What Keras's ``model.export(format="litert")`` does: Flex ops allowed."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    path.write_bytes(converter.convert())
    return {"mode": mode}


def test_tflite_file_with_tensorflow_only_ops_fails_verification(
    trained_cnn, tmp_path, monkeypatch
):
    """A Flex op runs in TensorFlow's LiteRT build only, not in MediaPipe or the browser."""
    from exports import to_tflite

    monkeypatch.setattr(to_tflite, "write_tflite", _with_select_tf_ops)
    _, data = trained_cnn
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(_Determinant()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    lines = []
    exporter = Exporter(model, data=data, verify_n=16, representative_n=8, log=lines.append)
    with pytest.raises(ExportError) as info:
        exporter.export("tflite", tmp_path)
    cause = info.value.failures["tflite"]
    assert "TensorFlow-only (Flex/custom) ops FlexMatrixDeterminant" in cause
    (table,) = [line for line in lines if line.startswith("format ")]
    assert f"tflite          FAILED: {cause}" in table.splitlines()
    assert not (tmp_path / "model_float32.tflite").exists()
    assert not list(tmp_path.glob(f"{WORK_PREFIX}*"))


def test_a_bug_keeps_its_traceback_but_a_missing_package_is_one_line(
    trained_cnn, tmp_path, monkeypatch
):
    from exports import to_onnx

    model, data = trained_cnn
    exporter = Exporter(model, data=data, verify_n=16, representative_n=8, log=None)

    def buggy(*_args, **_kwargs):
        raise TypeError("write_onnx() got an unexpected keyword argument 'opset_version'")

    monkeypatch.setattr(to_onnx, "write_onnx", buggy)
    with pytest.raises(TypeError, match="opset_version"):
        exporter.export("onnx", tmp_path)
    assert not list(tmp_path.glob(f"{WORK_PREFIX}*"))

    def missing(*_args, **_kwargs):
        raise ModuleNotFoundError("No module named 'tf2onnx'")

    monkeypatch.setattr(to_onnx, "write_onnx", missing)
    with pytest.raises(ExportError) as info:
        exporter.export("onnx", tmp_path)
    assert info.value.failures == {"onnx": "ModuleNotFoundError: No module named 'tf2onnx'"}
    assert "No module named 'tf2onnx'" in str(info.value)


def test_artifact_failing_its_check_is_written_then_discarded(trained_cnn, tmp_path):
    """A converted file that loads but does not pass verification never gets its final name."""
    _, data = trained_cnn
    keras.utils.set_random_seed(0)
    exporter = Exporter(_dropout_always_on(), data=data, verify_n=64, representative_n=8, log=None)
    with pytest.raises(ExportError) as info:
        exporter.export(["onnx", "savedmodel"], tmp_path)
    failures = info.value.failures
    assert "savedmodel" in failures
    assert "agreement" in failures["savedmodel"] or "training-only" in failures["savedmodel"]
    assert not (tmp_path / "saved_model").exists()
    assert not list(tmp_path.glob(f"{WORK_PREFIX}*"))


def test_format_names_are_validated():
    assert [f.name for f in parse_formats("tflite-int8, savedmodel")] == [
        "savedmodel",
        "tflite-int8",
    ]
    assert len(parse_formats("all")) == len(FORMATS)
    assert parse_formats(["tflite-float16"])[0].name == "tflite-fp16"
    with pytest.raises(ConfigError, match="tflite-int4"):
        parse_formats("onnx,tflite-int4")


def test_bad_sources_give_clear_errors(tmp_path, trained_cnn):
    with pytest.raises(ModelError, match="does not exist"):
        Exporter(tmp_path / "missing")
    with pytest.raises(ModelError, match="best_model.keras"):
        Exporter(tmp_path)
    model, _ = trained_cnn
    with pytest.raises(ModelError, match="3 class names"):
        Exporter(model, class_names=["a", "b", "c"])
    with pytest.raises(ConfigError, match="out_dir"):
        Exporter(model, data=trained_cnn[1], verify_n=8, representative_n=4, log=None).export()


def test_cli_rejects_bad_input_without_traceback(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path), "--formats", "pdf"]) == 2
    assert "unknown export format" in capsys.readouterr().err


@requires_cifar
def test_cli_exports_a_run_reading_its_data_from_config(run_dir, tmp_path, capsys):
    out = tmp_path / "cli_export"
    code = cli.main(
        ["export", str(run_dir), "--formats", "tflite-int8", "--out-dir", str(out),
         "--verify-n", "100", "--representative-n", "50"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "tflite-int8" in printed and "agree" in printed
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["verification"]["data"] == os.path.relpath(CIFAR_DIR.resolve())
    assert meta["verification"]["n_images"] == 100
    assert (out / "model_int8.tflite").is_file() and not (out / "saved_model").exists()


@pytest.mark.slow
def test_mobilenet_resizes_inside_every_exported_file(small_data, tmp_path):
    """A 64x64 MobileNetV2 exports as a 32x32-input file with the resize baked in (~20 s)."""
    from cifar.models import create_model

    keras.utils.set_random_seed(0)
    model = create_model("mobilenet_v2", input_size=64, weights=None)
    exporter = Exporter(model, data=small_data, verify_n=32, representative_n=8, log=None)
    result = exporter.export("tflite,onnx", tmp_path)
    images = small_data.x_test[:16]
    reference = exporter.keras.predict(images)
    for name in ("tflite", "onnx"):
        runtime = load_runtime(result.artifacts[name])
        assert runtime.input_size == 32
        np.testing.assert_allclose(runtime.predict(images), reference, atol=1e-4)
    # Builtin ops only: a Flex (Select TF) op would not run in MediaPipe or in the browser.
    assert custom_ops(result.artifacts["tflite"].read_bytes()) == []
    import onnx

    ops = {n.op_type for n in onnx.load(str(result.artifacts["onnx"])).graph.node}
    assert "Resize" in ops


def test_metadata_names_the_run_by_a_relative_path(tmp_path, monkeypatch):
    """metadata.json ships beside the model: an absolute run folder is recorded relatively."""
    from exports.source import source_from_model

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    run = tmp_path / "runs" / "cnn-20260101-000000"
    run.mkdir(parents=True)
    (run / "best_model.keras").write_bytes(b"weights")
    source = source_from_model(model, [f"c{i}" for i in range(10)])
    source.run_dir, source.model_file = run.resolve(), (run / "best_model.keras").resolve()
    monkeypatch.chdir(tmp_path)
    described = source.describe()
    assert described["run_dir"] == "runs/cnn-20260101-000000"
    assert described["model_file"] == "runs/cnn-20260101-000000/best_model.keras"
