"""Images of other things, for the AUROC of confidence against out-of-distribution images.

"What happens with a photo of something else?" A model's top-1 probability should be lower on
images of classes it does not know than on its own test set; :func:`ood_auroc` measures how
well it separates them. The images come from:

- ``calibration.ood_dir``, when set: any image folder (e.g. ``../shared/data/clothing10`` for
  the CIFAR-10 model), every image file under it;
- otherwise, for a photo model: the CIFAR-10 test images (from ``$CIFAR10_DIR``, never
  downloaded during a run) of the classes whose names differ from the model's (a
  cats-and-dogs model gets no cats or dogs), upscaled by the model's own input pipeline.

At most :data:`MAX_IMAGES` images, picked evenly over a sorted list (deterministic), decoded
and predicted :data:`CHUNK` at a time, so no copy of a large folder is ever held.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.calibration.selective import ood_auroc

MAX_IMAGES = 1000
CHUNK = 100


def class_key(name: str) -> str:
    """A class name compared across data sets: lower case, letters only, plural ``s`` dropped
    (``"Cats"`` and ``"cat"`` match; ``"automobile"`` and ``"car"`` do not)."""
    key = re.sub(r"[^a-z]", "", name.lower())
    return key[:-1] if key.endswith("s") and len(key) > 3 else key


def evenly(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` indices of ``range(n)``, spread evenly (all when ``n <= limit``)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


@dataclass
class OtherImages:
    """Images of other things: a description and a way to stream them as uint8 batches.

    Args:
        source: what they are, for the report (``"CIFAR-10 test images of 8 classes ..."``).
        count: how many images :meth:`batches` yields (at most; unreadable files are skipped).
        batches: ``batches(size)`` yields uint8 N x size x size x 3 chunks; CIFAR-10 images
            come at 32 x 32 whatever ``size`` (the model's pipeline upscales them).
    """

    source: str
    count: int
    batches: Callable[[int], Iterator[np.ndarray]]


def folder_images(root: str | os.PathLike, limit: int = MAX_IMAGES) -> OtherImages:
    """Every image file under ``root`` (recursively, sorted), at most ``limit`` of them."""
    from cifar.data.dataset import portable_path
    from cifar.data.folder_layout import is_image_file
    from cifar.errors import DataError

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"calibration.ood_dir {root} does not exist or is not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise DataError(f"calibration.ood_dir {root} holds no image files")
    picked = [files[i] for i in evenly(len(files), limit)]

    def batches(size: int) -> Iterator[np.ndarray]:
        from cifar.imageio import ImageError, load_image

        for start in range(0, len(picked), CHUNK):
            chunk = []
            for path in picked[start : start + CHUNK]:
                try:
                    chunk.append(load_image(path, size=size))
                except ImageError:  # another data set's broken file is not this run's problem
                    continue
            if chunk:
                yield np.stack(chunk)

    of = f" ({len(picked)} of {len(files)})" if len(picked) < len(files) else ""
    return OtherImages(f"image folder {portable_path(root)}{of}", len(picked), batches)


def cifar10_other_classes(
    class_names: list[str], data_dir: str | os.PathLike | None = None, limit: int = MAX_IMAGES
) -> OtherImages:
    """CIFAR-10 test images of the classes not named like one of ``class_names``.

    Raises:
        DataError: no local CIFAR-10 copy (``data_dir`` or ``$CIFAR10_DIR``), or every
            CIFAR-10 class is one of the model's.
    """
    from cifar.data.cifar10 import load_cifar10_test
    from cifar.errors import DataError

    cifar = load_cifar10_test(data_dir)
    known = {class_key(n) for n in class_names}
    other = [i for i, name in enumerate(cifar.class_names) if class_key(name) not in known]
    if not other:
        raise DataError("every CIFAR-10 class is one of the model's: no other things to show it")
    rows = np.flatnonzero(np.isin(cifar.y_test, other))
    rows = rows[evenly(len(rows), limit)]
    x = cifar.x_test

    def batches(size: int) -> Iterator[np.ndarray]:
        for start in range(0, len(rows), CHUNK):
            yield x[rows[start : start + CHUNK]]

    left_out = sorted(set(range(len(cifar.class_names))) - set(other))
    without = ", ".join(cifar.class_names[i] for i in left_out) or "none"
    source = (
        f"CIFAR-10 test images ({cifar.source}) of the {len(other)} classes the model does "
        f"not know (left out: {without}), upscaled from 32x32"
    )
    return OtherImages(source, len(rows), batches)


def find_other_images(
    class_names: list[str], dataset: str, ood_dir: str | None, limit: int = MAX_IMAGES
) -> tuple[OtherImages | None, str | None]:
    """(images, None), or (None, why not): ``ood_dir`` first, else CIFAR-10 for a photo run.

    ``dataset`` is the run's data set kind (``"cifar10"`` or ``"folder"``). A given ``ood_dir``
    that is unusable is a user error (DataError); a missing default source is only skipped.
    """
    from cifar.data.cifar10 import ENV_VAR, resolve_data_dir
    from cifar.errors import DataError

    if ood_dir:
        return folder_images(ood_dir, limit), None
    if dataset == "cifar10":
        return None, "no calibration.ood_dir given (e.g. a folder of photos of other things)"
    path = resolve_data_dir(None)
    if path is None or not path.is_dir():
        return None, f"no local CIFAR-10 copy (${ENV_VAR} unset or missing); never downloaded"
    try:
        return cifar10_other_classes(class_names, path, limit), None
    except DataError as exc:
        return None, str(exc)


def predict_other(predict: Callable[[np.ndarray], np.ndarray], other: OtherImages, size: int):
    """Probabilities of every image of ``other`` (decoded at ``size``) under ``predict``."""
    chunks = [np.asarray(predict(batch), np.float32) for batch in other.batches(size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def ood_record(in_probs: np.ndarray, out_probs: np.ndarray, source: str) -> dict:
    """``selective.ood``: what the other images were, how many, and the AUROC."""
    return {
        "source": source,
        "n": int(len(out_probs)),
        "auroc": round(ood_auroc(in_probs, out_probs), 6),
    }
