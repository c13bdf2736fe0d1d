"""Decode a list of image files once into an on-disk uint8 array at the model's input size.

A folder of 3,000 photos fits in memory at 160x160 (230 MB); one of 100,000 does not (7.7 GB).
So photos are decoded once, by the project's one decoder (:func:`cifar.imageio.decode_rgb` and
:func:`~cifar.imageio.fit_square`: EXIF orientation, any mode to RGB, short side resized then
centre-cropped), into a memory-mapped ``.npy`` in the :class:`~cifar.array_cache.ArrayCache`
keyed by the file list (paths, sizes, modification times), the size, the decoder's rule and the
caller's decisions, and verified by its sha256 before every use. The same pass computes each
file's sha256 (exact duplicates) and the perceptual hash of the whole picture (near-copies,
:mod:`cifar.data.near_copies`); the caller then arranges the rows (which to keep, in which
order) and its reasons are stored with the array. A second run with the same folder, size and
settings does not decode again; the pipeline then reads only the rows of the current batch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.array_cache import ArrayCache
from cifar.errors import DataError

# Bump when the decoding rule changes, so stores built by the old rule are not reused.
DECODER_RULE = "exif+rgb+short-side-bilinear+centre-crop/v1"
_CHUNK = 256


@dataclass
class Decoded:
    """What one decoding pass learned about every listed file (rows in ``files`` order).

    ``sha256`` is the file's content digest (None for an unreadable file, which ``bad`` lists
    as ``path: reason``); ``hashes`` the ``(N, 2) uint64`` perceptual hashes of the whole
    upright picture and its mirror (zeros when not hashed or unreadable); ``thumbnails`` the
    ``(N, 2, 32, 32, 3) uint8`` views that confirm a hash match (:mod:`cifar.data.near_copies`;
    None when not hashed).
    """

    files: list[str]
    sha256: list[str | None]
    hashes: np.ndarray
    bad: list[str]
    thumbnails: np.ndarray | None = None


# What the caller does with a decoded folder: ``arrange(decoded) -> (rows, extra)`` picks and
# orders the rows the store keeps (e.g. training rows first, duplicates left out) and says why
# in ``extra`` (JSON), which is stored with the array so a cache hit gives the same answer.
Arrange = Callable[[Decoded], tuple[list[int], dict]]


def decode_to_store(
    root: Path,
    files: list[str],
    size: int,
    cache_dir: Path,
    arrange: Arrange,
    key_parts: dict | None = None,
    skip_bad: bool = False,
    hash_images: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, dict, str]:
    """``(images, extra, sha256)``: the arranged rows as uint8 N x size x size x 3 (memory-mapped).

    ``files`` are paths relative to ``root``, each decoded once (and, with ``hash_images``,
    perceptually hashed from the whole picture before the centre crop); ``arrange`` then says
    which rows to keep in which order, and ``extra`` is what it returned (plus ``bad``, the
    unreadable files skipped with ``skip_bad``). ``key_parts`` names everything else
    ``arrange`` depends on (policies, seeds), so a cached store is reused only for the same
    decisions. Raises DataError listing every unreadable file unless ``skip_bad``.
    """
    cache = ArrayCache(cache_dir, log=log)
    key = cache.make_key(
        listing=_listing_digest(root, files),
        size=size,
        rule=DECODER_RULE,
        skip_bad=skip_bad,
        hashed=hash_images,
        **(key_parts or {}),
    )
    label = f"{root.name} photos at {size}x{size}"
    found = cache.get(key, label)
    if found is not None:
        record = cache.record(key)
        return found, record.get("extra", {}), record["sha256"]
    out = cache.new_array(key, (len(files), size, size, 3), "uint8")
    decoded = _decode_all(root, files, size, out, hash_images, log)
    bad = decoded.bad
    if bad and not skip_bad:
        del out
        Path(cache_dir / f"{key}.tmp.npy").unlink(missing_ok=True)
        raise DataError(
            f"{len(bad)} unreadable image file(s) under {root} (fix or remove them, or set "
            "data.skip_bad_images = true to train without them):\n  " + _listed(bad)
        )
    if bad:
        log(f"data: skipping {len(bad)} unreadable image file(s):\n  " + _listed(bad))
    try:
        rows, extra = arrange(decoded)
    except BaseException:
        del out
        Path(cache_dir / f"{key}.tmp.npy").unlink(missing_ok=True)
        raise
    if rows != list(range(len(files))):
        out = _compact(cache, key, out, rows)
    images = cache.put(key, out, label, extra={**extra, "bad": bad})
    return images, {**extra, "bad": bad}, cache.record(key)["sha256"]


def _listing_digest(root: Path, files: list[str]) -> str:
    """sha256 of every file's relative path, size and modification time (no decoding)."""
    h = hashlib.sha256()
    for rel in files:
        st = (root / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _decode_all(
    root: Path,
    files: list[str],
    size: int,
    out: np.ndarray,
    hash_images: bool,
    log: Callable[[str], None],
) -> Decoded:
    """Decode ``files`` into ``out`` with 2 threads (Pillow releases the GIL while decoding)."""
    from cifar.data.near_copies import THUMB_SIZE, copy_thumbnails, perceptual_hash
    from cifar.imageio import ImageError, decode_rgb, fit_square

    hashes = np.zeros((len(files), 2), dtype=np.uint64)
    thumbs = np.zeros((len(files) if hash_images else 0, 2, THUMB_SIZE, THUMB_SIZE, 3), np.uint8)

    def one(i: int) -> tuple[str | None, str | None]:
        data = (root / files[i]).read_bytes()
        try:
            picture = decode_rgb(data, size=size, name=str(root / files[i]))
        except ImageError as exc:  # the message starts with the file's path
            return None, str(exc)
        if hash_images:  # the whole picture: a copy cropped differently still matches
            hashes[i] = perceptual_hash(picture)
            thumbs[i] = copy_thumbnails(picture)
        out[i] = fit_square(picture, size)
        return hashlib.sha256(data).hexdigest(), None

    bad: list[str] = []
    digests: list[str | None] = [None] * len(files)
    t0, step = time.perf_counter(), max(len(files) // 5, _CHUNK)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(files), _CHUNK):
            rows = range(start, min(start + _CHUNK, len(files)))
            for i, (digest, error) in zip(rows, pool.map(one, rows), strict=True):
                digests[i] = digest
                if error:
                    bad.append(error)
            done = rows[-1] + 1
            if done % step < _CHUNK or done == len(files):
                rate = done / (time.perf_counter() - t0)
                log(f"data: decoded {done}/{len(files)} images at {size}x{size} ({rate:.0f}/s)")
    return Decoded(list(files), digests, hashes, bad, thumbs if hash_images else None)


def _compact(cache: ArrayCache, key: str, out: np.ndarray, rows: list[int]) -> np.ndarray:
    """A new temporary array holding ``rows`` of ``out`` in that order (the rest left out)."""
    tmp_name = Path(out.filename)
    moved = tmp_name.with_name(tmp_name.stem + ".all.npy")
    out.flush()
    tmp_name.rename(moved)
    source = np.load(moved, mmap_mode="r")
    compact = cache.new_array(key, (len(rows), *out.shape[1:]), "uint8")
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        compact[start : start + len(chunk)] = source[chunk]
    del source
    moved.unlink()
    return compact


def _listed(items: list[str], limit: int = 20) -> str:
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n  ".join(items[:limit]) + more
