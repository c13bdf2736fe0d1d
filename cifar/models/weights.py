"""Where a backbone's pretrained weights come from: Keras's download, an offline folder, a file.

``weights = "imagenet"`` lets Keras download its official file (the default on a normal
machine). Without internet, put Keras's official weight files, under their official names, in a
folder and point ``$KERAS_WEIGHTS_DIR`` (or ``model.weights``) at it: each file is checked
against the hash Keras itself publishes for it before it is used.

Keras builds some applications differently for ``weights="imagenet"`` than for a weights path
(EfficientNet B0-B7 adds a rescaling layer only then), so an official file must be loaded the
way Keras loads it: the application is built with ``weights="imagenet"`` while its request for
the file (``keras.src.utils.file_utils.get_file``, which receives the file name, URL and hash)
is answered from the folder instead of the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras

from cifar.errors import ModelError

WEIGHTS_DIR_ENV = "KERAS_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightsSource:
    """Resolved weights: ``kind`` is "none", "download", "folder" or "file"; ``path`` if local."""

    kind: str
    path: Path | None = None

    def describe(self) -> str:
        """Human-readable origin (used in error messages)."""
        if self.kind == "download":
            return "the Keras download"
        return f"{self.kind} {self.path}" if self.path else "no weights (random initialisation)"


def resolve_weights(weights: str | os.PathLike | None, env: str | None = None) -> WeightsSource:
    """Resolve ``model.weights``: None, "imagenet", a folder of official files, or a file.

    ``"imagenet"`` uses ``$env`` (a file, e.g. ``MOBILENETV2_WEIGHTS``) if set, then
    ``$KERAS_WEIGHTS_DIR`` if set, then Keras's download.
    """
    if weights is None or str(weights).strip().lower() in ("none", ""):
        return WeightsSource("none")
    if str(weights) == "imagenet":
        if env and os.environ.get(env):
            return _local(os.environ[env], f"${env}")
        if os.environ.get(WEIGHTS_DIR_ENV):
            return _local(os.environ[WEIGHTS_DIR_ENV], f"${WEIGHTS_DIR_ENV}")
        return WeightsSource("download")
    return _local(weights, "model.weights")


def _local(value: str | os.PathLike, where: str) -> WeightsSource:
    path = Path(value).expanduser()
    if path.is_dir():
        return WeightsSource("folder", path)
    if path.is_file():
        return WeightsSource("file", path)
    raise ModelError(f"weights file {path} (from {where}) does not exist")


def file_digest(path: Path, expected: str) -> str:
    """Hex digest of ``path`` with the algorithm Keras uses for ``expected`` (64 hex: sha256)."""
    digest = hashlib.sha256() if len(expected) == 64 else hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights_file(path: Path, expected: str | None) -> None:
    """Raise ModelError naming ``path`` and the expected hash unless the file matches it."""
    if not expected:  # Keras publishes no hash for this file (MobileNetV2's)
        return
    actual = file_digest(path, expected)
    if actual != expected:
        algorithm = "sha256" if len(expected) == 64 else "md5"
        raise ModelError(
            f"weights file {path} does not match the {algorithm} Keras publishes for "
            f"{path.name}: expected {expected}, got {actual}. Replace it with Keras's official "
            "file (a partial download or another model's file under this name is refused)"
        )


class _NotOfficial(Exception):
    """Keras asked for a different file than the one given: it is not an official file."""


@contextlib.contextmanager
def _serve_keras_files(folder: Path, only: str | None = None) -> Iterator[None]:
    """While active, Keras applications read their weight files from ``folder``, hash-checked.

    Not thread-safe: it swaps the module function Keras's applications call.
    """
    from keras.src.utils import file_utils

    download = file_utils.get_file

    def get_file(fname=None, origin=None, file_hash=None, **_):
        if only is not None and fname != only:
            raise _NotOfficial(fname)
        path = folder / str(fname)
        if not path.is_file():
            expect = f" (its hash: {file_hash})" if file_hash else ""
            raise ModelError(
                f"{folder} has no {fname}, the official Keras weights file this model needs"
                f"{expect}; download it on a machine with internet from {origin} and copy it "
                "into the folder under that name"
            )
        check_weights_file(path, file_hash)
        return str(path)

    file_utils.get_file = get_file
    try:
        yield
    finally:
        file_utils.get_file = download


def build_with_weights(
    constructor: Callable[..., keras.Model], source: WeightsSource, label: str, hint: str = ""
) -> keras.Model:
    """Call a Keras application ``constructor(weights=...)`` with the weights of ``source``.

    Failures the user can fix (a failed download; a missing, corrupt, mismatching or
    incompatible weights file) become one ModelError naming ``label`` and the file; ``hint``
    is appended for failed downloads. Anything else the constructor raises is a defect and
    keeps its traceback.
    """
    if source.kind == "none":
        return constructor(weights=None)
    with _weight_file_errors(label, source, hint):
        if source.kind == "download":
            return constructor(weights="imagenet")
        if source.kind == "folder":
            with _serve_keras_files(source.path):
                return constructor(weights="imagenet")
        # A file: if it is the official file Keras asks for, load it exactly as Keras does
        # (hash-checked); any other file is the user's own weights, loaded by path.
        try:
            with _serve_keras_files(source.path.parent, only=source.path.name):
                return constructor(weights="imagenet")
        except _NotOfficial:
            return constructor(weights=str(source.path))


@contextlib.contextmanager
def _weight_file_errors(label: str, source: WeightsSource, hint: str) -> Iterator[None]:
    """While active, fetching or reading a weights file fails with one ModelError.

    Keras applications build the network, fetch the file (``file_utils.get_file``) and read it
    (``model.load_weights``): only those two steps are watched, so an error building the network
    is not dressed up as a weights problem. Not thread-safe (it swaps what Keras calls).
    """
    from keras.src.utils import file_utils

    fetch, load_weights = file_utils.get_file, keras.Model.load_weights

    def get_file(*args, **kwargs):
        try:
            return fetch(*args, **kwargs)
        except (ModelError, _NotOfficial):
            raise
        except Exception as exc:  # Keras wraps HTTP/URL errors in a bare Exception
            raise ModelError(
                f"could not load {label} weights from {source.describe()}: "
                f"{type(exc).__name__}: {exc}. Without internet, put Keras's official weights "
                f"file for it in a folder and set {WEIGHTS_DIR_ENV} (or model.weights) to "
                f"that folder.{hint}"
            ) from exc

    def read(model, filepath, *args, **kwargs):
        try:
            return load_weights(model, filepath, *args, **kwargs)
        except (OSError, ValueError) as exc:  # not HDF5, truncated, other layers or shapes
            raise ModelError(
                f"could not load {label} weights from {filepath}: {type(exc).__name__}: {exc}"
            ) from exc

    file_utils.get_file, keras.Model.load_weights = get_file, read
    try:
        yield
    finally:
        file_utils.get_file, keras.Model.load_weights = fetch, load_weights
