"""Shared fixtures: the real data in ../shared when present, synthetic stand-ins otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CIFAR_SHARED_DIR", ROOT.parent / "shared"))
CIFAR_DIR = SHARED / "data" / "cifar-10-batches-py"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"

HAVE_CIFAR = (CIFAR_DIR / "test_batch").is_file()
HAVE_WEIGHTS = WEIGHTS.is_file()
requires_cifar = pytest.mark.skipif(
    not HAVE_CIFAR, reason=f"real CIFAR-10 not found at {CIFAR_DIR} (../shared is absent)"
)
requires_weights = pytest.mark.skipif(
    not HAVE_WEIGHTS, reason=f"MobileNetV2 ImageNet weights not found at {WEIGHTS}"
)


def synthetic_data(n_train: int = 600, n_test: int = 200, seed: int = 0):
    """Learnable stand-in for CIFAR-10: each class is a noisy image of its own colour/pattern."""
    from cifar.data import CIFAR10_CLASSES, ImageData

    rng = np.random.default_rng(seed)
    palette = rng.integers(30, 226, size=(10, 3))

    def make(n):
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = palette[y][:, None, None, :] + rng.normal(0, 25, size=(n, 32, 32, 3))
        stripes = (np.arange(32)[None, :, None] % (2 + y[:, None, None])) == 0
        x[..., 0] += 40 * stripes
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return ImageData(x_train, y_train, x_test, y_test, list(CIFAR10_CLASSES), "synthetic")


def on_ci() -> bool:
    """True under CI (``CI=true``, as GitHub Actions, GitLab CI and most others set it; ``1``
    too, in any case). ``.ci/install-chromium`` applies the same rule."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip with ``reason`` on a developer machine; fail on CI, where a missing prerequisite of
    the browser tests (Chromium, Playwright, the npm registry) would leave them untested while
    the run stays green."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: on CI this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require_playwright():
    """``playwright.sync_api``, or skip (developer machine) / fail (CI) without it."""
    try:
        from playwright import sync_api
    except ImportError:
        skip_unless_ci("playwright is not installed (dev dependency in pyproject.toml)")
    return sync_api


def require_chromium() -> str:
    """The path of Debian's chromium, or skip (developer machine) / fail (CI) without it."""
    from benchmarks.bench_web import find_chromium

    chromium = find_chromium()
    if chromium is None:
        skip_unless_ci(
            "Debian's chromium is not installed and could not be installed by the test set-up "
            "(run .ci/install-chromium as root)"
        )
    return chromium


@pytest.fixture(scope="session")
def cifar_small():
    """About 2,000 train / 500 test real CIFAR-10 images (stratified); skips without ../shared."""
    if not HAVE_CIFAR:
        pytest.skip(f"real CIFAR-10 not found at {CIFAR_DIR}")
    from cifar.data import load_cifar10

    return load_cifar10(CIFAR_DIR).subset(train=2000, test=500, seed=0)


@pytest.fixture(scope="session")
def small_data():
    """Real CIFAR-10 subset when ../shared is present, else the synthetic stand-in."""
    if HAVE_CIFAR:
        from cifar.data import load_cifar10

        return load_cifar10(CIFAR_DIR).subset(train=2000, test=500, seed=0)
    return synthetic_data(2000, 500)


@pytest.fixture(scope="session")
def weights_path() -> str:
    """Path of the genuine MobileNetV2 ImageNet weights; skips when absent."""
    if not HAVE_WEIGHTS:
        pytest.skip(f"MobileNetV2 weights not found at {WEIGHTS}")
    return str(WEIGHTS)


@pytest.fixture(scope="session")
def trained_cnn(small_data):
    """A custom CNN trained for 3 epochs on ``small_data`` (about 10 s): (model, data)."""
    import keras

    from cifar.data.pipeline import make_dataset
    from cifar.models import create_model

    keras.utils.set_random_seed(0)
    model = create_model("custom_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    ds = make_dataset(small_data.x_train, small_data.y_train, 10, 32, 64, training=True, epochs=3)
    steps = -(-len(small_data.y_train) // 64)
    model.fit(ds, epochs=3, steps_per_epoch=steps, verbose=0, shuffle=False)
    return model, small_data


@pytest.fixture(scope="session")
def cnn_run(trained_cnn, tmp_path_factory):
    """``trained_cnn`` in a run folder as the Trainer writes it (best_model.keras, labels.txt,
    config.json) plus its float32 TFLite export in ``export/``."""
    import json

    from exports import Exporter

    model, data = trained_cnn
    run = tmp_path_factory.mktemp("run")
    model.save(run / "best_model.keras")
    (run / "labels.txt").write_text("\n".join(data.class_names) + "\n")
    (run / "config.json").write_text(json.dumps({"name": "test"}))
    Exporter(model, class_names=data.class_names, data=data, verify_n=50, log=None).export(
        ["tflite"], out_dir=run / "export"
    )
    return run


# ---------------------------------------------------------------- generated photo folders

COLOURS = {"apples": (200, 30, 30), "grapes": (90, 30, 160), "limes": (40, 190, 40)}


def photo(path, colour, size=(60, 44), mode="RGB", seed=0):
    """A noisy one-colour photo of ``size`` saved in ``mode`` (format from the suffix)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    pixels = np.clip(np.asarray(colour) + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    if mode == "L":
        img = img.convert("L")
    elif mode == "RGBA":
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("P")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_folder(root, per_class=6, classes=COLOURS, seed=0):
    """``root/<class>/*`` with JPEG and PNG photos of mixed sizes and modes."""
    modes = ["RGB", "L", "RGBA", "P", "RGB", "RGB"]
    for c, (name, colour) in enumerate(classes.items()):
        for i in range(per_class):
            size = (40 + 7 * i, 30 + 5 * ((i + c) % 4))
            mode = modes[i % len(modes)]
            ext = "jpg" if mode in ("RGB", "L") else "png"
            photo(root / name / f"{name}_{i}.{ext}", colour, size, mode, seed=seed + 100 * c + i)
    return root
