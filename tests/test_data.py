"""CIFAR-10 and image-folder loaders, the split, the tf.data pipeline and the sample grid."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from conftest import CIFAR_DIR, requires_cifar

from cifar.data import CIFAR10_CLASSES, load_cifar10, stratified_split
from cifar.data.augment import AugmentConfig, Augmenter
from cifar.data.pipeline import make_dataset
from cifar.data.samples import plot_sample_grid, summarize
from cifar.errors import DataError

# ---------------------------------------------------------------- real CIFAR-10


@requires_cifar
def test_loads_real_cifar10():
    data = load_cifar10(CIFAR_DIR)
    assert data.x_train.shape == (50000, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (10000, 32, 32, 3) and data.x_test.dtype == np.uint8
    assert data.y_train.dtype == np.int64
    assert data.class_names == CIFAR10_CLASSES
    assert set(data.class_counts("train").values()) == {5000}
    assert set(data.class_counts("test").values()) == {1000}
    # A relative path: run records are committed and must not name this machine's folders.
    assert data.source == os.path.relpath(CIFAR_DIR.resolve()) and not os.path.isabs(data.source)


@requires_cifar
def test_env_var_and_parent_folder(monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", str(CIFAR_DIR.parent))  # parent of cifar-10-batches-py
    data = load_cifar10()
    assert len(data.y_test) == 10000


# ---------------------------------------------------------------- bad CIFAR folders


def _write_fake_cifar(root, n=20, **overrides):
    """A tiny folder in the cifar-10-batches-py format; overrides replace batch contents."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": list(range(10)) * (n // 10),
        }
        batch.update(overrides.get(name, {}))
        (root / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    (root / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


def test_fake_folder_loads_channel_planar(tmp_path):
    root = _write_fake_cifar(tmp_path / "c")
    raw = pickle.loads((root / "data_batch_1").read_bytes())[b"data"]
    data = load_cifar10(root)
    assert data.x_train.shape == (100, 32, 32, 3)
    # pixel (0,0) of image 0: R is byte 0, G byte 1024, B byte 2048 (channel-planar layout)
    assert tuple(data.x_train[0, 0, 0]) == (raw[0, 0], raw[0, 1024], raw[0, 2048])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: (r / "data_batch_3").unlink(), "missing data_batch_3"),
        (
            lambda r: (r / "test_batch").write_bytes(b"\x80\x04garbage"),
            "test_batch: not a readable",
        ),
        (
            lambda r: (r / "data_batch_1").write_bytes(pickle.dumps([1, 2])),
            "expected a pickled dict",
        ),
        (
            lambda r: (r / "data_batch_2").write_bytes(
                pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"fine_labels": [0] * 10})
            ),
            "CIFAR-100 uses 'fine_labels'",
        ),
        (
            lambda r: (r / "data_batch_4").write_bytes(
                pickle.dumps({b"data": np.zeros((10, 1024), np.uint8), b"labels": [0] * 10})
            ),
            "expected (N, 3072)",
        ),
        (
            lambda r: (r / "data_batch_5").write_bytes(
                pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 9 + [10]})
            ),
            "labels out of range 0..9",
        ),
        (
            lambda r: (r / "data_batch_5").write_bytes(
                pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 7})
            ),
            "10 images but 7 labels",
        ),
        (
            lambda r: (r / "batches.meta").write_bytes(
                pickle.dumps({b"label_names": [b"x"] * 100})
            ),
            "100 label names, expected 10",
        ),
    ],
    ids=["missing", "truncated", "not-dict", "cifar100", "shape", "label-range", "count", "meta"],
)
def test_bad_folder_gives_one_clear_error(tmp_path, mutate, expected):
    root = _write_fake_cifar(tmp_path / "c")
    mutate(root)
    with pytest.raises(DataError) as err:
        load_cifar10(root)
    assert expected in str(err.value)


def test_missing_folder_says_how_to_point(tmp_path):
    with pytest.raises(DataError, match="does not exist.*--data-dir DIR"):
        load_cifar10(tmp_path / "nope")


def test_failed_download_says_how_to_use_a_local_copy(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError, match="Could not download CIFAR-10.*CIFAR10_DIR"):
        load_cifar10()


