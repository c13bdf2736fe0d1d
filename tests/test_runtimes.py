"""cifar.inference.runtimes: every model file we write loads by path, predicts the same."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cifar.errors import DataError, ModelError
from cifar.inference.keras_model import build_inference_model
from cifar.inference.runtimes import (
    KerasRuntime,
    OnnxRuntime,
    SavedModelRuntime,
    TFLiteRuntime,
    load_runtime,
    runtime_kind,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained_cnn) -> dict[str, Path]:
    """The trained CNN as .keras, SavedModel, float32 and int8 .tflite, and .onnx (~5 s)."""
    from exports.to_onnx import write_onnx
    from exports.to_savedmodel import write_savedmodel
    from exports.to_tflite import write_tflite

    model, data = trained_cnn
    root = tmp_path_factory.mktemp("runtimes")
    inference = build_inference_model(model, 32)
    paths = {
        "keras": root / "best_model.keras",
        "savedmodel": root / "saved_model",
        "tflite": root / "model_float32.tflite",
        "tflite-int8": root / "model_int8.tflite",
        "onnx": root / "model.onnx",
    }
    model.save(paths["keras"])
    write_savedmodel(inference, paths["savedmodel"])
    write_tflite(paths["savedmodel"], paths["tflite"], "float32")
    write_tflite(paths["savedmodel"], paths["tflite-int8"], "int8", data.x_train[:64])
    write_onnx(inference, paths["onnx"])
    return paths


@pytest.fixture(scope="module")
def reference(trained_cnn) -> tuple[np.ndarray, np.ndarray]:
    """Test images and the Keras model's own probabilities for them."""
    model, data = trained_cnn
    images = data.x_test[:50]
    return images, model.predict(images.astype(np.float32), verbose=0)


EXPECTED = {
    "keras": (KerasRuntime, 1e-6),
    "savedmodel": (SavedModelRuntime, 1e-6),
    "tflite": (TFLiteRuntime, 1e-5),
    "tflite-int8": (TFLiteRuntime, 0.15),
    "onnx": (OnnxRuntime, 1e-5),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_load_runtime_picks_the_backend_and_matches_keras(files, reference, name):
    cls, tolerance = EXPECTED[name]
    runtime = load_runtime(files[name])
    assert type(runtime) is cls and runtime.kind == runtime_kind(files[name])
    assert runtime.input_size == 32 and runtime.num_classes == 10
    images, expected = reference
    probs = runtime.predict(images)
    assert probs.dtype == np.float32 and probs.shape == (50, 10)
    assert np.abs(probs - expected).max() <= tolerance
    # uint8 and float32 pixels mean the same thing; batching does not change results.
    np.testing.assert_allclose(runtime.predict(images.astype(np.float32)), probs, atol=1e-6)
    np.testing.assert_allclose(runtime.predict(images, batch_size=7), probs, atol=1e-6)


def test_keras_runtime_resizes_stored_images_to_the_model_input(tmp_path, small_data):
    import keras
    import tensorflow as tf

    from cifar.models import create_model

    keras.utils.set_random_seed(1)
    model = create_model("custom_cnn", input_size=48)
    model.save(tmp_path / "m48.keras")
    # Outside a run a .keras file takes its own input size; in a run, the run's stored size.
    assert load_runtime(tmp_path / "m48.keras").input_size == 48
    (tmp_path / "metrics.json").write_text(json.dumps({"model": {"source_size": 32}}))
    runtime = load_runtime(tmp_path / "m48.keras")
    assert runtime.input_size == 32
    images = small_data.x_test[:6]
    resized = tf.image.resize(images.astype(np.float32), (48, 48), method="bilinear")
    np.testing.assert_allclose(
        runtime.predict(images), model(resized, training=False).numpy(), atol=1e-6
    )


def test_int8_runtime_reports_uint8_input(files):
    assert load_runtime(files["tflite-int8"]).input_dtype == np.uint8
    assert load_runtime(files["tflite"]).input_dtype == np.float32


def test_empty_batch_and_wrong_shapes(files):
    runtime = load_runtime(files["onnx"])
    assert runtime.predict(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 10)
    with pytest.raises(DataError, match="resize images to 32x32"):
        runtime.predict(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(DataError, match="N x 32 x 32 x 3"):
        runtime.predict(np.zeros((32, 32, 3), np.uint8))


def test_bad_paths_raise_model_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_runtime(tmp_path / "missing.tflite")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="unknown model file type"):
        load_runtime(tmp_path / "notes.txt")
    with pytest.raises(ModelError, match="not a SavedModel"):
        load_runtime(tmp_path)
    for name in ("bad.tflite", "bad.onnx", "bad.keras"):
        (tmp_path / name).write_bytes(b"\x00not a model")
        with pytest.raises(ModelError, match="not a loadable"):
            load_runtime(tmp_path / name)


def test_tflite_and_onnx_runtimes_do_not_import_tensorflow(files):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from cifar.inference.runtimes import load_runtime
        for path in ({str(files["tflite-int8"])!r}, {str(files["onnx"])!r}):
            assert load_runtime(path).predict(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 10)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_in_memory_keras_model_takes_its_own_size_unless_told():
    """``from_model`` asks the one size rule: a 48 px model outside a run takes 48 px."""
    import keras

    from cifar.inference.input_size import input_size
    from cifar.models import create_model

    keras.utils.set_random_seed(1)
    model = create_model("custom_cnn", input_size=48)
    assert input_size(model) == 48
    assert KerasRuntime.from_model(model).input_size == 48
    assert KerasRuntime.from_model(model, source_size=32).input_size == 32
