"""The generated report: numbers read back from the run's files, plots, HTML, TensorBoard, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import CIFAR_DIR, HAVE_CIFAR, requires_cifar

from cifar.cli import main as cli_main
from cifar.errors import CifarError
from cifar.evaluation import evaluate_and_save
from cifar.report import REPORT_HTML, RunFiles, dataset_name, finalize_run, log_to_tensorboard
from exports.metadata import build_metadata

REPORT_IMAGES = {"training_curves", "test_confusion_matrix", "per_class_f1", "misclassified"}


def expected_images(run_dir: Path) -> set[str]:
    """The report's charts; no misclassified grid when every test image is right."""
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    return REPORT_IMAGES - (set() if evaluation["most_confident_errors"] else {"misclassified"})


def read_image_tags(log_dir: Path) -> dict[str, list[int]]:
    """Image-summary tag -> steps, from the TensorBoard event files in ``log_dir``."""
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return {
        tag: [event.step for event in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "images"
    }


def make_run_dir(root: Path, trained_cnn, name: str = "cnn_two_phase-20250101-120000") -> Path:
    """A run directory as the Trainer writes it, around the ``trained_cnn`` fixture's model.

    config.json is a real resolved TrainConfig (same data and subsets as ``small_data``), the
    two-phase history and phase summaries are fabricated, the test metrics are computed.
    """
    from cifar.config import load_config
    from cifar.data.samples import plot_sample_grid

    model, data = trained_cnn
    run_dir = root / name
    run_dir.mkdir(parents=True)
    config = load_config(
        "custom_cnn",
        [
            f'data.data_dir="{CIFAR_DIR}"',
            "data.train_subset=2000",
            "data.test_subset=500",
            "seed=0",
        ],
    ).to_dict()
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))
    (run_dir / "labels.txt").write_text("\n".join(data.class_names) + "\n")
    model.save(run_dir / "best_model.keras")
    plot_sample_grid(data.x_train, data.y_train, data.class_names, run_dir / "samples.png")
    history = [
        {
            "epoch": e,
            "phase": "warmup" if e <= 3 else "full",
            "phase_index": int(e > 3),
            "phase_epoch": e if e <= 3 else e - 3,
            "loss": 2.0 - 0.1 * e,
            "accuracy": 0.25 + 0.04 * e,
            "val_loss": 1.9 - 0.08 * e,
            "val_accuracy": 0.28 + 0.03 * e,
            "learning_rate": 1e-3 if e <= 3 else 1e-4,
            "seconds": 3.0,
        }
        for e in range(1, 6)
    ]
    (run_dir / "history.json").write_text(json.dumps(history))
    n_params = int(model.count_params())
    phase = {
        "optimizer": "adam",
        "schedule": "constant",
        "trainable_params": n_params,
        "non_trainable_params": 0,
        "trainable_layers": 5,
        "total_layers": 12,
    }
    metrics = {
        "name": "cnn_two_phase",
        "run_dir": str(run_dir),
        "finished_at": "2025-01-01T12:05:00",
        "model": {
            "name": "custom_cnn",
            "input_size": 32,
            "source_size": 32,
            "weights": None,
            "total_params": n_params,
            "layers": 12,
        },
        "data": {
            "dataset": "cifar10",
            "source": data.source,
            "class_names": data.class_names,
            "n_train": 1800,
            "n_val": 200,
            "n_test": len(data.y_test),
        },
        "phases": [
            {
                **phase,
                "name": "warmup",
                "policy": "all",
                "learning_rate": 0.001,
                "max_epochs": 3,
                "epochs_run": 3,
                "stop_reason": "reached the maximum of 3 epochs",
                "best_epoch": 3,
                "best_val_loss": 1.66,
                "seconds": 9.5,
            },
            {
                **phase,
                "name": "full",
                "policy": "all",
                "learning_rate": 0.0001,
                "max_epochs": 8,
                "epochs_run": 2,
                "stop_reason": "early stopping: val_loss did not improve for 1 epochs",
                "best_epoch": 5,
                "best_val_loss": 1.5,
                "seconds": 6.25,
            },
        ],
        "training_seconds": 15.75,
    }
    metrics["test"] = evaluate_and_save(
        run_dir, model, data.x_test, data.y_test, data.class_names, image_size=32
    )
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return run_dir


