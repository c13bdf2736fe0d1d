"""``cifar compare``: argument checks, the report table, and one small end-to-end comparison."""

from __future__ import annotations

import json

import pytest
from conftest import synthetic_data

from cifar.cli import main
from cifar.commands.comparison import compare_models, model_configs, parse_models
from cifar.errors import ConfigError
from cifar.report.comparison import render_comparison

PHASES = [{"name": "all", "trainable": "all", "epochs": 1, "patience": 0}]


def experiment(tmp_path):
    return {
        "name": "cmp",
        "runs_dir": str(tmp_path / "runs"),
        "report": False,
        "data": {"batch_size": 32},
        "model": {"input_size": 32, "weights": None},
        "phases": PHASES,
        "callbacks": {"confusion_matrix_every": 0, "progress": False, "tensorboard": False},
    }


def test_parse_models_rejects_empty_and_repeated_names():
    assert parse_models(" mobilenet_v2, vgg16 ,") == ["mobilenet_v2", "vgg16"]
    with pytest.raises(ConfigError, match="at least one model"):
        parse_models(" , ")
    with pytest.raises(ConfigError, match="vgg16 named more than once"):
        parse_models("vgg16,resnet50,vgg16")


def test_every_model_gets_the_same_data_split_and_phases(tmp_path):
    configs = model_configs(
        experiment(tmp_path), ["custom_cnn", "resnet50"], ["data.train_subset=100"]
    )
    assert [c.model.name for c in configs] == ["custom_cnn", "resnet50"]
    assert [c.name for c in configs] == ["cmp-custom_cnn", "cmp-resnet50"]
    a, b = (c.to_dict() for c in configs)
    for key in ("data", "phases", "seed"):
        assert a[key] == b[key]
    assert a["data"]["train_subset"] == 100


def test_unknown_model_stops_before_anything_trains(tmp_path, capsys):
    code = main(["compare", "smoke", "--models", "mobilenet_v2,vgg", "--out-dir", str(tmp_path)])
    assert code == 2
    assert "unknown model 'vgg'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_table_marks_random_weights_and_failures():
    context = {
        "experiment": "smoke",
        "command": "cifar compare smoke --models a,b,c",
        "seed": 42,
        "data": {"name": "CIFAR-10", "n_train": 540, "n_val": 60, "n_test": 300},
    }
    rows = [
        {"model": "mobilenet_v2", "weights": "imagenet", "input_size": 64, "accuracy": 0.5,
         "loss": 1.5, "params": 2_422_090, "fp16_bytes": 4_900_000, "latency_ms": 1.234,
         "training_seconds": 61.0, "run_dir": "runs/smoke-mobilenet_v2-1"},
        {"model": "resnet50", "weights": "imagenet", "input_size": 64,
         "error": "could not load ResNet50 weights from the Keras download | offline"},
        {"model": "vgg16", "weights": None, "input_size": 64, "accuracy": 0.1, "loss": 2.3,
         "params": 14_781_642, "fp16_error": "export failed", "training_seconds": 30.0},
    ]  # fmt: skip
    text = render_comparison(context, rows)
    lines = text.splitlines()
    assert "cifar compare smoke --models a,b,c" in text
    assert "540 training / 60 validation / 300 test images" in text
    assert (
        "| `mobilenet_v2` | ImageNet | 64x64 | 0.5000 | 1.5000 | 2,422,090 | 4.90 MB | "
        "1.23 ms | 1 min 1 s | `runs/smoke-mobilenet_v2-1` |" in lines
    )
    assert "| `resnet50` | ImageNet | 64x64 | not measured (1) | | | | | | - |" in lines
    header = next(line for line in lines if line.startswith("| Model |"))
    assert all(line.count("|") == header.count("|") for line in lines if line.startswith("| `"))
    # the reasons follow the table, each on one line; a | in a message cannot break anything
    assert (
        "1. `resnet50`: could not load ResNet50 weights from the Keras download / offline" in lines
    )
    assert "| `vgg16` | none (random initialisation) | 64x64 | 0.1000" in text
    assert "2. `vgg16` export: export failed" in lines and "| failed (2) |" in text
    assert "not a comparison of pretrained networks" in text


@pytest.mark.slow
def test_compare_trains_exports_and_tabulates(tmp_path):
    data = synthetic_data(200, 60)
    result = compare_models(
        experiment(tmp_path),
        ["custom_cnn", "mobilenet_v3_small"],
        out_dir=tmp_path / "cmp",
        command="cifar compare test",
        verify_n=60,
        data=data,
        log=lambda _m: None,
    )
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["custom_cnn", "mobilenet_v3_small"]
    for row in rows:
        assert "error" not in row and "fp16_error" not in row
        assert 0 <= row["accuracy"] <= 1 and row["params"] > 0 and row["training_seconds"] > 0
        assert row["fp16_bytes"] > 0 and row["latency_ms"] > 0
        assert (tmp_path / "runs").is_dir() and row["run_dir"].startswith(str(tmp_path / "runs"))
    assert rows[0]["accuracy"] > 0.2  # the synthetic classes are learnable in one epoch
    text = result.report.read_text()
    assert text.count("| `custom_cnn` |") == 1 and "mobilenet_v3_small" in text
