"""The Trainer end to end: phases, early stopping, run directory, resume, hooks.

Strategies (mirrored, multiworker) are tested in test_distributed.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import CIFAR_DIR, HAVE_WEIGHTS, ROOT, WEIGHTS, requires_cifar

from cifar.config import load_config
from cifar.data.pipeline import make_dataset
from cifar.trainer import Trainer, resume_trainer


def cnn_config(tmp_path, phases, **data):
    """A custom-CNN config with the given phases (list of dicts) on a tiny subset."""
    return load_config(
        {
            "name": "tiny",
            "runs_dir": str(tmp_path),
            "report": False,
            "data": {"batch_size": 64, **data},
            "model": {"name": "custom_cnn", "weights": None},
            "phases": phases,
            "callbacks": {"confusion_matrix_every": 0, "progress": False},
        }
    )


def history(run_dir):
    return json.loads((run_dir / "history.json").read_text())


@requires_cifar
@pytest.mark.slow
def test_tiny_fit_on_real_cifar_beats_chance(tmp_path):
    cfg = cnn_config(
        tmp_path,
        [{"name": "scratch", "trainable": "all", "epochs": 4, "patience": 0}],
        train_subset=4000,
        test_subset=1000,
        data_dir=str(CIFAR_DIR),
    )
    metrics = Trainer(cfg).fit()
    assert metrics["test"]["accuracy"] > 0.25  # chance is 0.10
    assert metrics["data"]["source"].endswith("cifar-10-batches-py")
    assert (metrics["data"]["n_train"], metrics["data"]["n_val"]) == (3600, 400)


def test_run_directory_phases_and_learning_rates(tmp_path, small_data):
    cfg = load_config(
        {
            "name": "mnv2",
            "runs_dir": str(tmp_path),
            "data": {"batch_size": 32},
            "model": {
                "name": "mobilenet_v2",
                "input_size": 32,
                "weights": str(WEIGHTS) if HAVE_WEIGHTS else None,
            },
            "phases": [
                {"name": "frozen", "trainable": "frozen_base", "learning_rate": 1e-3, "epochs": 1},
                {
                    "name": "finetune",
                    "trainable": "unfreeze_last(50)",
                    "learning_rate": 1e-5,
                    "epochs": 1,
                },
            ],
            "callbacks": {"confusion_matrix_every": 1},
        }
    )
    data = small_data.subset(train=300, test=100)
    trainer = Trainer(cfg, data=data)
    metrics = trainer.fit()
    run = trainer.run_dir
    assert run.parent == tmp_path and run.name.startswith("mnv2-")
    for name in [
        "config.json",
        "history.csv",
        "history.json",
        "metrics.json",
        "labels.txt",
        "best_model.keras",
        "samples.png",
        "REPORT.md",
    ]:
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").rglob("events.out.tfevents*"))
    rows = history(run)
    assert [(r["epoch"], r["phase"], r["phase_epoch"]) for r in rows] == [
        (1, "frozen", 1),
        (2, "finetune", 1),
    ]
    assert rows[0]["learning_rate"] == pytest.approx(1e-3)
    assert rows[1]["learning_rate"] == pytest.approx(1e-5)
    frozen, finetune = metrics["phases"]
    assert frozen["trainable_params"] == 128 * 1280 + 128 + 128 * 10 + 10  # the head only
    assert finetune["trainable_params"] > 10 * frozen["trainable_params"]
    assert (
        frozen["trainable_params"] + frozen["non_trainable_params"] == trainer.model.count_params()
    )
    config = json.loads((run / "config.json").read_text())
    assert config["phases"][1]["trainable"] == "unfreeze_last(50)"
    assert config["model"]["input_size"] == 32


def test_early_stopping_restores_the_best_weights(tmp_path, small_data):
    cfg = cnn_config(
        tmp_path,
        [
            {
                "name": "noisy",
                "trainable": "all",
                "optimizer": "sgd",
                "learning_rate": 0.05,
                "epochs": 6,
                "patience": 2,
            }
        ],
    )
    cfg.calibration.temperature = False  # a folded T would lower the restored val loss
    trainer = Trainer(cfg, data=small_data.subset(train=800, test=100))
    metrics = trainer.fit()
    val_losses = [r["val_loss"] for r in history(trainer.run_dir)]
    d = trainer.datasets
    val = make_dataset(d.data.x_train[d.val_idx], d.data.y_train[d.val_idx], 10, 32, 64)
    trainer.model.compile(loss="categorical_crossentropy")
    restored = trainer.model.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(min(val_losses), abs=1e-4)
    phase = metrics["phases"][0]
    assert phase["best_val_loss"] == pytest.approx(min(val_losses))
    assert phase["best_epoch"] == 1 + int(np.argmin(val_losses))
    if phase["epochs_run"] < 6:
        assert phase["stop_reason"].startswith("early stopping")


class InterruptAt(keras.callbacks.Callback):
    """Simulates Ctrl-C at the start of a given global epoch (index)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