def write_other_runs(root: Path) -> None:
    """A finished pretrained run and two folders that must not appear (unfinished, corrupt)."""
    other = root / "mobilenetv2_finetune-20250102-080000"
    other.mkdir()
    (other / "metrics.json").write_text(
        json.dumps(
            {
                "name": "mobilenetv2_finetune",
                "model": {"name": "mobilenet_v2", "input_size": 160, "weights": "imagenet"},
                "phases": [
                    {"name": "frozen", "epochs_run": 7},
                    {"name": "finetune", "epochs_run": 4},
                ],
                "training_seconds": 5400.0,
                "test": {"accuracy": 0.8123, "loss": 0.5432, "n": 10000},
            }
        )
    )
    (root / "unfinished-20250103-000000").mkdir()
    (root / "unfinished-20250103-000000" / "config.json").write_text("{}")
    (root / "corrupt-20250104-000000").mkdir()
    (root / "corrupt-20250104-000000" / "metrics.json").write_text("{not json")


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory, trained_cnn):
    root = tmp_path_factory.mktemp("runs")
    run_dir = make_run_dir(root, trained_cnn)
    write_other_runs(root)
    export = run_dir / "export"
    export.mkdir()
    (export / "model.onnx").write_bytes(b"\0" * 123_456)  # only its size is read
    (export / "labels.txt").write_text("\n".join(trained_cnn[1].class_names))
    check = {"n_images": 200, "split": "test", "keras": {"accuracy": 0.4411}}
    entry = {"format": "onnx", "file": "model.onnx", "accuracy": 0.4321, "agreement": 0.995}
    metadata = build_metadata({}, trained_cnn[1].class_names, 32, check, [entry])
    (export / "metadata.json").write_text(json.dumps({**metadata, "failed": {"tflite-int8": "x"}}))
    report = finalize_run(run_dir)
    return run_dir, report.read_text(), json.loads((run_dir / "metrics.json").read_text())


def table_value(markdown: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \| ([^|]+) \|", markdown, re.MULTILINE)
    assert match, f"no table row {label!r} in the report"
    return match.group(1).strip()


def test_report_quotes_the_test_metrics_from_metrics_json(reported_run):
    _, md, metrics = reported_run
    test = metrics["test"]
    for label, key in [
        ("Accuracy", "accuracy"),
        ("Loss (cross-entropy)", "loss"),
        ("Top-3 accuracy", "top3_accuracy"),
        ("Macro F1", "macro_f1"),
        ("Weighted F1", "weighted_f1"),
    ]:
        assert float(table_value(md, label)) == pytest.approx(test[key], abs=5e-5), label
    assert int(table_value(md, "Test images").replace(",", "")) == test["n"]


def test_report_has_per_class_metrics_from_evaluation_json(reported_run):
    run_dir, md, _ = reported_run
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    for name, m in evaluation["per_class"].items():
        row = re.search(rf"^\| {name} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|", md, re.M)
        assert row, name
        assert [float(v) for v in row.groups()[:3]] == pytest.approx(
            [m["precision"], m["recall"], m["f1"]], abs=5e-5
        )
        assert int(row.group(4)) == m["support"]
    if evaluation["confused_pairs"]:  # the synthetic stand-in may be classified perfectly
        top_pair = evaluation["confused_pairs"][0]
        assert f"| {top_pair['a']} / {top_pair['b']} | {top_pair['count']} |" in md
    else:
        assert "Most confused class pairs" not in md


def test_report_describes_data_model_and_phases(reported_run):
    _, md, metrics = reported_run
    source = metrics["data"]["source"]
    assert f"**Loaded from:** `{source}`" in md
    if HAVE_CIFAR:
        assert "CIFAR-10 (JPEG-q75 reconstruction)" in md
    assert f"{metrics['model']['total_params']:,} in total" in md
    for phase in metrics["phases"]:
        row = next(line for line in md.splitlines() if line.startswith(f"| {phase['name']} | adam"))
        assert f"| {phase['learning_rate']:g} |" in row
        assert f"| {phase['epochs_run']} / {phase['max_epochs']} |" in row
        assert phase["stop_reason"] in row
    # Best validation accuracy per phase, from history.json: 0.37 (epoch 3), 0.43 (epoch 5).
    assert "from 0.3700 (after `warmup`) to 0.4300 (+6.0 points)" in md


def test_report_compares_finished_runs_and_states_the_gain(reported_run):
    run_dir, md, metrics = reported_run
    assert f"| **`{run_dir.name}`** | custom_cnn @ 32px |" in md
    assert "| `mobilenetv2_finetune-20250102-080000` | mobilenet_v2 @ 160px | ImageNet |" in md
    assert "| 0.8123 | 0.5432 | 10,000 | 1 h 30 min |" in md
    assert "unfinished" not in md and "corrupt-" not in md
    diff = (metrics["test"]["accuracy"] - 0.8123) * 100
    assert "against 0.8123 for the best pretrained run" in md
    assert f"{diff:+.1f} points" in md
    assert "different numbers of images" in md  # 500 vs 10,000 test images


def test_report_lists_export_artefacts_with_sizes(reported_run):
    _, md, _ = reported_run
    assert "| `export/model.onnx` | onnx | 0.12 MB | 0.4321 | 99.50% | - | - |" in md
    assert "on 200 test images (Keras model on the same images: accuracy 0.4411)" in md
    assert "Failed exports: tflite-int8: x" in md
    assert "labels.txt` |" not in md
    assert "`best_model.keras`" in md


def test_every_plot_is_a_real_png_referenced_by_the_report(reported_run):
    from PIL import Image

    run_dir, md, _ = reported_run
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(p).stem for p in referenced} == expected_images(run_dir) | {"samples"}
    for rel in referenced:
        path = run_dir / rel
        assert path.stat().st_size > 10_000
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert min(pixels.shape[:2]) > 200 and pixels.std() > 10