# ---------------------------------------------------------------- image folders


# ---------------------------------------------------------------- split


def test_split_is_disjoint_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 500)
    train, val = stratified_split(labels, 0.1, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    assert set(np.bincount(labels[val])) == {50}
    again, _ = stratified_split(labels, 0.1, seed=3)
    other, _ = stratified_split(labels, 0.1, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_split_rejects_bad_fraction():
    with pytest.raises(DataError, match="val_fraction"):
        stratified_split(np.zeros(10, int), 1.5)


# ---------------------------------------------------------------- pipeline


def test_pipeline_batches_shapes_ranges_dtypes(small_data):
    ds = make_dataset(small_data.x_train[:100], small_data.y_train[:100], 10, 160, batch_size=32)
    batches = list(ds)
    assert [int(b[0].shape[0]) for b in batches] == [32, 32, 32, 4]
    x, y = batches[0]
    assert x.shape == (32, 160, 160, 3) and x.dtype.name == "float32"
    assert float(np.min(x)) >= 0.0 and float(np.max(x)) <= 255.0
    assert y.shape == (32, 10) and np.allclose(np.sum(y, axis=1), 1.0)
    assert np.array_equal(np.argmax(y, axis=1), small_data.y_train[:32])  # not shuffled


def test_pipeline_keeps_native_size_for_the_cnn(small_data):
    x, _ = next(iter(make_dataset(small_data.x_test, small_data.y_test, 10, 32, batch_size=8)))
    assert np.array_equal(np.asarray(x), small_data.x_test[:8].astype(np.float32))


def test_training_pipeline_shuffles_with_its_seed(small_data):
    def first_labels(seed):
        ds = make_dataset(small_data.x_train, small_data.y_train, 10, 32, 64, True, seed)
        return np.argmax(next(iter(ds))[1], axis=1)

    assert np.array_equal(first_labels(1), first_labels(1))
    assert not np.array_equal(first_labels(1), first_labels(2))


def test_augmentation_changes_training_batches_only(small_data):
    x, y = small_data.x_train[:64], small_data.y_train[:64]
    aug = Augmenter(AugmentConfig(flip=True, crop_padding=4), seed=0)
    plain = make_dataset(x, y, 10, 32, 64, training=False, augmenter=aug)
    # same images in the same order: compare a training batch without shuffling
    augmented = make_dataset(x, y, 10, 32, 64, training=True, augmenter=aug).unbatch().batch(64)
    xa, ya = next(iter(augmented))
    order = np.argsort(np.argmax(ya, axis=1), kind="stable")
    xp = np.asarray(next(iter(plain))[0])
    assert np.array_equal(xp, x.astype(np.float32))  # evaluation batches are untouched
    assert xa.shape == xp.shape
    assert not np.allclose(np.sort(np.asarray(xa).ravel()), 0)
    # augmentation moved pixels: no augmented image equals its source
    xs = x.astype(np.float32)
    same = sum(any(np.array_equal(img, src) for src in xs) for img in np.asarray(xa)[order])
    assert same < 16


def test_keras_cv_randaugment_and_mixup(small_data):
    x, y = small_data.x_train[:32], small_data.y_train[:32]
    aug = Augmenter(AugmentConfig(randaugment=0.3, mixup=0.2), seed=0)
    xb, yb = next(iter(make_dataset(x, y, 10, 64, 32, training=True, augmenter=aug)))
    assert xb.shape == (32, 64, 64, 3)
    assert float(np.min(xb)) >= 0 and float(np.max(xb)) <= 255.0 + 1e-3
    soft = np.asarray(yb)
    assert np.allclose(soft.sum(axis=1), 1.0, atol=1e-5) and (soft.max(axis=1) < 1).any()


# ---------------------------------------------------------------- sample grid and summary


def test_sample_grid_png_and_summary(tmp_path, small_data):
    path = plot_sample_grid(
        small_data.x_train, small_data.y_train, small_data.class_names, tmp_path / "g.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    text = summarize(small_data, val_fraction=0.1)
    assert "airplane" in text and "truck" in text and str(len(small_data.y_train)) in text