TWO_PHASES = [
    {"name": "first", "trainable": "all", "learning_rate": 1e-3, "epochs": 2, "patience": 0},
    {"name": "second", "trainable": "all", "learning_rate": 1e-4, "epochs": 3, "patience": 0},
]


@pytest.mark.parametrize("stop_at", [1, 2, 3], ids=["inside-phase-1", "between", "inside-phase-2"])
def test_resume_after_interruption(tmp_path, small_data, stop_at):
    data = small_data.subset(train=400, test=100)
    cfg = cnn_config(tmp_path, TWO_PHASES)
    first = Trainer(cfg, data=data, callbacks=[InterruptAt(stop_at)])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    run = first.run_dir
    before = history(run)
    assert [r["epoch"] for r in before] == list(range(1, stop_at + 1))
    assert not (run / "metrics.json").exists()

    resumed = resume_trainer(run)
    resumed._data = data  # same images as the interrupted run (test data is in memory)
    metrics = resumed.fit()
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["phase"] for r in rows] == ["first"] * 2 + ["second"] * 3
    assert rows[:stop_at] == before  # nothing already written was lost or rewritten
    assert [p["epochs_run"] for p in metrics["phases"]] == [2, 3]
    steps = resumed.datasets.steps_per_epoch
    # Adam's step counter continued from the checkpoint: all 3 epochs of phase 2 counted.
    assert int(resumed.model.optimizer.iterations) == 3 * steps
    assert metrics["test"]["n"] == 100


def test_resume_of_a_finished_run_changes_nothing(tmp_path, small_data):
    cfg = cnn_config(tmp_path, [{"name": "only", "trainable": "all", "epochs": 1}])
    trainer = Trainer(cfg, data=small_data.subset(train=200, test=50))
    metrics = trainer.fit()
    stamp = (trainer.run_dir / "metrics.json").stat().st_mtime_ns
    again = resume_trainer(trainer.run_dir)
    again._data = trainer.datasets.data
    assert again.fit() == json.loads(json.dumps(metrics))
    assert (trainer.run_dir / "metrics.json").stat().st_mtime_ns == stamp


def test_same_seed_same_history(tmp_path, small_data):
    data = small_data.subset(train=300, test=50)
    losses = []
    for i in range(2):
        cfg = cnn_config(tmp_path / str(i), [{"name": "a", "trainable": "all", "epochs": 1}])
        trainer = Trainer(cfg, data=data)
        trainer.fit()
        losses.append(history(trainer.run_dir)[0]["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_subclass_hooks(tmp_path, small_data):
    calls = []

    class Custom(Trainer):
        def build_model(self):
            calls.append("build_model")
            return super().build_model()

        def on_phase_begin(self, phase, index):
            calls.append(f"begin:{phase.name}")

        def on_phase_end(self, phase, index, summary):
            calls.append(f"end:{phase.name}:{summary['epochs_run']}")

        def build_callbacks(self, phase, index, start_epoch):
            callbacks = super().build_callbacks(phase, index, start_epoch)
            return [
                keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda e, logs: calls.append(f"epoch:{e}")
                )
            ] + callbacks

    cfg = cnn_config(
        tmp_path,
        [
            {"name": "a", "trainable": "all", "epochs": 1},
            {"name": "b", "trainable": "all", "epochs": 1},
        ],
    )
    Custom(cfg, data=small_data.subset(train=200, test=50)).fit()
    assert calls == [
        "build_model",
        "begin:a",
        "epoch:0",
        "end:a:1",
        "begin:b",
        "epoch:1",
        "end:b:1",
    ]


def _uninterrupted_and_resumed(tmp_path, cfg_for, data, stop_at):
    """Histories and final weights of a straight run and of one interrupted at ``stop_at``."""
    straight = Trainer(cfg_for(tmp_path / "straight"), data=data)
    straight.fit()
    first = Trainer(cfg_for(tmp_path / "killed"), data=data, callbacks=[InterruptAt(stop_at)])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = resume_trainer(first.run_dir)
    resumed._data = data
    resumed.fit()
    return (
        (history(straight.run_dir), straight.model.get_weights()),
        (history(resumed.run_dir), resumed.model.get_weights()),
    )


def _assert_same_run(a, b):
    (rows_a, weights_a), (rows_b, weights_b) = a, b
    keys = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy")
    assert [{k: r[k] for k in keys} for r in rows_b] == [{k: r[k] for k in keys} for r in rows_a]
    for wa, wb in zip(weights_a, weights_b, strict=True):
        np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-6)


