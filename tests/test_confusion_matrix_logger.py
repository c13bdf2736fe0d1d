"""ConfusionMatrixLogger in a real two-phase fit, read back from the TensorBoard event files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from callbacks.confusion_matrix import ConfusionMatrixLogger


def read_events(log_dir: Path) -> list[tuple[str, int, str, object]]:
    """(tag, step, plugin, tensor proto) of every summary in the event files of ``log_dir``."""
    import tensorflow as tf

    out = []
    for file in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                out.append((value.tag, event.step, plugin, value.tensor))
    return out


@pytest.fixture(scope="module")
def logged_fit(tmp_path_factory, small_data):
    """A fresh CNN trained 2 + 1 epochs (two fit() calls, like two phases) with two loggers."""
    import keras

    from cifar.data.pipeline import make_dataset
    from cifar.models import create_model

    root = tmp_path_factory.mktemp("cm_logger")
    keras.utils.set_random_seed(1)
    x_tr, y_tr = small_data.x_train[:256], small_data.y_train[:256]
    x_val, y_val = small_data.x_train[-100:], small_data.y_train[-100:]
    train = make_dataset(x_tr, y_tr, 10, 32, 64, training=True)
    val = make_dataset(x_val, y_val, 10, 32, 64)
    names = small_data.class_names
    every_epoch = ConfusionMatrixLogger(val, names, root / "tb", root / "png")
    every_other = ConfusionMatrixLogger(val, names, root / "tb2", root / "png2", every=2)
    model = create_model("custom_cnn")
    for start, stop in ((0, 2), (2, 3)):
        model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
        tensorboard = keras.callbacks.TensorBoard(str(root / "tb"), write_graph=False)
        model.fit(
            train,
            validation_data=val,
            initial_epoch=start,
            epochs=stop,
            callbacks=[tensorboard, every_epoch, every_other],
            verbose=0,
        )
    return root, model, every_epoch, (x_val, y_val)


@pytest.mark.slow  # shares a ~12 s two-phase fit
def test_pngs_are_written_every_epoch_across_fits(logged_fit):
    root, *_ = logged_fit
    names = sorted(p.name for p in (root / "png").iterdir())
    assert names == [f"confusion_matrix_epoch_{i:03d}.png" for i in (1, 2, 3)]
    assert sorted(p.name for p in (root / "png2").iterdir()) == ["confusion_matrix_epoch_002.png"]
    for path in (root / "png").iterdir():
        image = Image.open(path)
        assert image.format == "PNG" and min(image.size) > 300


@pytest.mark.slow  # shares a ~12 s two-phase fit
def test_tensorboard_has_the_image_at_global_epochs_and_keras_scalars(logged_fit):
    import tensorflow as tf

    root, *_ = logged_fit
    events = read_events(root / "tb")
    images = [(step, tensor) for tag, step, plugin, tensor in events if tag == "confusion_matrix"]
    assert [step for step, _ in images] == [0, 1, 2]  # global epochs across the two fits
    assert {plugin for tag, _, plugin, _ in events if tag == "confusion_matrix"} == {"images"}
    # An image summary tensor holds [width, height, encoded PNG].
    width, height, png = tf.make_ndarray(images[-1][1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == (int(width), int(height))
    assert [step for tag, step, *_ in read_events(root / "tb2") if tag == "confusion_matrix"] == [1]
    train_tags = {tag for tag, *_ in read_events(root / "tb" / "train")}
    val_tags = {tag for tag, *_ in read_events(root / "tb" / "validation")}
    assert {"epoch_loss", "epoch_accuracy"} <= train_tags
    assert {"epoch_loss", "epoch_accuracy"} <= val_tags


@pytest.mark.slow  # shares a ~12 s two-phase fit
def test_last_matrix_matches_an_independent_prediction(logged_fit):
    from sklearn.metrics import confusion_matrix

    _, model, logger, (x_val, y_val) = logged_fit
    pred = model.predict(x_val.astype("float32"), verbose=0).argmax(axis=1)
    expected = confusion_matrix(y_val, pred, labels=range(10))
    np.testing.assert_array_equal(logger.last_matrix, expected)
    assert logger.last_matrix.sum() == len(y_val)


def test_every_must_be_positive(small_data):
    with pytest.raises(ValueError, match="every"):
        ConfusionMatrixLogger(None, small_data.class_names, "tb", "png", every=0)
