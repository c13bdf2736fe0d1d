"""FixRes: the trained network evaluated, calibrated and saved at a size chosen on validation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import make_folder

from cifar.config import load_config
from cifar.errors import ConfigError
from cifar.eval_size import candidate_sizes, choose_eval_size, rebuild_at
from cifar.models import create_model
from cifar.trainer import Trainer


def test_candidates_run_from_the_training_size_to_the_stored_size():
    assert candidate_sizes(224, 256) == [224, 256]
    assert candidate_sizes(224, 300) == [224, 256, 288]
    assert candidate_sizes(224, 224) == [224]
    assert candidate_sizes(32, 64, step=16) == [32, 48, 64]


def _probs(labels: np.ndarray, right: float, flip_every: int, classes: int = 3) -> np.ndarray:
    """Probabilities putting ``right`` on the true class, wrong on every ``flip_every``-th."""
    n = len(labels)
    probs = np.full((n, classes), (1 - right) / (classes - 1))
    target = labels.copy()
    target[::flip_every] = (labels[::flip_every] + 1) % classes
    probs[np.arange(n), target] = right
    return probs.astype(np.float32)


def test_the_size_with_the_best_calibrated_validation_fit_wins():
    labels = np.arange(300) % 3
    by_size = {
        32: _probs(labels, 0.9, flip_every=5),  # 20% wrong
        48: _probs(labels, 0.6, flip_every=50),  # 2% wrong, but under-confident
        64: _probs(labels, 0.99, flip_every=4),  # 25% wrong, over-confident
    }
    choice = choose_eval_size([32, 48, 64], lambda s: (labels, by_size[s]))
    # Temperature scaling undoes 48's under-confidence: its ranking is the best.
    assert choice.size == 48 and choice.chosen_by == "validation"
    rows = choice.record()["candidates"]
    assert [r["size"] for r in rows] == [32, 48, 64]
    assert rows[1]["val_accuracy"] == pytest.approx(0.98)
    assert min(r["val_nll"] for r in rows) == rows[1]["val_nll"]
    # A tie keeps the smaller size.
    same = choose_eval_size([64, 96], lambda s: (labels, by_size[32]))
    assert same.size == 64


def test_rebuilt_network_keeps_its_weights_at_a_new_size():
    keras.utils.set_random_seed(0)
    small = create_model("mobilenet_v2", num_classes=3, input_size=32, weights=None)
    big = rebuild_at(
        small, 64, lambda s: create_model("mobilenet_v2", num_classes=3, input_size=s, weights=None)
    )
    assert big.input_shape[1:] == (64, 64, 3)
    for a, b in zip(small.get_weights(), big.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Global pooling of a constant image: the same answer at either size.
    flat = np.full((1, 64, 64, 3), 120.0, np.float32)
    np.testing.assert_allclose(
        big.predict(flat, verbose=0), small.predict(flat[:, :32, :32], verbose=0), atol=1e-4
    )
    assert rebuild_at(small, 32, lambda s: pytest.fail("no rebuild at its own size")) is small


def test_a_model_whose_weights_depend_on_its_size_is_refused_before_training():
    with pytest.raises(ConfigError, match="model.eval_size: custom_cnn's weights depend on"):
        load_config(None, ['model.name="custom_cnn"', 'model.eval_size="auto"'])
    for bad in ("'big'", "16", "true"):
        with pytest.raises(ConfigError, match="model.eval_size"):
            load_config(None, [f"model.eval_size={bad}"])
    # Past the configuration check (a model registered as resizable that is not), the
    # rebuild itself refuses rather than load mismatched weights.
    cnn = create_model("custom_cnn", num_classes=3, input_size=32, weights=None)
    with pytest.raises(ConfigError, match="cannot run at 64x64"):
        rebuild_at(cnn, 64, lambda s: create_model("custom_cnn", 3, s, weights=None))


def _folder_run(tmp_path, eval_size) -> Trainer:
    folder = make_folder(tmp_path / "photos", per_class=12)
    cfg = load_config(
        {
            "name": "fixres",
            "runs_dir": str(tmp_path / "runs"),
            "data": {"data_dir": str(folder), "stored_size": 64, "val_fraction": 0.3},
            "model": {"input_size": 32, "weights": None, "head_units": 0, "eval_size": eval_size},
            "phases": [{"name": "all", "trainable": "all", "epochs": 2, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "progress": False, "tensorboard": False},
            "calibration": {"top_losses": 0},
        }
    )
    trainer = Trainer(cfg, verbose=0)
    trainer.fit()
    return trainer


def test_auto_evaluates_saves_and_records_the_size_validation_chose(tmp_path):
    from cifar.inference.predictor import Predictor

    trainer = _folder_run(tmp_path, "auto")
    run = trainer.run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    model = metrics["model"]
    choice = model["eval_size_choice"]
    assert model["input_size"] == 32 and model["source_size"] == 64
    assert [c["size"] for c in choice["candidates"]] == [32, 64]
    best = min(choice["candidates"], key=lambda c: c["val_nll"])["size"]
    assert model["eval_size"] == choice["size"] == best and choice["chosen_by"] == "validation"
    saved = keras.models.load_model(run / "best_model.keras", compile=False)
    assert saved.input_shape[1] == best
    # The folded T is the one fitted on the chosen size's validation predictions.
    folded = json.loads((run / "calibration.json").read_text())["temperature"]
    chosen = next(c for c in choice["candidates"] if c["size"] == best)
    assert folded == pytest.approx(chosen["temperature"], abs=1e-6)
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["model"]["image_size"] == best
    # The model file gives the evaluation's probabilities for the stored test photos.
    stored = trainer.datasets.data.x_test
    got = Predictor.load(run / "best_model.keras").predict_pixels(stored)
    np.testing.assert_allclose(got, npz_probs(run), atol=1e-4)
    assert "calibrated, evaluated and saved at" in (run / "REPORT.md").read_text()
    # The exported file runs the network at the chosen size and gives the same answers.
    from exports import Exporter

    Exporter(run, verify_n=10, log=None).export(["tflite"])
    tflite = Predictor.load(run / "export" / "model_float32.tflite")
    assert tflite.input_size == 64  # takes the stored photos; resizes inside if it must
    np.testing.assert_allclose(tflite.predict_pixels(stored), npz_probs(run), atol=1e-3)


def npz_probs(run) -> np.ndarray:
    with np.load(run / "predictions.npz") as npz:
        return npz["probabilities"]


def test_a_configured_size_is_used_without_a_search(tmp_path):
    trainer = _folder_run(tmp_path, 64)
    metrics = json.loads((trainer.run_dir / "metrics.json").read_text())
    assert metrics["model"]["eval_size"] == 64
    assert metrics["model"]["eval_size_choice"] == {
        "size": 64,
        "chosen_by": "configured",
        "candidates": [],
    }
    saved = keras.models.load_model(trainer.run_dir / "best_model.keras", compile=False)
    assert saved.input_shape[1] == 64