@pytest.mark.parametrize("stop_at", [1, 3], ids=["inside-phase-1", "inside-phase-2"])
def test_resumed_run_is_the_uninterrupted_run(tmp_path, small_data, stop_at):
    # The CNN has Dropout(0.5) and phase 2 flips and crops: the order of every epoch, the
    # augmentation, the dropout masks and Adam's state must all continue where they were.
    phases = [
        {"name": "first", "trainable": "all", "learning_rate": 1e-3, "epochs": 2, "patience": 0},
        {"name": "second", "trainable": "all", "learning_rate": 1e-4, "epochs": 3, "patience": 2},
    ]

    def cfg_for(root):
        return cnn_config(root, phases, augment={"flip": True, "crop_padding": 2})

    data = small_data.subset(train=300, test=50)
    straight, resumed = _uninterrupted_and_resumed(tmp_path, cfg_for, data, stop_at)
    _assert_same_run(straight, resumed)
    if stop_at == 1:  # ...and the check can tell: other augmentation, other losses
        other = Trainer(cnn_config(tmp_path / "other", phases, augment={"flip": True}), data=data)
        other.fit()
        assert [r["loss"] for r in history(other.run_dir)] != [r["loss"] for r in straight[0]]


def test_resumed_cached_views_run_is_the_uninterrupted_run(tmp_path, small_data):
    phases = [{"name": "frozen", "trainable": "frozen_base", "epochs": 3, "patience": 0}]

    def cfg_for(root):
        return load_config(
            {
                "name": "views",
                "runs_dir": str(root),
                "report": False,
                "cache_dtype": "float32",
                "data": {"batch_size": 32, "augment": {"flip": True, "cached_views": 2}},
                "model": {"name": "mobilenet_v2", "input_size": 32, "weights": None},
                "phases": phases,
                "callbacks": {"confusion_matrix_every": 0, "progress": False},
            }
        )

    data = small_data.subset(train=200, test=50)
    straight, resumed = _uninterrupted_and_resumed(tmp_path, cfg_for, data, stop_at=2)
    _assert_same_run(straight, resumed)


@pytest.mark.slow
def test_killed_process_resumes_to_the_same_run(tmp_path):
    """`cifar train`, SIGKILLed after an epoch and resumed, prints the uninterrupted figures."""
    import os
    import signal

    from conftest import make_folder

    root = make_folder(tmp_path / "fruit", per_class=16)
    (tmp_path / "exp.toml").write_text(
        textwrap.dedent(
            f"""
            name = "killed"
            report = false
            [data]
            data_dir = "{root}"
            batch_size = 8
            [data.augment]
            flip = true
            crop_padding = 2
            [model]
            name = "custom_cnn"
            [[phases]]
            name = "first"
            trainable = "all"
            epochs = 2
            patience = 0
            [[phases]]
            name = "second"
            trainable = "all"
            learning_rate = 3e-4
            epochs = 4
            patience = 0
            [callbacks]
            confusion_matrix_every = 0
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}

    def train(*args):
        cmd = [sys.executable, "-m", "cifar.cli", "train", *args]
        return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)

    straight = train("exp.toml", "--run-dir", "runs/straight")
    assert straight.wait(timeout=600) == 0
    killed = train("exp.toml", "--run-dir", "runs/killed")
    for line in killed.stdout:
        if "(run epoch 4)" in line:  # inside phase 2, right after its epoch-4 line
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    resumed = train("--resume", "runs/killed")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and "resuming" in out
    a = history(tmp_path / "runs" / "straight")
    b = history(tmp_path / "runs" / "killed")
    assert [r["epoch"] for r in b] == [1, 2, 3, 4, 5, 6]
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[r[k] for k in keys] for r in b] == [[r[k] for k in keys] for r in a]
    ma = json.loads((tmp_path / "runs" / "straight" / "metrics.json").read_text())["test"]
    mb = json.loads((tmp_path / "runs" / "killed" / "metrics.json").read_text())["test"]
    assert (mb["accuracy"], mb["loss"]) == (ma["accuracy"], ma["loss"])
