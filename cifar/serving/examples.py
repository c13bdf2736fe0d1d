"""Example images for the demo: test photos of the data set the served model was trained on.

A run trained on an image folder recorded its test photos (``test_files.json``, see
:mod:`cifar.run_files`); the examples are copies of some of them, never training photos. A run
from before runs recorded them gets its test split re-derived from its ``config.json`` by the
rule that made it (:func:`cifar.data.folder.split_files`). A run on CIFAR-10 gets CIFAR-10 test
images as PNG.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cifar.errors import DataError
from cifar.run_files import CONFIG_FILE, METRICS_FILE, read_optional_json, read_test_files

__all__ = ["write_examples"]


def write_examples(
    out_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    per_class: int = 1,
    download: bool = False,
    run_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Write example test images of the served model's data set (``per_class`` per class).

    A model trained on an image folder (its ``run_dir`` says so) gets copies of the run's own
    test photos as they are. Otherwise they are CIFAR-10 test images as PNG, from the data this
    machine can load: ``data_dir`` / ``$CIFAR10_DIR``, the Keras cache (``~/.keras/datasets``),
    or, only with ``download``, a fresh Keras download. Returns the written paths
    (``NN_<class>.<ext>``), or ``[]`` when no copy is available (``log`` says why for a folder).
    Without ``out_dir`` they go to a new temporary folder, so two demos never share one.
    """
    if out_dir is None:
        out_dir = tempfile.mkdtemp(prefix="cifar-gradio-examples-")
    out = Path(out_dir)
    folder_examples = _folder_examples(run_dir, per_class, log)
    if folder_examples is not None:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("[0-9][0-9]_*"):
            old.unlink()
        paths = []
        for name, file in folder_examples:
            path = out / f"{len(paths):02d}_{name}{file.suffix.lower()}"
            shutil.copyfile(file, path)
            paths.append(path)
        return paths
    return _cifar10_examples(out, data_dir, per_class, download)


def _folder_examples(
    run_dir: str | os.PathLike | None, per_class: int, log: Callable[[str], None]
) -> list[tuple[str, Path]] | None:
    """``(class, file)`` test photos of the image folder a run trained on; None if it did not
    train on one, ``[]`` when its test photos are unknown or gone."""
    if run_dir is None:
        return None
    recorded = read_test_files(Path(run_dir))
    if recorded is None:
        data = (read_optional_json(Path(run_dir) / METRICS_FILE) or {}).get("data", {})
        if data.get("dataset") != "folder":
            return None
        recorded = _rederived_test_files(Path(run_dir), str(data.get("source")), log)
        if recorded is None:
            return []
    root, files = recorded
    if not root.is_dir():
        log(f"no example images: the run's image folder {root} is not here")
        return []
    chosen, seen = [], {}
    for rel, name in files:
        if seen.get(name, 0) < per_class and (root / rel).is_file():
            seen[name] = seen.get(name, 0) + 1
            chosen.append((name, root / rel))
    return chosen


def _rederived_test_files(
    run_dir: Path, source: str, log: Callable[[str], None]
) -> tuple[Path, list[tuple[str, str]]] | None:
    """The test split of a run that did not record it, split again as training did; None (and
    a log line saying why) when that is not possible."""
    from cifar.data.folder import split_files
    from cifar.data.folder_layout import scan_folder

    config = read_optional_json(run_dir / CONFIG_FILE) or {}
    try:
        fraction, seed = config["data"]["test_fraction"], config["seed"]
        layout = scan_folder(source)
    except (KeyError, TypeError, DataError) as exc:
        log(
            f"no example images: {run_dir} does not list its test photos and they cannot be "
            f"found again ({exc})"
        )
        return None
    log(
        f"{run_dir} does not list its test photos ({run_dir.name} predates test_files.json): "
        f"examples from its test split re-derived from {CONFIG_FILE}"
    )
    test = split_files(layout, fraction, seed)["test"]
    return layout.root, [(rel, layout.class_names[y]) for rel, y in test]


def _cifar10_examples(
    out: Path, data_dir: str | os.PathLike | None, per_class: int, download: bool
) -> list[Path]:
    """The first ``per_class`` CIFAR-10 test images of each class as PNG (``[]``: no copy)."""
    import numpy as np

    from cifar.data import load_cifar10
    from cifar.data.cifar10 import FOLDER_NAME, resolve_data_dir
    from cifar.imageio import encode_png

    source = resolve_data_dir(data_dir)
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / FOLDER_NAME
    if source is None and cached.is_dir():
        source = cached
    if source is None and not download:
        return []
    data = load_cifar10(source)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, name in enumerate(data.class_names):
        for i in np.flatnonzero(data.y_test == label)[:per_class]:
            path = out / f"{len(paths):02d}_{name}.png"
            path.write_bytes(encode_png(data.x_test[i]))
            paths.append(path)
    return paths
