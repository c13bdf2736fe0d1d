"""A run ends calibrated: T fitted on validation and folded once, "not sure", OOD, top losses."""

from __future__ import annotations

import argparse
import json

import keras
import numpy as np
import pytest
from conftest import CIFAR_DIR, HAVE_CIFAR, make_folder

from cifar.calibration import apply_temperature, fit_temperature, ood_auroc
from cifar.calibration.metrics import KERAS_EPSILON, image_losses
from cifar.calibration.ood import class_key, evenly, find_other_images
from cifar.config import load_config
from cifar.errors import ConfigError
from cifar.evaluation import predict_images
from cifar.trainer import Trainer, resume_trainer

OTHER_COLOURS = {"plums": (60, 20, 90), "sky": (120, 170, 230)}


class Spy(Trainer):
    """Keeps the weights as trained (before the fold) and the rows calibration predicted."""

    def calibrate(self):
        self.unfolded = self.model.get_weights()
        return super().calibrate()


def folder_config(tmp_path, root, **calibration):
    return load_config(
        {
            "name": "cal",
            "runs_dir": str(tmp_path / "runs"),
            "report": False,
            "data": {
                "data_dir": str(root),
                "batch_size": 16,
                "val_fraction": 0.25,
                "near_copies": "off",
                "duplicates": "keep",
            },
            "model": {"name": "custom_cnn", "weights": None},
            "phases": [{"name": "a", "trainable": "all", "epochs": 2, "learning_rate": 3e-3}],
            "callbacks": {"confusion_matrix_every": 0, "progress": False, "tensorboard": False},
            "calibration": {"top_losses": 5, **calibration},
        }
    )


def as_trained(trainer: Spy) -> keras.Model:
    model = keras.models.clone_model(trainer.model)
    model.set_weights(trainer.unfolded)
    return model


@pytest.fixture(scope="module")
def fruit(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("fruit") / "fruit", per_class=24)


@pytest.fixture(scope="module")
def default_run(fruit, tmp_path_factory):
    """A photo run with the defaults: T fitted and folded, min_confidence chosen."""
    mp = pytest.MonkeyPatch()
    if HAVE_CIFAR:
        mp.setenv("CIFAR10_DIR", str(CIFAR_DIR))
    else:
        mp.delenv("CIFAR10_DIR", raising=False)
    trainer = Spy(folder_config(tmp_path_factory.mktemp("default"), fruit), verbose=0)
    metrics = trainer.fit()
    yield trainer, metrics
    mp.undo()


def test_temperature_is_fitted_on_exactly_the_validation_rows(default_run):
    trainer, metrics = default_run
    d = trainer.datasets
    model = as_trained(trainer)
    val_x, val_y = d.data.x_train[d.val_idx], d.data.y_train[d.val_idx]
    expected = fit_temperature(predict_images(model, val_x, 32), val_y)
    cal = metrics["calibration"]
    assert cal["temperature"] == pytest.approx(expected, rel=1e-4)
    assert (cal["fitted_on"], cal["n_fit"], cal["folded"]) == ("validation", len(val_y), True)
    # Fitting on any other rows (here the training rows) gives another T: the check can fail.
    train_rows = d.train_idx
    other = fit_temperature(
        predict_images(model, d.data.x_train[train_rows], 32), d.data.y_train[train_rows]
    )
    assert abs(other - expected) > 1e-3
    record = json.loads((trainer.run_dir / "calibration.json").read_text())
    assert record["temperature"] == pytest.approx(cal["temperature"], rel=1e-6)


def test_saved_model_gives_softmax_of_logits_over_t(default_run):
    trainer, metrics = default_run
    data, t = trainer.datasets.data, metrics["calibration"]["temperature"]
    saved = keras.models.load_model(trainer.run_dir / "best_model.keras")
    folded = predict_images(saved, data.x_test, 32)
    unfolded = predict_images(as_trained(trainer), data.x_test, 32)
    np.testing.assert_allclose(folded, apply_temperature(unfolded, t), atol=1e-5)
    assert np.abs(folded - unfolded).max() > 1e-3  # T != 1 changed the probabilities
    # The test evaluation is the calibrated model's.
    with np.load(trainer.run_dir / "predictions.npz") as npz:
        np.testing.assert_allclose(npz["probabilities"], folded, atol=1e-6)


