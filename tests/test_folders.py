"""Image folders of your own photos: layouts, bad input, decoding once, training end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import COLOURS, HAVE_WEIGHTS, SHARED, WEIGHTS, make_folder, photo
from PIL import Image

from cifar.config import load_config
from cifar.data import detect_dataset, load_image_folder
from cifar.data.folder_layout import scan_folder
from cifar.errors import DataError
from cifar.trainer import Trainer

CATS_DOGS = SHARED / "data" / "cats_and_dogs_filtered"


def load(root, tmp_path, **kw):
    return load_image_folder(root, image_size=24, cache_dir=tmp_path / "cache", log=print, **kw)


# ------------------------------------------------------------------ layouts


def test_class_folders_at_the_model_size_with_a_carved_test_set(tmp_path):
    root = make_folder(tmp_path / "fruit")
    (root / ".DS_Store").write_bytes(b"\0junk")
    (root / "LICENSE.txt").write_text("CC-BY")
    (root / "apples" / "notes.txt").write_text("not an image")
    (root / "apples" / "convert.py").write_text("print(1)")
    data = load(root, tmp_path)
    assert data.class_names == ["apples", "grapes", "limes"]
    assert data.x_train.shape[1:] == (24, 24, 3) and data.x_train.dtype == np.uint8
    assert len(data.y_train) + len(data.y_test) == 18
    assert set(data.y_test.tolist()) == {0, 1, 2}
    # hidden files (.DS_Store, ._ files) count too: a user wonders where they went
    assert data.extra["layout"] == "classes" and data.extra["ignored_files"] == 4
    assert data.extra["ignored_examples"][0] == ".DS_Store"
    # grayscale, palette and alpha photos all decode to RGB in their class colour
    red = data.x_train[data.y_train == 0].reshape(-1, 3).mean(0)
    assert red[0] > 150 and red[1] < 80


@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_train_and_validation_folders_test_on_validation(tmp_path, val_name):
    make_folder(tmp_path / "ds" / "train", per_class=5)
    make_folder(tmp_path / "ds" / val_name, per_class=3, seed=7)
    data = load(tmp_path / "ds", tmp_path)
    # No test folder: the validation folder is the reported test set, never early stopping's.
    assert (len(data.y_train), len(data.y_test)) == (15, 9)
    assert data.val_idx is None
    assert data.extra["test_source"].startswith(f"the {val_name}/ folder")
    assert "carved from train/" in data.extra["val_source"]


def test_train_val_test_folders_use_each_for_its_role(tmp_path):
    make_folder(tmp_path / "ds" / "train", per_class=5)
    make_folder(tmp_path / "ds" / "val", per_class=2, seed=5)
    make_folder(tmp_path / "ds" / "test", per_class=3, seed=9)
    data = load(tmp_path / "ds", tmp_path)
    assert (len(data.y_train), len(data.y_test)) == (21, 9)
    assert len(data.val_idx) == 6 and sorted(np.bincount(data.y_train[data.val_idx])) == [2, 2, 2]
    cfg = load_config({"runs_dir": str(tmp_path / "runs"), "model": {"name": "custom_cnn"}})
    trainer = Trainer(cfg, data=data)
    d = trainer.build_datasets()
    assert np.array_equal(d.val_idx, data.val_idx) and len(d.train_idx) == 15


def test_train_and_test_folders(tmp_path):
    make_folder(tmp_path / "ds" / "train", per_class=4)
    make_folder(tmp_path / "ds" / "test", per_class=2, seed=3)
    data = load(tmp_path / "ds", tmp_path)
    assert (len(data.y_train), len(data.y_test)) == (12, 6)
    assert data.extra["layout"] == "train+test"


# ------------------------------------------------------------------ bad input


def test_unreadable_images_are_listed_or_skipped_with_the_option(tmp_path):
    root = make_folder(tmp_path / "fruit")
    (root / "grapes" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / "limes" / "empty.png").write_bytes(b"")
    with pytest.raises(DataError) as err:
        load(root, tmp_path)
    message = str(err.value)
    assert "2 unreadable image file(s)" in message and "skip_bad_images" in message
    assert str(root / "grapes" / "broken.jpg") in message
    assert str(root / "limes" / "empty.png") in message
    logs = []
    data = load_image_folder(
        root, image_size=24, cache_dir=tmp_path / "cache", skip_bad=True, log=logs.append
    )
    assert len(data.y_train) + len(data.y_test) == 18
    assert len(data.extra["skipped_unreadable"]) == 2
    assert any("skipping 2 unreadable" in m for m in logs)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: (r / "pears").mkdir(), r"class folder\(s\) with no images.*pears/"),
        (
            lambda r: [p.unlink() for p in sorted((r / "limes").iterdir())[1:]],
            r"at least 3 images.*limes/ \(1\)",
        ),
    ],
    ids=["empty-class", "one-image-class"],
)
def test_folder_mistakes_get_a_clear_message(tmp_path, mutate, message):
    root = make_folder(tmp_path / "fruit")
    mutate(root)
    with pytest.raises(DataError, match=message):
        load(root, tmp_path)


def test_split_folders_must_agree_and_make_sense(tmp_path):
    make_folder(tmp_path / "a" / "train")
    make_folder(tmp_path / "a" / "test", classes={"apples": (1, 2, 3), "kiwis": (9, 9, 9)})
    with pytest.raises(DataError, match=r"missing: \['grapes', 'limes'\].*not in train: \['kiwis'"):
        scan_folder(tmp_path / "a")
    make_folder(tmp_path / "b" / "val")
    with pytest.raises(DataError, match="no train/ folder"):
        scan_folder(tmp_path / "b")


def test_detect_dataset_names_what_it_looked_for(tmp_path, capsys):
    from cifar.cli import main

    make_folder(tmp_path / "photos")
    assert detect_dataset(tmp_path / "photos") == "folder"
    (tmp_path / "pickles").mkdir()
    (tmp_path / "pickles" / "test_batch").write_bytes(b"x")
    assert detect_dataset(tmp_path / "pickles") == "cifar10"
    (tmp_path / "neither" / "docs").mkdir(parents=True)
    (tmp_path / "neither" / "docs" / "a.txt").write_text("hi")
    assert main(["train", "smoke", "--data-dir", str(tmp_path / "neither")]) == 2
    err = capsys.readouterr().err
    assert "neither a CIFAR-10 'cifar-10-batches-py' folder" in err and "root/<class>" in err


# ------------------------------------------------------------------ decoding once


def test_second_load_reads_the_store_and_a_changed_file_rebuilds_it(tmp_path):
    root = make_folder(tmp_path / "fruit")
    logs = []
    first = load_image_folder(root, 24, cache_dir=tmp_path / "c", log=logs.append)
    assert any(m.startswith("data: decoded 18/18") for m in logs)
    assert isinstance(first.x_train, np.memmap) or isinstance(first.x_train.base, np.memmap)
    logs.clear()
    again = load_image_folder(root, 24, cache_dir=tmp_path / "c", log=logs.append)
    assert not any(m.startswith("data: decoded") for m in logs)
    assert any("reusing" in m for m in logs)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    photo(root / "limes" / "limes_0.jpg", (255, 255, 0), seed=99)  # edited photo
    logs.clear()
    load_image_folder(root, 24, cache_dir=tmp_path / "c", log=logs.append)
    assert any(m.startswith("data: decoded 18/18") for m in logs)
    assert load_image_folder(root, 32, cache_dir=tmp_path / "c", log=logs.append).image_shape == (
        32,
        32,
        3,
    )


def test_photos_keep_their_aspect_ratio_by_centre_crop(tmp_path):
    # A wide photo: red left third, green middle, blue right third. Centre-cropping a 3:1
    # image to a square keeps the middle (green) only; squeezing would keep all three.
    pixels = np.zeros((40, 120, 3), np.uint8)
    pixels[:, :40, 0] = pixels[:, 40:80, 1] = pixels[:, 80:, 2] = 255
    for c, cls in enumerate(("a", "b")):
        for i in range(3):
            (tmp_path / "f" / cls).mkdir(parents=True, exist_ok=True)
            pixels[0, 0, 0] = 10 * i + c  # distinct files: identical ones would be refused
            Image.fromarray(pixels).save(tmp_path / "f" / cls / f"{i}.png")
    data = load(tmp_path / "f", tmp_path, test_fraction=0.34)
    mean = data.x_train[0].reshape(-1, 3).mean(0)
    assert mean[1] > 200 and mean[0] < 30 and mean[2] < 30


# ------------------------------------------------------------------ end to end


def test_train_export_and_predict_on_a_folder(tmp_path, capsys):
    """`cifar train --data-dir` on a folder -> report, labels, TFLite and predictions by name."""
    from cifar.cli import main
    from cifar.inference.predictor import Predictor
    from exports import Exporter

    root = make_folder(tmp_path / "fruit", per_class=12)
    cfg = load_config(
        {
            "name": "fruit",
            "runs_dir": str(tmp_path / "runs"),
            "data": {"data_dir": str(root), "batch_size": 8, "class_weight": "balanced"},
            "model": {"name": "custom_cnn", "input_size": 40},
            "phases": [{"name": "scratch", "trainable": "all", "epochs": 3, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "progress": False},
        }
    )
    trainer = Trainer(cfg)
    metrics = trainer.fit()
    run = trainer.run_dir
    assert metrics["model"]["source_size"] == 40
    assert metrics["data"]["dataset"] == "folder" and metrics["data"]["layout"] == "classes"
    assert metrics["data"]["class_names"] == ["apples", "grapes", "limes"]
    assert metrics["test"]["accuracy"] > 0.6  # three well-separated colours
    assert (run / "labels.txt").read_text().split() == ["apples", "grapes", "limes"]
    report = (run / "REPORT.md").read_text()
    assert "the test figure comes from a stratified split carved from the class folders" in report
    assert "apples" in report
    Exporter(run, verify_n=10, log=None).export(["tflite"])
    meta = json.loads((run / "export" / "metadata.json").read_text())
    assert meta["source"]["source_size"] == 40
    # A new full-size photo, classified by the exported file with the folder's class names.
    photo(tmp_path / "new.jpg", COLOURS["limes"], size=(300, 200), seed=4242)
    for model in (run / "export" / "model_float32.tflite", run / "best_model.keras"):
        predictor = Predictor.load(model)
        assert predictor.input_size == 40
        assert predictor.predict_one(tmp_path / "new.jpg").label == "limes"
    assert main(["data", "--data-dir", str(root), "--out", str(tmp_path / "d" / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "layout: classes" in out and "apples" in out


def test_balanced_class_weights_follow_the_counts(tmp_path):
    root = make_folder(tmp_path / "fruit", per_class=4)
    for i in range(4, 16):
        photo(root / "apples" / f"more_{i}.jpg", COLOURS["apples"], seed=500 + i)
    cfg = load_config(
        {
            "runs_dir": str(tmp_path / "runs"),
            "data": {"data_dir": str(root), "class_weight": "balanced"},
            "model": {"name": "custom_cnn"},
        }
    )
    trainer = Trainer(cfg)
    trainer.prepare()
    weights = trainer.class_weights()
    y = trainer.datasets.data.y_train[trainer.datasets.train_idx]
    counts = np.bincount(y)
    expected = len(y) / (3 * counts)
    assert [weights[i] for i in range(3)] == pytest.approx(expected.tolist())
    assert weights[0] < weights[1]


@pytest.mark.slow
@pytest.mark.skipif(not CATS_DOGS.is_dir(), reason=f"real photos not found at {CATS_DOGS}")
def test_real_photos_in_train_validation_layout(tmp_path):
    """A hundred real cat and dog photos: frozen ImageNet MobileNetV2 tells them apart."""
    import shutil

    for split, first, n in (("train", 0, 30), ("validation", 2000, 20)):
        for cls in ("cats", "dogs"):
            (tmp_path / "pets" / split / cls).mkdir(parents=True)
            for i in range(first, first + n):
                name = f"{cls[:-1]}.{i}.jpg"
                shutil.copy(CATS_DOGS / split / cls / name, tmp_path / "pets" / split / cls / name)
    cfg = load_config(
        {
            "name": "pets",
            "runs_dir": str(tmp_path / "runs"),
            "report": False,
            "data": {"data_dir": str(tmp_path / "pets"), "batch_size": 16, "val_fraction": 0.2},
            "model": {"input_size": 128, "weights": str(WEIGHTS) if HAVE_WEIGHTS else None},
            "phases": [{"name": "frozen", "trainable": "frozen_base", "epochs": 25, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "progress": False},
        }
    )
    metrics = Trainer(cfg).fit()
    assert metrics["data"]["n_test"] == 40 and metrics["model"]["source_size"] == 128
    assert metrics["data"]["test_source"].startswith("the validation/ folder")
    if HAVE_WEIGHTS:  # 60 training photos: well above chance (0.5), not a tuned figure
        assert metrics["test"]["accuracy"] >= 0.75


def test_demo_examples_of_a_class_folder_run_are_its_test_photos(tmp_path):
    """root/<class>: the test split is carved from the class folders, and the demo's "test
    image" examples must come from it, never from the photos the model trained on."""
    from cifar.imageio import load_image
    from cifar.serving.examples import write_examples

    root = make_folder(tmp_path / "fruit", per_class=10)
    cfg = load_config(
        {
            "name": "fruit",
            "runs_dir": str(tmp_path / "runs"),
            "report": False,
            "data": {"data_dir": str(root), "batch_size": 8, "test_fraction": 0.3},
            "model": {"name": "custom_cnn", "input_size": 32},
            "phases": [{"name": "scratch", "trainable": "all", "epochs": 1, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "progress": False},
        }
    )
    trainer = Trainer(cfg)
    trainer.fit()
    data = trainer.datasets.data
    lines = []
    paths = write_examples(tmp_path / "ex", run_dir=trainer.run_dir, per_class=3, log=lines.append)
    assert len(paths) == 9 and not lines  # 3 test photos of each class, nothing to explain

    def found_in(pixels, images) -> bool:
        return bool((images.reshape(len(images), -1) == pixels.reshape(1, -1)).all(1).any())

    for path in paths:
        pixels = load_image(path, 32)
        assert found_in(pixels, data.x_test), f"{path.name} is not a test image"
        assert not found_in(pixels, data.x_train), f"{path.name} is a training photo"


def test_demo_examples_of_an_old_run_are_its_test_split_again(tmp_path):
    """A run from before test_files.json: its test split is derived again from its config."""
    from cifar.serving.examples import write_examples

    make_folder(tmp_path / "ds" / "train", per_class=4)
    make_folder(tmp_path / "ds" / "test", per_class=2, seed=3)
    run = tmp_path / "run"
    run.mkdir()
    data = {"dataset": "folder", "source": str(tmp_path / "ds")}
    (run / "metrics.json").write_text(json.dumps({"data": data}))
    (run / "config.json").write_text(json.dumps({"seed": 42, "data": {"test_fraction": 0.2}}))
    lines = []
    paths = write_examples(tmp_path / "examples", run_dir=run, per_class=1, log=lines.append)
    assert any("re-derived from config.json" in line for line in lines)
    assert [p.name for p in paths] == ["00_apples.jpg", "01_grapes.jpg", "02_limes.jpg"]
    originals = [tmp_path / "ds" / "test" / c / f"{c}_0.jpg" for c in ("apples", "grapes", "limes")]
    assert [p.read_bytes() for p in paths] == [o.read_bytes() for o in originals]
