"""Decode a list of image files once into an on-disk uint8 array at the model's input size.

A folder of 3,000 photos fits in memory at 160x160 (230 MB); one of 100,000 does not (7.7 GB).
So photos are decoded once, by the project's one decoder (:func:`cifar.imageio.load_image`:
EXIF orientation, any mode to RGB, short side resized then centre-cropped), into a
memory-mapped ``.npy`` in the :class:`~cifar.array_cache.ArrayCache` keyed by the file list
(paths, sizes, modification times), the size and the decoder's rule, and verified by its
sha256 before every use. A second run with the same folder and size does not decode again;
the pipeline then reads only the rows of the current batch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cifar.array_cache import ArrayCache
from cifar.errors import DataError

# Bump when the decoding rule changes, so stores built by the old rule are not reused.
DECODER_RULE = "exif+rgb+short-side-bilinear+centre-crop/v1"
_CHUNK = 256


def decode_to_store(
    root: Path,
    files: list[str],
    groups: list[str],
    size: int,
    cache_dir: Path,
    skip_bad: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, list[str], list[str], str]:
    """``(images, kept, bad, sha256)``: decoded uint8 N x size x size x 3 (memory-mapped).

    ``files`` are paths relative to ``root`` and ``groups`` their split and class (e.g.
    ``"train/cats"``); ``kept`` are the files in the array (all of them, unless ``skip_bad``
    dropped unreadable ones, which ``bad`` lists as ``path: reason``). Raises DataError
    listing every unreadable file (without ``skip_bad``) and every file whose content also
    appears in another group (the same photo in two classes, or in two splits).
    """
    cache = ArrayCache(cache_dir, log=log)
    key = cache.make_key(
        listing=_listing_digest(root, files), size=size, rule=DECODER_RULE, skip_bad=skip_bad
    )
    label = f"{root.name} photos at {size}x{size}"
    found = cache.get(key, label)
    if found is not None:
        extra = cache.record(key).get("extra", {})
        skipped = set(extra.get("bad_files", []))
        kept = [f for f in files if f not in skipped]
        return found, kept, list(extra.get("bad", [])), cache.record(key)["sha256"]
    out = cache.new_array(key, (len(files), size, size, 3), "uint8")
    bad, digests = _decode_all(root, files, size, out, log)
    _check_duplicates(root, files, groups, digests)
    if bad and not skip_bad:
        del out
        Path(cache_dir / f"{key}.tmp.npy").unlink(missing_ok=True)
        raise DataError(
            f"{len(bad)} unreadable image file(s) under {root} (fix or remove them, or set "
            "data.skip_bad_images = true to train without them):\n  " + _listed(bad)
        )
    kept_rows = [i for i, d in enumerate(digests) if d is not None]
    if bad:
        log(f"data: skipping {len(bad)} unreadable image file(s):\n  " + _listed(bad))
        out = _compact(cache, key, out, kept_rows)
    bad_files = [f for f, d in zip(files, digests, strict=True) if d is None]
    images = cache.put(key, out, label, extra={"bad": bad, "bad_files": bad_files})
    return images, [files[i] for i in kept_rows], bad, cache.record(key)["sha256"]


def _listing_digest(root: Path, files: list[str]) -> str:
    """sha256 of every file's relative path, size and modification time (no decoding)."""
    h = hashlib.sha256()
    for rel in files:
        st = (root / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _decode_all(
    root: Path, files: list[str], size: int, out: np.ndarray, log: Callable[[str], None]
) -> tuple[list[str], list[str | None]]:
    """Decode ``files`` into ``out`` with 2 threads (Pillow releases the GIL while decoding)."""
    from cifar.imageio import ImageError, load_image

    def one(i: int) -> tuple[str | None, str | None]:
        data = (root / files[i]).read_bytes()
        try:
            out[i] = load_image(data, size=size, name=str(root / files[i]))
        except ImageError as exc:  # the message starts with the file's path
            return None, str(exc)
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
    return bad, digests


def _check_duplicates(
    root: Path, files: list[str], groups: list[str], digests: list[str | None]
) -> None:
    """Refuse byte-identical files in two groups: a photo in two classes, or in two splits."""
    first: dict[str, tuple[str, str]] = {}
    pairs = []
    for rel, group, digest in zip(files, groups, digests, strict=True):
        if digest is None:
            continue
        if digest not in first:
            first[digest] = (rel, group)
        elif first[digest][1] != group:
            pairs.append(f"{first[digest][0]} = {rel}")
    if pairs:
        raise DataError(
            f"{len(pairs)} file(s) under {root} have the same content as another file (the same "
            "image in two classes or in two splits would be a wrong label or a leaked test "
            "image); remove one of each pair:\n  " + _listed(pairs)
        )


def _compact(cache: ArrayCache, key: str, out: np.ndarray, rows: list[int]) -> np.ndarray:
    """A new temporary array holding only ``rows`` of ``out`` (after skipping bad files)."""
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