def test_metrics_hold_the_schema(default_run):
    trainer, metrics = default_run
    cal, sel = metrics["calibration"], metrics["selective"]
    assert {"temperature", "fitted_on", "n_fit", "validation", "test", "reliability"} <= set(cal)
    for split in ("validation", "test"):
        for side in ("before", "after"):
            assert {"n", "accuracy", "ece", "nll", "brier"} <= set(cal[split][side])
    assert cal["test"]["before"]["accuracy"] == cal["test"]["after"]["accuracy"]
    assert {"edges", "confidence", "accuracy", "count"} == set(cal["reliability"]["after"])
    assert {"min_confidence", "coverage", "accepted_accuracy", "chosen_by"} <= set(sel)
    assert sel["chosen_by"] == "validation"
    assert set(sel["test"]) == {"coverage", "accepted_accuracy", "n_accepted", "n"}
    assert len(sel["curve"]["coverage"]) == len(sel["curve"]["accuracy"]) <= 101
    if HAVE_CIFAR:  # a photo run's default other things: CIFAR-10 classes it does not know
        assert sel["ood"]["n"] == 1000 and "CIFAR-10" in sel["ood"]["source"]
        assert 0.0 <= sel["ood"]["auroc"] <= 1.0
    else:
        assert sel["ood"] is None and "CIFAR-10" in sel["ood_skipped"]
    for name in ("plots/reliability.png", "plots/coverage.png"):
        assert (trainer.run_dir / name).is_file()


def test_top_losses_are_the_highest_loss_test_images(default_run):
    trainer, metrics = default_run
    data = trainer.datasets.data
    with np.load(trainer.run_dir / "predictions.npz") as npz:
        losses = image_losses(npz["probabilities"], npz["labels"], KERAS_EPSILON)
    rows = metrics["top_losses"]
    assert len(rows) == 5
    assert [r["index"] for r in rows] == list(np.argsort(-losses, kind="stable")[:5])
    assert min(r["loss"] for r in rows) >= np.sort(losses)[-5] - 1e-6
    for row in rows:
        i = row["index"]
        assert row["file"] == data.files_test[i]
        assert row["true"] == data.class_names[data.y_test[i]]
        assert row["heatmap"] == f"plots/top_losses/{i}.png"
        assert (trainer.run_dir / row["heatmap"]).is_file()
        assert row["loss"] == pytest.approx(-np.log(max(row["true_probability"], 1e-7)), abs=1e-5)
    assert len(list((trainer.run_dir / "plots" / "top_losses").glob("*.png"))) == 5


def test_resume_and_evaluate_do_not_fold_twice(default_run):
    from cifar.commands import evaluate

    trainer, metrics = default_run
    run = trainer.run_dir
    model_file = run / "best_model.keras"
    weights = keras.models.load_model(model_file).get_weights()
    # A crash after best_model.keras was saved, before metrics.json: resume folds the
    # checkpoint's (unfolded) weights once, giving the same model.
    (run / "metrics.json").unlink()
    resumed = resume_trainer(run, verbose=0)
    again = resumed.fit()
    assert again["calibration"]["temperature"] == pytest.approx(
        metrics["calibration"]["temperature"], rel=1e-6
    )
    for a, b in zip(weights, keras.models.load_model(model_file).get_weights(), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6)
    # A complete run: resuming changes nothing.
    stamp = model_file.stat().st_mtime_ns
    assert resume_trainer(run, verbose=0).fit() == json.loads(json.dumps(again))
    # `cifar evaluate` recomputes the figures from the model as saved, without folding again.
    args = argparse.Namespace(run_dir=str(run), model=None, data_dir=None, batch_size=64)
    assert evaluate.run(args) == 0
    assert model_file.stat().st_mtime_ns == stamp
    redone = json.loads((run / "metrics.json").read_text())
    assert redone["calibration"]["temperature"] == again["calibration"]["temperature"]
    for side in ("before", "after"):
        assert redone["calibration"]["test"][side]["ece"] == pytest.approx(
            again["calibration"]["test"][side]["ece"], abs=1e-5
        )
    assert redone["selective"]["min_confidence"] == pytest.approx(
        again["selective"]["min_confidence"], abs=1e-5
    )
    assert [r["index"] for r in redone["top_losses"]] == [r["index"] for r in again["top_losses"]]


