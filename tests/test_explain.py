"""Heatmaps: they find what decides the class, across the nested backbone, from a .keras file."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from cifar.errors import ModelError
from cifar.explain.cam import class_heatmaps
from cifar.explain.explainer import Explainer, keras_model_file
from cifar.explain.split import split_at_feature_map

SIZE, HALF, PATCH, MARGIN = 64, 32, 12, 4
# Class 0: a bright square somewhere in the top-left quadrant; class 1: in the bottom-right.
CLASS_QUADRANT = (0, 3)
MIN_MASS, MIN_HIT_RATE = 0.6, 0.9


def quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images whose class is decided only by where a bright square sits: (x, y, quadrant)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(128, 30, (n, SIZE, SIZE, 3))
    y = rng.integers(0, 2, n)
    quadrant = np.asarray(CLASS_QUADRANT)[y]
    for i, q in enumerate(quadrant):
        top = (q // 2) * HALF + rng.integers(MARGIN, HALF - PATCH - MARGIN + 1)
        left = (q % 2) * HALF + rng.integers(MARGIN, HALF - PATCH - MARGIN + 1)
        x[i, top : top + PATCH, left : left + PATCH] = 235 + rng.normal(0, 10, (PATCH, PATCH, 3))
    return np.clip(x, 0, 255).astype(np.uint8), y, quadrant


def nested_classifier() -> keras.Model:
    """Scaling, a nested ``backbone`` model, then a head, as the registry builds them; the head
    flattens, so position is something the model can learn."""
    inner = keras.Input((SIZE, SIZE, 3))
    x = inner
    for filters in (16, 32, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    backbone = keras.Model(inner, x, name="backbone")
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = backbone(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs)


def train_and_save(x, y, path) -> str:
    keras.utils.set_random_seed(0)
    model = nested_classifier()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=True)
    model.save(path)
    return str(path)


def quadrant_mass(heatmap: np.ndarray, quadrant: int) -> float:
    """Share of the heatmap's total mass inside one quadrant (0 TL, 1 TR, 2 BL, 3 BR)."""
    top, left = (quadrant // 2) * HALF, (quadrant % 2) * HALF
    return float(heatmap[top : top + HALF, left : left + HALF].sum() / max(heatmap.sum(), 1e-12))


def hit_rate(model_file: str, x: np.ndarray, quadrant: np.ndarray) -> float:
    results = Explainer.load(model_file).explain_pixels(x)
    assert all(r.heatmap.shape == (SIZE, SIZE) for r in results)
    assert all(r.heatmap.min() >= 0.0 and r.heatmap.max() <= 1.0 for r in results)
    masses = [quadrant_mass(r.heatmap, q) for r, q in zip(results, quadrant, strict=True)]
    return float(np.mean(np.asarray(masses) >= MIN_MASS))


def test_heatmaps_land_on_the_deciding_patch_and_a_shuffled_label_control_fails(tmp_path):
    x_train, y_train, _ = quadrant_images(512, seed=0)
    x_test, y_test, quadrant = quadrant_images(100, seed=1)
    trained = train_and_save(x_train, y_train, tmp_path / "trained.keras")
    shuffled = np.random.default_rng(2).permutation(y_train)
    control = train_and_save(x_train, shuffled, tmp_path / "control.keras")

    accuracy = np.mean(Explainer.load(trained).model.predict(x_test, verbose=0).argmax(1) == y_test)
    assert accuracy >= 0.95
    assert hit_rate(trained, x_test, quadrant) >= MIN_HIT_RATE
    control_rate = hit_rate(control, x_test, quadrant)
    assert control_rate < MIN_HIT_RATE, f"the control passes too ({control_rate:.0%})"


@pytest.fixture(scope="module")
def mobilenet():
    keras.utils.set_random_seed(0)
    from cifar.models import create_model

    return create_model("mobilenet_v2", num_classes=3, input_size=96, weights=None)


def test_a_registry_model_is_cut_at_its_nested_backbone(mobilenet):
    import tensorflow as tf

    split = split_at_feature_map(mobilenet)
    assert split.layer_name == "backbone"
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)
    maps = split.features(x, training=False)
    assert tuple(maps.shape) == (2, 3, 3, 1280)
    _, probs = split.scores(maps)
    np.testing.assert_allclose(probs, mobilenet(x, training=False), atol=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        logits, _ = split.scores(maps)
        score = logits[:, 0]
    grads = tape.gradient(score, maps).numpy()
    assert np.count_nonzero(grads) > 0.5 * grads.size


def test_registry_model_heatmaps_have_the_input_size_and_range(mobilenet):
    x = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    explainer = Explainer(mobilenet, ["a", "b", "c"], source_size=32)
    results = explainer.explain_pixels(x, classes=[0, 1, 2])
    for i, result in enumerate(results):
        assert result.image.shape == (96, 96, 3) and result.heatmap.shape == (96, 96)
        assert result.heatmap.dtype == np.float32
        assert result.heatmap.min() >= 0.0 and result.heatmap.max() == pytest.approx(1.0, abs=0.02)
        assert result.class_index == i and result.explained_class == "abc"[i]
        assert result.overlay().shape == (96, 96, 3)
    # Behind global average pooling the gradient is equal at every position: HiResCAM == Grad-CAM.
    pixels = np.asarray(keras.layers.Resizing(96, 96)(x.astype(np.float32)))
    hires, _ = class_heatmaps(explainer.split, pixels, 1, "hirescam")
    grad, _ = class_heatmaps(explainer.split, pixels, 1, "gradcam")
    np.testing.assert_allclose(hires, grad, atol=1e-4)


@pytest.mark.parametrize("name", ["custom_cnn", "mobilenet_v3_small"])
def test_other_registry_layouts_are_cut_before_their_head(name):
    from cifar.models import create_model

    model = create_model(name, num_classes=4, input_size=64, weights=None)
    split = split_at_feature_map(model)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    maps = split.features(x, training=False)
    assert len(maps.shape) == 4
    np.testing.assert_allclose(split.scores(maps)[1], model(x, training=False), atol=1e-5)


def test_photos_are_decoded_and_a_named_class_is_explained(tmp_path):
    from PIL import Image

    from cifar.models import create_model

    model = create_model("custom_cnn", num_classes=3, input_size=32)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.full((50, 80, 3), 90, np.uint8)).save(photo)
    explainer = Explainer(model, ["cat", "dog", "fox"])
    (result,) = explainer.explain([str(photo)], class_name="fox")
    assert result.class_index == 2 and result.image.shape == (32, 32, 3)
    saved = result.save_overlay(tmp_path / "out" / "photo_heatmap.png")
    assert Image.open(saved).size == (32, 32)
    with pytest.raises(ModelError, match="unknown class 'wolf'.*cat, dog, fox"):
        explainer.explain([str(photo)], class_name="wolf")