def test_html_is_standalone_with_images_embedded(reported_run):
    run_dir, md, _ = reported_run
    html = (run_dir / REPORT_HTML).read_text()
    sources = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(sources) == len(re.findall(r"!\[", md)) == len(expected_images(run_dir)) + 1
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "<table>" in html and "<h2>Evaluation on the test set</h2>" in html


def test_plots_are_logged_to_tensorboard_once(reported_run):
    run_dir, *_ = reported_run
    log_dir = run_dir / "tensorboard" / "report"
    tags = read_image_tags(log_dir)
    assert expected_images(run_dir) | {"samples"} <= set(tags)
    assert tags["training_curves"] == [4]  # last epoch (5) at Keras's 0-based step
    plots = {path.stem: path for path in (run_dir / "plots").glob("*.png")}
    log_to_tensorboard(RunFiles.load(run_dir), plots)  # as `cifar report` again: no duplicates
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1
    assert read_image_tags(log_dir)["training_curves"] == [4]


def test_dataset_names():
    shared = "../shared/data/cifar-10-batches-py"  # as run records name it
    assert dataset_name(shared) == "CIFAR-10 (JPEG-q75 reconstruction)"
    assert dataset_name("data/cifar-10-batches-py") == "CIFAR-10"
    assert dataset_name("keras.datasets.cifar10 (download)").startswith("CIFAR-10")
    assert dataset_name("photos/pets", "folder") == "image folder"


def test_not_a_run_directory_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(CifarError, match="not a run directory"):
        finalize_run(tmp_path)
    assert cli_main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@requires_cifar
