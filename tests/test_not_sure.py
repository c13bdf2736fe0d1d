""" "Not sure": where a model's min_confidence comes from, and what `cifar predict` says with it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cifar.errors import ConfigError, ModelError
from cifar.imageio import encode_png
from cifar.inference.confidence import MIN_CONFIDENCE_ENV, find_min_confidence
from cifar.inference.predictor import Prediction, Predictor

NAMES = ("cat", "dog", "frog")


def _with_selective(path, value):
    """Add ``"selective": {"min_confidence": value, ...}`` to a JSON file, as schema26 has it."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["selective"] = {"min_confidence": value, "chosen_by": "validation", "coverage": 0.8}
    path.write_text(json.dumps(data))


@pytest.fixture
def export_copy(cnn_run, tmp_path):
    """A copy of the CNN run (model, labels, config, export) the test may write records into."""
    run = tmp_path / "run"
    shutil.copytree(cnn_run, run)
    return run


@pytest.fixture(autouse=True)
def no_env_threshold(monkeypatch):
    monkeypatch.delenv(MIN_CONFIDENCE_ENV, raising=False)


def test_the_one_rule_and_the_json_fields():
    probs = np.array([0.41, 0.39, 0.20], np.float32)
    unsure = Prediction(probs, NAMES, min_confidence=0.83)
    assert unsure.not_sure and unsure.verdict() == "not sure (best guess: cat 0.41, below 0.83)"
    record = unsure.to_dict(2)
    assert record["not_sure"] is True and record["min_confidence"] == 0.83
    assert [r["label"] for r in record["top_k"]] == ["cat", "dog"]  # the top k still given
    assert len(record["predictions"]) == 3
    # At the threshold the answer stands (is_not_sure: strictly below).
    assert not Prediction(probs, NAMES, min_confidence=float(probs[0])).not_sure
    plain = Prediction(probs, NAMES)
    assert not plain.not_sure and plain.verdict() == "cat 0.41"
    assert plain.to_dict()["min_confidence"] is None and plain.to_dict()["not_sure"] is False


def test_resolver_order(export_copy, monkeypatch):
    model = export_copy / "export" / "model_float32.tflite"
    threshold = find_min_confidence(model)
    assert threshold.min_confidence is None and "none recorded" in threshold.source
    assert "never 'not sure'" in threshold.describe()

    _with_selective(export_copy / "metrics.json", 0.7)  # the run's choice
    assert find_min_confidence(model).min_confidence == 0.7
    assert find_min_confidence(export_copy / "best_model.keras").min_confidence == 0.7
    _with_selective(export_copy / "export" / "metadata.json", 0.8)  # the export's own wins
    found = find_min_confidence(model)
    assert found.min_confidence == 0.8 and found.source.endswith("export/metadata.json")
    assert find_min_confidence(export_copy / "best_model.keras").min_confidence == 0.7
    monkeypatch.setenv(MIN_CONFIDENCE_ENV, "0.6")
    assert find_min_confidence(model).min_confidence == 0.6
    found = find_min_confidence(model, given=0.5)  # by hand beats everything
    assert (found.min_confidence, found.source) == (0.5, "set by hand")

    with pytest.raises(ConfigError, match="--min-confidence must be a number from 0 to 1"):
        find_min_confidence(model, given=1.5)
    monkeypatch.setenv(MIN_CONFIDENCE_ENV, "high")
    with pytest.raises(ConfigError, match=r"\$CIFAR_MIN_CONFIDENCE must be a number"):
        find_min_confidence(model)
    monkeypatch.delenv(MIN_CONFIDENCE_ENV)
    _with_selective(export_copy / "export" / "metadata.json", "0.9x")
    with pytest.raises(ModelError, match="metadata.json must be a number from 0 to 1"):
        find_min_confidence(model)


def test_shipped_model_threshold_comes_from_models_metadata(tmp_path):
    from cifar.inference.predictor import SHIPPED_MODELS

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(SHIPPED_MODELS / "model_float16.tflite", folder)
    shutil.copy(SHIPPED_MODELS / "metadata.json", folder)
    _with_selective(folder / "metadata.json", 0.83)
    predictor = Predictor.load(folder / "model_float16.tflite", warmup=False)
    assert predictor.min_confidence == 0.83
    assert predictor.info()["min_confidence"] == 0.83


def test_cli_says_not_sure_and_still_lists_the_top_3(export_copy, trained_cnn, tmp_path, capsys):
    from cifar.cli import main

    _, data = trained_cnn
    image = tmp_path / "img.png"
    image.write_bytes(encode_png(data.x_test[0]))
    model = export_copy / "export" / "model_float32.tflite"
    probs = Predictor.load(model).predict_one(image)
    top = probs.top_k(3)

    assert main(["predict", str(model), str(image)]) == 0
    out, err = capsys.readouterr()
    assert "not sure" not in out and out.count("%") == 3
    assert err.count("no min_confidence for this model") == 1  # said once

    above = min(1.0, round(probs.confidence + 0.01, 2))
    _with_selective(export_copy / "export" / "metadata.json", above)
    assert main(["predict", str(model), str(image), str(image)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and "min_confidence" not in err
    expected = (
        f"{image}: not sure (best guess: {top[0][0]} {top[0][1]:.2f}, below {above:.2f}); "
        f"top 3: " + ", ".join(f"{n} {p:.1%}" for n, p in top)
    )
    assert lines[0] == expected

    # A hand-set threshold the answer clears: no "not sure"; JSON carries the fields.
    assert main(["predict", str(image), "--model", str(model), "--min-confidence", "0"]) == 0
    assert "not sure" not in capsys.readouterr().out
    assert main(["predict", str(model), str(image), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["not_sure"] is True and record["min_confidence"] == above

    assert main(["predict", str(model), str(image), "--min-confidence", "2"]) == 2
    assert "error: min_confidence from --min-confidence" in capsys.readouterr().err


def test_cli_predict_defaults_to_the_shipped_model(tmp_path, monkeypatch, capsys):
    from cifar.cli import main
    from cifar.inference.predictor import MODEL_ENV, MODELS_DIR_ENV

    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "img.png"
    image.write_bytes(encode_png(np.full((32, 32, 3), 128, np.uint8)))
    assert main(["predict", str(image), "--top-k", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["predictions"]) == 10 and len(record["top_k"]) == 2
    assert main(["predict", str(tmp_path / "model.tflite")]) == 2
    assert "name at least one image after the model" in capsys.readouterr().err
