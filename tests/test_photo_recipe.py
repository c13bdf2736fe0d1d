"""The photo recipe: default choice, random-resized crops and colour, stored size, TTA."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_folder

from cifar.config import load_config
from cifar.data import tta
from cifar.data.augment import AugmentConfig, Augmenter, crop_boxes, jitter_colour
from cifar.errors import ConfigError


def _key(i: int = 0) -> tf.Tensor:
    return tf.constant([7, i], tf.int64)


# ---------------------------------------------------------------- the default recipe


def test_no_experiment_picks_the_photo_recipe_for_a_folder(tmp_path, capsys):
    from cifar.commands.train import PHOTO_RECIPE, REFERENCE_RECIPE, default_experiment

    folder = make_folder(tmp_path / "photos", per_class=3)
    assert default_experiment(str(folder)) == PHOTO_RECIPE == "photos"
    assert "the default for an image folder" in capsys.readouterr().out
    assert default_experiment(None) == REFERENCE_RECIPE == "mobilenetv2_finetune"
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    (cifar / "data_batch_1").write_bytes(b"")
    assert default_experiment(str(cifar)) == REFERENCE_RECIPE
    # The photo recipe is a valid configuration whose augmentation can be cached.
    config = load_config(PHOTO_RECIPE, [f'data.data_dir="{folder}"'])
    aug = config.data.augment
    assert config.model.input_size == 224 and config.data.stored_size > 224
    assert aug.crop_scale > 0 and aug.cached_views > 1 and not aug.mixes_batches
    assert config.model.head_units == 0  # a linear head on the pooled features


def test_new_keys_are_validated():
    with pytest.raises(ConfigError, match="data.augment.crop_scale"):
        load_config(None, ["data.augment.crop_scale=1.5"])
    with pytest.raises(ConfigError, match="data.stored_size"):
        load_config(None, ["data.stored_size=8"])
    with pytest.raises(ConfigError, match="warmup_epochs"):
        load_config(None, ["phases.1.warmup_epochs=2"])  # constant schedule: no warm-up


def test_warmup_then_cosine_schedule():
    config = load_config(
        None, ['phases.1.schedule="cosine"', "phases.1.warmup_epochs=1", "phases.1.epochs=4"]
    )
    lr = config.phases[1].make_optimizer(steps_per_epoch=10).learning_rate
    # The optimizer's learning rate follows the schedule at its iteration count.
    schedule = config.phases[1].make_optimizer(10)._learning_rate
    values = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    peak = config.phases[1].learning_rate
    assert values[0] == 0.0 and values[1] == pytest.approx(peak / 2)
    assert values[2] == pytest.approx(peak) and values[2] > values[3] > values[4] >= 0
    assert lr is not None


# ---------------------------------------------------------------- augmentation


def test_crop_boxes_stay_inside_the_stored_image():
    boxes = crop_boxes(2000, 0.25, 4 / 3, _key()).numpy()
    y0, x0, y1, x1 = boxes.T
    assert (y0 >= 0).all() and (x0 >= 0).all() and (y1 <= 1 + 1e-6).all() and (x1 <= 1 + 1e-6).all()
    h, w = y1 - y0, x1 - x0
    area, ratio = h * w, w / h
    assert area.min() >= 0.25 * 0.74 and area.max() <= 1 + 1e-6  # cut sides shrink the area
    assert ratio.min() >= 3 / 4 - 1e-4 and ratio.max() <= 4 / 3 + 1e-4
    assert area.std() > 0.1  # scales are spread, not all the same
    np.testing.assert_array_equal(boxes, crop_boxes(2000, 0.25, 4 / 3, _key()).numpy())


def test_random_resized_crops_come_out_at_the_input_size_from_a_larger_store():
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (8, 48, 48, 3)).astype("float32")
    aug = Augmenter(AugmentConfig(crop_scale=0.3, flip=True, color=0.2), seed=1)
    out = aug.images(tf.constant(stored), _key(3), 32).numpy()
    assert out.shape == (8, 32, 32, 3)
    assert out.min() >= 0 and out.max() <= 255
    again = aug.images(tf.constant(stored), _key(3), 32).numpy()
    np.testing.assert_array_equal(out, again)  # the batch key decides every draw
    other = aug.images(tf.constant(stored), _key(4), 32).numpy()
    assert np.abs(out - other).mean() > 1


def test_a_full_crop_of_a_flat_image_keeps_its_colour_and_jitter_stays_in_range():
    flat = np.full((4, 40, 40, 3), 100.0, np.float32)
    aug = Augmenter(AugmentConfig(crop_scale=0.5), seed=0)
    np.testing.assert_allclose(aug.images(tf.constant(flat), _key(), 24).numpy(), 100.0, atol=1e-3)
    bright = np.full((64, 4, 4, 3), 250.0, np.float32)
    jittered = jitter_colour(tf.constant(bright), 0.4, _key()).numpy()
    assert jittered.min() >= 0 and jittered.max() <= 255 and jittered.std() > 1


def test_photos_stored_larger_than_the_input(tmp_path):
    from cifar.data.sources import load_dataset

    folder = make_folder(tmp_path / "photos", per_class=4)
    config = load_config(
        None, [f'data.data_dir="{folder}"', "data.stored_size=40", "model.input_size=32"]
    )
    data = load_dataset(config.data, 32, 0, tmp_path / "cache", log=lambda m: None)
    assert data.x_train.shape[1:] == (40, 40, 3)


# ---------------------------------------------------------------- test-time augmentation


def _tiny_model(size: int = 24):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_tta_is_the_mean_of_its_views():
    from cifar.evaluation import predict_images, predict_tta

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (10, 30, 30, 3), dtype=np.uint8)
    model = _tiny_model(24)
    for n in (2, 4):
        got = predict_tta(model, images, 24, n, batch_size=4)
        mirror = images[:, :, ::-1]
        by_hand = [images, mirror]
        if n == 4:
            c = tta.CROP
            m = (1 - c) / 2
            boxes = np.repeat([[m, m, m + c, m + c]], len(images), 0).astype("float32")
            crop = tf.image.crop_and_resize(
                images.astype("float32"), boxes, np.arange(len(images), dtype="int32"), (30, 30)
            ).numpy()
            crop = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
            by_hand += [crop, crop[:, :, ::-1]]
        expected = np.mean([predict_images(model, v, 24) for v in by_hand], axis=0)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    single = predict_images(model, images, 24)
    assert np.abs(predict_tta(model, images, 24, 2) - single).max() > 1e-4  # views matter
    assert tta.view_names(3) == ["image", "mirror", "centre crop"]
    with pytest.raises(ConfigError, match="1 to 12 views"):
        tta.views(images, 13)


def test_predictor_averages_tta_views():
    from cifar.inference.predictor import Predictor
    from cifar.inference.runtimes import KerasRuntime

    runtime = KerasRuntime.from_model(_tiny_model(24))
    one = Predictor(runtime, class_names=["a", "b", "c"], tta=1)
    two = Predictor(runtime, class_names=["a", "b", "c"], tta=2)
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    expected = (one.predict_pixels(pixels) + one.predict_pixels(pixels[:, :, ::-1])) / 2
    np.testing.assert_allclose(two.predict_pixels(pixels), expected, atol=1e-6)


def test_max_images_caps_the_epochs_of_a_large_folder():
    from cifar.phases import Phase

    phase = Phase(name="f", epochs=12, max_images=9000, min_epochs=3, schedule="cosine")
    phase.warmup_epochs = 2
    assert phase.capped_to(600) is phase  # 15 epochs' worth: the 12 stand
    big = phase.capped_to(2000)  # ceil(9000 / 2000) = 5 epochs
    assert (big.epochs, big.warmup_epochs) == (5, 1)
    assert phase.capped_to(10_000).epochs == 3  # never below min_epochs
    big.validate()