def test_cli_evaluate_reproduces_and_adds_an_export(tmp_path, trained_cnn, capsys):
    """``cifar evaluate`` reloads the data from config.json, the model from the run, or a file."""
    import tensorflow as tf

    from cifar.inference.keras_model import build_inference_model

    model, _ = trained_cnn
    run_dir = make_run_dir(tmp_path, trained_cnn)
    before = json.loads((run_dir / "metrics.json").read_text())["test"]
    (run_dir / "evaluation.json").unlink()

    assert cli_main(["evaluate", str(run_dir), "--batch-size", "100"]) == 0
    after = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert after["accuracy"] == pytest.approx(before["accuracy"])
    assert after["loss"] == pytest.approx(before["loss"], rel=1e-5)
    assert (run_dir / "evaluation.json").is_file() and (run_dir / "REPORT.md").is_file()

    export = run_dir / "export"
    build_inference_model(model).export(export / "saved", format="tf_saved_model", verbose=False)
    tflite = export / "model.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(export / "saved")).convert())
    assert cli_main(["evaluate", str(run_dir), "--model", str(tflite)]) == 0
    lite = json.loads((run_dir / "model_tflite_evaluation.json").read_text())["headline"]
    assert lite["model_kind"] == "tflite"
    assert abs(lite["accuracy"] - after["accuracy"]) <= 1 / after["n"] + 1e-9
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == after  # untouched
    md = (run_dir / "REPORT.md").read_text()
    assert f"| `model_tflite` | tflite | {lite['accuracy']:.4f} |" in md
    assert "| `export/model.tflite` | tflite |" in md
    assert f"| - | - | - | {lite['accuracy']:.4f} |" in md
    assert "| `export/saved/` | savedmodel |" in md
    capsys.readouterr()
    assert cli_main(["evaluate", str(run_dir), "--model", str(run_dir / "nope.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_trainer_run_ends_with_report_and_tensorboard_images(tmp_path, small_data):
    """The Trainer's run (two phases, 1 epoch each) ends with our evaluation, plots and report."""
    from cifar.config import load_config
    from cifar.trainer import Trainer

    config = load_config(
        {
            "name": "tiny",
            "runs_dir": str(tmp_path),
            "data": {"batch_size": 64},
            "model": {"name": "custom_cnn", "input_size": 32, "weights": "none"},
            "phases": [
                {"name": "warmup", "trainable": "all", "epochs": 1, "patience": 0},
                {"name": "full", "trainable": "all", "learning_rate": 1e-4, "epochs": 1},
            ],
            "callbacks": {"progress": False},
        }
    )
    metrics = Trainer(config, data=small_data.subset(train=400, test=100), verbose=0).fit()
    run_dir = Path(metrics["run_dir"])
    md = (run_dir / "REPORT.md").read_text()
    assert float(table_value(md, "Accuracy")) == pytest.approx(
        metrics["test"]["accuracy"], abs=5e-5
    )
    assert json.loads((run_dir / "evaluation.json").read_text())["headline"]["n"] == 100
    tb = run_dir / "tensorboard"
    from tensorboard.backend.event_processing import event_accumulator

    scalars = event_accumulator.EventAccumulator(str(tb / "train"), size_guidance={"tensors": 0})
    scalars.Reload()
    assert {"epoch_loss", "epoch_accuracy"} <= set(scalars.Tags()["tensors"])
    assert read_image_tags(tb)["confusion_matrix"] == [0, 1]  # one per global epoch
    assert set(read_image_tags(tb / "report")) >= expected_images(run_dir)


def test_report_states_the_input_size_the_run_recorded(tmp_path, trained_cnn):
    """A photo run decoded at 224 px: every size statement of the report says 224x224."""
    run_dir = make_run_dir(tmp_path, trained_cnn, "photos_224-20250101-120000")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["model"].update(input_size=224, source_size=224)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    text = finalize_run(run_dir).read_text()
    assert "they take raw 224x224 RGB images" in text
    assert "kept as uint8 at 224x224" in text
    assert "32x32" not in text


def test_cli_evaluate_a_run_trained_on_several_workers(tmp_path, trained_cnn, monkeypatch):
    """Evaluating is one process: a run trained with strategy multiworker needs no TF_CONFIG."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    run_dir = make_run_dir(tmp_path, trained_cnn)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "strategy": "multiworker"}))
    before = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert cli_main(["evaluate", str(run_dir)]) == 0
    after = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert after["accuracy"] == pytest.approx(before["accuracy"])
    assert json.loads((run_dir / "config.json").read_text())["strategy"] == "multiworker"


def test_cli_report_on_a_full_disk_is_one_line(tmp_path, trained_cnn, capsys):
    """REPORT.md lands on /dev/full (ENOSPC): the CLI's last resort prints one line, exit 2."""
    run_dir = make_run_dir(tmp_path, trained_cnn)
    (run_dir / "REPORT.md").symlink_to("/dev/full")
    assert cli_main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "No space left on device" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