def test_only_a_keras_file_or_run_folder_can_be_explained(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"TFL3")
    with pytest.raises(ModelError, match="a heatmap needs the .keras file.*TFLite"):
        keras_model_file(tmp_path / "model.tflite")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(ModelError, match="a heatmap needs the .keras file.*ONNX"):
        keras_model_file(tmp_path / "model.onnx")
    with pytest.raises(ModelError, match="does not exist"):
        keras_model_file(tmp_path / "missing.keras")
    (tmp_path / "best_model.keras").write_bytes(b"")
    assert keras_model_file(tmp_path) == tmp_path / "best_model.keras"


# ---------------------------------------------------------------- cifar explain


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A run folder as the Trainer leaves it: best_model.keras, labels.txt, config.json."""
    from cifar.models import create_model

    run = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    create_model("custom_cnn", num_classes=3, input_size=32).save(run / "best_model.keras")
    (run / "labels.txt").write_text("apple\nlime\nplum\n")
    (run / "config.json").write_text("{}")
    return run


def write_photos(folder, names):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for name in names:
        pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
        paths.append(str(folder / name))
    return paths


def test_cli_writes_one_overlay_and_one_line_per_photo(small_run, tmp_path, capsys):
    from PIL import Image

    from cifar.cli import main

    photos = write_photos(tmp_path, ["a.png", "b.jpg"])
    assert main(["explain", str(small_run), *photos]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for photo, line in zip(photos, lines, strict=True):
        overlay = small_run / "explain" / f"{Path(photo).stem}_heatmap.png"
        assert line.startswith(f"{photo}: ") and line.endswith(f"-> {overlay}")
        assert any(f" {name} " in line for name in ("apple", "lime", "plum")) and "%" in line
        assert Image.open(overlay).size == (32, 32)

    out = tmp_path / "chosen"
    args = ["explain", str(small_run / "best_model.keras"), photos[0], "--out", str(out)]
    assert main([*args, "--class", "plum"]) == 0
    line = capsys.readouterr().out.strip()
    assert (out / "a_heatmap.png").is_file() and line.endswith(f"-> {out / 'a_heatmap.png'}")
    assert "heatmap of plum" in line or line.split(": ")[1].startswith("plum ")


def test_cli_refuses_exported_files_and_names_bad_photos(small_run, tmp_path, capsys):
    from cifar.cli import main

    (good,) = write_photos(tmp_path, ["good.png"])
    tflite = tmp_path / "model_float16.tflite"
    tflite.write_bytes(b"TFL3")
    assert main(["explain", str(tflite), good]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a heatmap needs the .keras file" in err
    assert "TFLite" in err and "Traceback" not in err

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["explain", str(small_run), str(broken), good, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().startswith(f"error: {broken}: ")
    assert captured.out.startswith(f"{good}: ") and (out / "good_heatmap.png").is_file()
    assert main(["explain", str(small_run), good, "--class", "pear"]) == 2
    assert "unknown class 'pear'" in capsys.readouterr().err
