"""The Predictor on a real trained model (.keras) and its real TFLite export; model lookup."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from cifar.errors import ModelError
from cifar.imageio import ImageError, encode_png
from cifar.inference.predictor import (
    MODEL_ENV,
    Predictor,
    find_class_names,
    find_default_model,
    resolve_model_path,
)


@pytest.fixture(scope="module")
def run_dir(cnn_run):
    """A run folder as the Trainer writes it (model, labels, config) plus a TFLite export."""
    return cnn_run


@pytest.fixture(scope="module")
def keras_predictor(run_dir):
    return Predictor.load(run_dir / "best_model.keras")


@pytest.fixture(scope="module")
def tflite_predictor(run_dir):
    return Predictor.load(run_dir / "export" / "model_float32.tflite")


def test_keras_predictor_matches_the_model_and_beats_chance(keras_predictor, trained_cnn):
    model, data = trained_cnn
    x, y = data.x_test[:200], data.y_test[:200]
    results = keras_predictor.predict([encode_png(img) for img in x])  # PNG: lossless
    probs = np.stack([r.probabilities for r in results])
    direct = model(x.astype(np.float32), training=False).numpy()
    np.testing.assert_allclose(probs, direct, atol=1e-5)
    accuracy = (probs.argmax(1) == y).mean()
    assert accuracy > 0.2, f"accuracy {accuracy:.2f} is at chance level (0.10)"
    info = keras_predictor.info()
    assert info["kind"] == "keras" and info["input_size"] == 32 and info["num_classes"] == 10
    assert info["labels_source"].endswith("labels.txt")
    assert keras_predictor.run_dir == keras_predictor.path.parent


def test_prediction_top_k_and_dict(keras_predictor, trained_cnn):
    _, data = trained_cnn
    result = keras_predictor.predict_one(data.x_test[0])
    top = result.top_k(3)
    assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0] == (result.label, result.confidence)
    assert sum(p for _, p in top) <= 1.0 + 1e-6
    as_dict = result.to_dict(3)
    assert [d["label"] for d in as_dict["predictions"]] == data.class_names
    assert abs(sum(d["probability"] for d in as_dict["predictions"]) - 1) < 1e-4
    assert [(d["label"], d["probability"]) for d in as_dict["top_k"]] == top
    assert set(result.confidences()) == set(data.class_names)


def test_tflite_predictor_agrees_with_keras(keras_predictor, tflite_predictor, trained_cnn):
    _, data = trained_cnn
    images = [encode_png(img) for img in data.x_test[:50]]
    keras_probs = np.stack([r.probabilities for r in keras_predictor.predict(images)])
    tflite_probs = np.stack([r.probabilities for r in tflite_predictor.predict(images)])
    assert tflite_predictor.kind == "tflite"
    assert tflite_predictor.run_dir == keras_predictor.run_dir  # RUN_DIR/export/... -> RUN_DIR
    np.testing.assert_allclose(tflite_probs, keras_probs, atol=1e-4)


def test_any_image_size_and_format_is_resized(tflite_predictor, trained_cnn):
    from PIL import Image

    _, data = trained_cnn
    big = Image.fromarray(data.x_test[0]).resize((300, 200), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=95)
    result = tflite_predictor.predict_one(buffer.getvalue(), name="big.jpg")
    assert result.probabilities.shape == (10,)
    with pytest.raises(ImageError, match="^junk.bin: not a recognised image"):
        tflite_predictor.predict([encode_png(data.x_test[0]), b"junk"], names=["ok", "junk.bin"])
    assert tflite_predictor.predict([]) == []


def test_warmup_runs_the_model_once_at_load(run_dir):
    from cifar.inference.runtimes import load_runtime

    runtime = load_runtime(run_dir / "export" / "model_float32.tflite")
    batches = []
    real_predict = runtime.predict
    runtime.predict = lambda images, **kw: batches.append(len(images)) or real_predict(images, **kw)
    Predictor(runtime)
    assert batches == [1]  # one warm-up image at load, before any request
    Predictor(runtime, warmup=False)
    assert batches == [1]


def test_class_names_lookup(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"")
    names, source = find_class_names(model, 10)
    assert names[0] == "airplane" and "CIFAR-10 default" in source
    assert find_class_names(model, 3)[0] == ["class_0", "class_1", "class_2"]
    (tmp_path / "metadata.json").write_text(json.dumps({"class_names": ["x", "y", "z"]}))
    assert find_class_names(model, 3) == (["x", "y", "z"], str(tmp_path / "metadata.json"))
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    assert find_class_names(model, 3)[0] == ["a", "b", "c"]
    with pytest.raises(ModelError, match="lists 3 classes but the model"):
        find_class_names(model, 4)
    export = tmp_path / "run" / "export"
    export.mkdir(parents=True)
    (tmp_path / "run" / "labels.txt").write_text("p\nq\n")
    assert find_class_names(export / "model.onnx", 2)[0] == ["p", "q"]


def _touch(path, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix:
        path.write_bytes(b"x")
    else:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    os.utime(path.parent, (mtime, mtime))


def test_default_model_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    runs, models = tmp_path / "runs", tmp_path / "models"
    assert find_default_model(models) is None
    with pytest.raises(ModelError) as info:
        resolve_model_path(None, runs, models)
    assert "cifar train smoke" in str(info.value) and "cifar export RUN_DIR" in str(info.value)

    # Runs are never served unless named; the message names the newest one to pass.
    _touch(runs / "old" / "best_model.keras", 100)
    _touch(runs / "new" / "best_model.keras", 200)
    with pytest.raises(ModelError, match=f"name it: --model {runs / 'new'}"):
        resolve_model_path(None, runs, models)

    _touch(models / "model_int8.tflite", 1000)
    _touch(models / "model_float16.tflite", 1000)
    assert find_default_model(models) == models / "model_float16.tflite"
    # A newer smoke-like run (model, export) changes nothing: the shipped model stays the default.
    for name in ("model.onnx", "model_float32.tflite"):
        _touch(runs / "smoke-new" / "export" / name, 5000)
    _touch(runs / "smoke-new" / "best_model.keras", 5000)
    assert resolve_model_path(None, runs, models) == models / "model_float16.tflite"

    # A run is served when named: the folder means its best_model.keras.
    assert resolve_model_path(runs / "old", runs, models) == runs / "old" / "best_model.keras"
    monkeypatch.setenv(MODEL_ENV, str(runs / "new"))
    assert resolve_model_path(None, runs, models) == runs / "new" / "best_model.keras"
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match=r"missing.onnx \(from \$CIFAR_MODEL\) does not exist"):
        resolve_model_path(None, runs, models)


def test_the_repository_default_is_the_shipped_model(tmp_path, monkeypatch):
    """From a folder whose runs/ holds a newer smoke-like run, the shipped file is served."""
    from cifar.inference.predictor import MODELS_DIR_ENV, SHIPPED_MODELS

    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "runs" / "smoke-20990101-000000" / "best_model.keras", 4e9)
    assert resolve_model_path() == SHIPPED_MODELS / "model_float16.tflite"


def test_cli_predict(run_dir, trained_cnn, tmp_path, capsys):
    from cifar.cli import main

    _, data = trained_cnn
    image = tmp_path / "cat.png"
    image.write_bytes(encode_png(data.x_test[0]))
    bad = tmp_path / "notes.txt.png"
    bad.write_text("not an image")
    model = str(run_dir / "export" / "model_float32.tflite")
    assert main(["predict", model, str(image)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ") and line.count("%") == 3
    assert main(["predict", model, str(image), str(bad), "--top-k", "2", "--json"]) == 2
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert len(record["top_k"]) == 2 and len(record["predictions"]) == 10
    assert "notes.txt.png: not a recognised image" in captured.err
    assert main(["predict", str(tmp_path / "none.tflite"), str(image)]) == 2
    assert "does not exist" in capsys.readouterr().err