def test_hand_set_threshold_no_temperature_and_an_ood_folder(fruit, tmp_path):
    other_root = make_folder(tmp_path / "other", per_class=5, classes=OTHER_COLOURS, seed=7)
    cfg = folder_config(
        tmp_path, fruit, temperature=False, min_confidence=0.5, ood_dir=str(other_root)
    )
    trainer = Spy(cfg, verbose=0)
    metrics = trainer.fit()
    cal, sel = metrics["calibration"], metrics["selective"]
    assert (cal["temperature"], cal["folded"]) == (1.0, False)
    for a, b in zip(trainer.unfolded, trainer.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # nothing folded
    assert (sel["min_confidence"], sel["chosen_by"]) == (0.5, "hand")
    with np.load(trainer.run_dir / "predictions.npz") as npz:
        probs = npz["probabilities"]
    assert sel["test"]["n_accepted"] == int((probs.max(axis=1) >= 0.5).sum())
    # OOD: every photo of the other folder, against the test set.
    from cifar.imageio import load_images

    files = sorted(p for p in other_root.rglob("*") if p.is_file())
    other = predict_images(trainer.model, load_images(files, 32), 32)
    assert sel["ood"]["n"] == len(files) == 10
    assert sel["ood"]["auroc"] == pytest.approx(ood_auroc(probs, other), abs=1e-6)
    assert "other" in sel["ood"]["source"]


def test_other_things_sources():
    assert class_key("Cats") == class_key("cat") == "cat"
    assert class_key("dogs") == "dog" and class_key("automobile") != class_key("car")
    assert list(evenly(5, 10)) == [0, 1, 2, 3, 4]
    picked = evenly(10_000, 1000)
    assert len(picked) == 1000 and picked[0] == 0 and picked[-1] == 9999
    images, why = find_other_images(["airplane", "cat"], "cifar10", None)
    assert images is None and "ood_dir" in why


@pytest.mark.skipif(not HAVE_CIFAR, reason="needs the CIFAR-10 copy in ../shared")
def test_cifar_other_things_leave_out_the_models_classes():
    from cifar.calibration.ood import cifar10_other_classes

    other = cifar10_other_classes(["cats", "dogs"], CIFAR_DIR, limit=300)
    assert "left out: cat, dog" in other.source
    assert other.count == 300
    batches = list(other.batches(160))
    assert sum(len(b) for b in batches) == 300 and batches[0].shape[1:] == (32, 32, 3)


@pytest.mark.parametrize(
    "key, value",
    [("min_confidence", 1.5), ("target_accuracy", 0.0), ("top_losses", -1), ("ood_dir", " ")],
)
def test_calibration_config_is_validated(key, value):
    with pytest.raises(ConfigError, match=f"calibration.{key}"):
        load_config({"calibration": {key: value}})


def test_export_metadata_records_the_runs_calibration(default_run):
    from exports.metadata import build_metadata
    from exports.source import source_from_run

    trainer, metrics = default_run
    source = source_from_run(trainer.run_dir)
    meta = build_metadata(
        source.describe(), source.class_names, 32, {}, [], None, source.confidence
    )
    cal, sel = metrics["calibration"], metrics["selective"]
    assert meta["calibration"]["temperature"] == cal["temperature"]
    assert meta["calibration"]["ece_after"] == cal["validation"]["after"]["ece"]
    assert meta["calibration"]["n"] == cal["n_fit"]
    assert meta["selective"] == {
        k: sel[k]
        for k in ("min_confidence", "chosen_by", "target_accuracy", "coverage", "accepted_accuracy")
    }
