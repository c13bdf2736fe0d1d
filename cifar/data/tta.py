"""Test-time augmentation: fixed views of a batch whose predictions are averaged.

The views are deterministic (no random state), so a TTA figure is reproducible: the image
itself and its mirror (NumPy only), then a centre crop and four corner crops (each covering
``CROP`` of the side, resized back to the image's size) and their mirrors.
``views(images, n)`` gives the first ``n``. Exports stay single-pass; TTA is an option of
evaluation and ``cifar predict`` that costs ``n`` forward passes per image.
"""

from __future__ import annotations

import numpy as np

from cifar.errors import ConfigError

CROP = 0.875  # ImageNet's evaluation crop (224 of 256)
# (y0, x0) of each crop box as a share of the free margin (1 - CROP); None: the whole image.
_BOXES = [None, (0.5, 0.5), (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
MAX_VIEWS = 2 * len(_BOXES)


def view_names(n: int) -> list[str]:
    """Names of the first ``n`` views, e.g. ``["image", "mirror", "centre crop", ...]``."""
    names = ["image", "centre crop", "top-left crop", "top-right crop"]
    names += ["bottom-left crop", "bottom-right crop"]
    out = []
    for name in names:
        out += [name, f"{name}, mirrored" if name != "image" else "mirror"]
    return out[: check_views(n)]


def views(images: np.ndarray, n: int) -> list[np.ndarray]:
    """The first ``n`` TTA views of a uint8 or float batch (N x H x W x 3), same shape and dtype."""
    check_views(n)
    x = np.asarray(images)
    out: list[np.ndarray] = []
    for box in _BOXES:
        view = x if box is None else _like(_crop(x, box), x)
        for mirrored in (False, True):
            if len(out) == n:
                return out
            out.append(np.ascontiguousarray(view[:, :, ::-1]) if mirrored else view)
    return out


def average(predict, images: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``predict(view)`` (class probabilities) over the first ``n`` views."""
    if n == 1:
        return np.asarray(predict(images), dtype=np.float32)
    total = None
    for view in views(images, n):
        p = np.asarray(predict(view), dtype=np.float64)
        total = p if total is None else total + p
    return (total / n).astype(np.float32)


def _crop(x: np.ndarray, box: tuple[float, float]) -> np.ndarray:
    """The crop ``box`` of every image, resized back to the image's size (bilinear)."""
    import tensorflow as tf  # only crops need it: one pass (n <= 2) never imports it

    n, h, w = x.shape[:3]
    y0, x0 = box[0] * (1 - CROP), box[1] * (1 - CROP)
    boxes = np.repeat([[y0, x0, y0 + CROP, x0 + CROP]], n, axis=0).astype(np.float32)
    idx = np.arange(n, dtype=np.int32)
    return tf.image.crop_and_resize(x.astype(np.float32), boxes, idx, (h, w)).numpy()


def _like(view: np.ndarray, images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return np.clip(np.rint(view), 0, 255).astype(np.uint8)
    return view.astype(images.dtype)


def check_views(n: int) -> int:
    """``n``, or ConfigError when it is not a number of views this module has."""
    if not 1 <= n <= MAX_VIEWS:
        raise ConfigError(f"test-time augmentation takes 1 to {MAX_VIEWS} views, got {n}")
    return n
