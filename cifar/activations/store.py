"""On-disk activation cache keyed by a content hash, verified before every use."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np

_CHUNK = 1 << 24


def array_digest(*arrays: np.ndarray) -> str:
    """sha256 over the bytes, shapes and dtypes of ``arrays``."""
    h = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        h.update(f"{array.shape}{array.dtype}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def weights_digest(model: keras.Model) -> str:
    """sha256 of every weight of ``model`` (its prefix: what the cached values depend on)."""
    return array_digest(*[np.asarray(w) for w in model.weights])


def file_digest(path: Path) -> str:
    """sha256 of a file's contents."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ActivationCache:
    """A folder of ``<key>.npy`` activation files, each with a ``<key>.json`` checksum record.

    A file is used only if its record exists and its sha256, shape and dtype match; anything
    else (a missing record, a truncated or edited file) is rebuilt, with a log line saying why.

    Args:
        root: cache folder (the Trainer uses ``<runs_dir>/.cache``).
        log: where to report cache decisions (``print`` by default).

    Example:
        >>> cache = ActivationCache("runs/.cache")
        >>> feats = cache.get_or_build(key, (n, 1280), write_fn)  # doctest: +SKIP
    """

    def __init__(self, root: str | Path, log: Callable[[str], None] = print):
        self.root = Path(root)
        self.log = log

    @staticmethod
    def make_key(**parts: str | int | float) -> str:
        """A short stable key from named parts (digests, sizes, layer names)."""
        text = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get_or_build(
        self,
        key: str,
        shape: tuple[int, ...],
        write: Callable[[np.ndarray], None],
        dtype: str = "float16",
        label: str = "",
    ) -> np.ndarray:
        """Return the verified memory-mapped array for ``key``, building it with ``write``.

        ``write(out)`` fills a writable memory-mapped array of ``shape`` and ``dtype``.
        """
        path, record = self.root / f"{key}.npy", self.root / f"{key}.json"
        problem = self._check(path, record, shape, dtype)
        if problem is None:
            self.log(f"cache: reusing {label or key} activations {shape} from {path}")
            return np.load(path, mmap_mode="r")
        if problem != "absent":
            self.log(f"cache: {path} {problem}; rebuilding it")
        self.root.mkdir(parents=True, exist_ok=True)
        self._free_space_check(shape, dtype)
        tmp = self.root / f"{key}.tmp.npy"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        write(out)
        out.flush()
        del out
        digest = file_digest(tmp)
        os.replace(tmp, path)
        meta = {"shape": list(shape), "dtype": dtype, "sha256": digest, "label": label}
        record.write_text(json.dumps(meta))
        self.log(f"cache: wrote {label or key} activations {shape} {dtype} to {path}")
        return np.load(path, mmap_mode="r")

    def _check(self, path: Path, record: Path, shape, dtype) -> str | None:
        if not path.is_file() and not record.is_file():
            return "absent"
        if not path.is_file() or not record.is_file():
            return "has no matching checksum record" if path.is_file() else "is missing"
        try:
            meta = json.loads(record.read_text())
            array = np.load(path, mmap_mode="r")
        except Exception as exc:  # truncated header, bad JSON...
            return f"is unreadable ({type(exc).__name__}: {exc})"
        if tuple(array.shape) != tuple(shape) or str(array.dtype) != dtype:
            return f"has shape {array.shape} {array.dtype}, expected {tuple(shape)} {dtype}"
        del array
        if file_digest(path) != meta.get("sha256"):
            return "is corrupted (sha256 differs from its record)"
        return None

    def _free_space_check(self, shape: Iterable[int], dtype: str) -> None:
        need = int(np.prod(shape)) * np.dtype(dtype).itemsize
        free = shutil.disk_usage(self.root).free
        if free < need * 1.1:
            raise OSError(
                f"activation cache needs {need / 2**20:.0f} MiB in {self.root}, "
                f'only {free / 2**20:.0f} MiB free (set cache = "off" to skip it)'
            )
