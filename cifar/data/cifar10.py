"""CIFAR-10 from a local ``cifar-10-batches-py`` folder or, by default, the Keras download."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from cifar.data.dataset import ImageData, portable_path
from cifar.errors import DataError

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
ENV_VAR = "CIFAR10_DIR"
FOLDER_NAME = "cifar-10-batches-py"
_PIXELS = 32 * 32 * 3

HOW_TO_POINT = (
    f"Point the loader at a local copy of the '{FOLDER_NAME}' folder with --data-dir DIR "
    f"or the {ENV_VAR} environment variable."
)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The folder to read: the argument, else ``$CIFAR10_DIR``, else None (Keras download)."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    # Accept the parent folder too (e.g. the directory the tarball was extracted into).
    if not (path / TEST_BATCH).exists() and (path / FOLDER_NAME).is_dir():
        path = path / FOLDER_NAME
    return path


def load_cifar10(data_dir: str | os.PathLike | None = None) -> ImageData:
    """Load CIFAR-10 (50,000 train, 10,000 test, uint8 32x32 RGB) and validate it."""
    path = resolve_data_dir(data_dir)
    if path is None:
        return _load_keras_download()
    return _load_folder(path)


def load_cifar10_test(data_dir: str | os.PathLike | None = None) -> ImageData:
    """Only the 10,000 test images of a local CIFAR-10 folder (no training batches, never a
    download): e.g. images of other things for a photo model. The train arrays are empty."""
    path = resolve_data_dir(data_dir)
    if path is None:
        raise DataError(f"no local CIFAR-10 folder given. {HOW_TO_POINT}")
    if not (path / TEST_BATCH).is_file():
        raise DataError(f"{path} is not a CIFAR-10 '{FOLDER_NAME}' folder: no {TEST_BATCH}.")
    class_names = _read_meta(path / META) if (path / META).is_file() else list(CIFAR10_CLASSES)
    x_test, y_test = _read_batch(path / TEST_BATCH, len(class_names))
    empty = np.zeros((0, 32, 32, 3), np.uint8)
    return ImageData(empty, np.zeros(0, np.int64), x_test, y_test, class_names, portable_path(path))


def _load_keras_download() -> ImageData:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as exc:  # any network or archive failure lands here
        raise DataError(
            f"Could not download CIFAR-10 with keras.datasets.cifar10.load_data() "
            f"({type(exc).__name__}: {exc}). {HOW_TO_POINT}"
        ) from exc
    y_train, y_test = y_train.reshape(-1).astype(np.int64), y_test.reshape(-1).astype(np.int64)
    _check_labels(y_train, "keras download (train)", len(CIFAR10_CLASSES))
    _check_labels(y_test, "keras download (test)", len(CIFAR10_CLASSES))
    return ImageData(
        x_train, y_train, x_test, y_test, list(CIFAR10_CLASSES), "keras.datasets.cifar10 (download)"
    )


def _load_folder(path: Path) -> ImageData:
    if not path.exists():
        raise DataError(f"CIFAR-10 folder {path} does not exist. {HOW_TO_POINT}")
    if not path.is_dir():
        raise DataError(f"CIFAR-10 path {path} is not a folder. {HOW_TO_POINT}")
    missing = [name for name in [*TRAIN_BATCHES, TEST_BATCH] if not (path / name).is_file()]
    if missing:
        raise DataError(
            f"{path} is not a CIFAR-10 '{FOLDER_NAME}' folder: missing {', '.join(missing)}."
        )
    class_names = _read_meta(path / META) if (path / META).is_file() else list(CIFAR10_CLASSES)
    xs, ys = zip(
        *(_read_batch(path / name, len(class_names)) for name in TRAIN_BATCHES), strict=True
    )
    x_test, y_test = _read_batch(path / TEST_BATCH, len(class_names))
    return ImageData(
        np.concatenate(xs), np.concatenate(ys), x_test, y_test, class_names, portable_path(path)
    )


def _unpickle(file: Path) -> dict:
    try:
        with file.open("rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # truncated, not a pickle, wrong protocol...
        raise DataError(
            f"{file}: not a readable CIFAR-10 pickle ({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{file}: expected a pickled dict, found {type(obj).__name__}.")
    return obj


def _read_meta(file: Path) -> list[str]:
    meta = _unpickle(file)
    names = meta.get(b"label_names", meta.get("label_names"))
    if names is None:
        raise DataError(f"{file}: no 'label_names' entry; this is not a CIFAR-10 batches.meta.")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    if len(names) != len(CIFAR10_CLASSES):
        raise DataError(
            f"{file}: {len(names)} label names, expected 10 (CIFAR-100 or another data set?)."
        )
    return names


def _read_batch(file: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(file)
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        keys = ", ".join(sorted(k.decode() if isinstance(k, bytes) else str(k) for k in batch))
        raise DataError(
            f"{file}: missing 'data' or 'labels' (found keys: {keys}); "
            "this is not a CIFAR-10 batch (CIFAR-100 uses 'fine_labels')."
        )
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != _PIXELS:
        raise DataError(
            f"{file}: 'data' has shape {data.shape}, expected (N, {_PIXELS}) "
            "(32x32 RGB images stored channel-planar)."
        )
    if data.dtype != np.uint8:
        raise DataError(f"{file}: 'data' has dtype {data.dtype}, expected uint8.")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{file}: 'labels' are not integers ({exc}).") from exc
    if len(labels) != len(data):
        raise DataError(f"{file}: {len(data)} images but {len(labels)} labels.")
    _check_labels(labels, str(file), num_classes)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _check_labels(labels: np.ndarray, where: str, num_classes: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise DataError(
            f"{where}: labels out of range 0..{num_classes - 1} "
            f"({len(bad)} bad, e.g. {int(bad[0])})."
        )
