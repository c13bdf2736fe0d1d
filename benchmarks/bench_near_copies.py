"""Which perceptual hash and Hamming threshold find planted near-copies of real photos.

Takes ``--photos`` photos of ``../shared/data/cats_and_dogs_filtered/train`` (seeded), plants
four copies of each of ``--sources`` of them (resized to 50-80 %, re-saved as JPEG at quality
60-90, a 90 % centre crop, a horizontal flip), hashes everything as the image-folder loader
does (:func:`cifar.imageio.decode_rgb` at 160 px, then the hash of the picture and of its
mirror) and prints, per hash and threshold, the planted pairs found per kind of copy and the
false pairs among the originals; then the same for the loader's rule (pHash <= 12 confirmed by
thumbnail correlation, :func:`cifar.data.near_copies.confirm_pairs`), with the lowest
correlation of a planted copy. ``--also FOLDER`` counts the hash matches and the confirmed
pairs among every photo of other folders (e.g. ``../shared/data/clothing10``), and how many of
each pair photos of two classes. Nothing is written to disk.

    python benchmarks/bench_near_copies.py [--photos 300] [--sources 60] [--also FOLDER ...]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cifar.data.folder_layout import is_image_file  # noqa: E402
from cifar.data.near_copies import (  # noqa: E402
    DEFAULT_MAX_DISTANCE,
    confirm_pairs,
    copy_thumbnails,
    group_ids,
    near_copy_pairs,
    perceptual_hash,
    thumbnail_correlation,
)
from cifar.imageio import decode_rgb  # noqa: E402

KINDS = ("resize", "jpeg", "crop90", "mirror")


def plant(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One near-copy of ``img``, re-encoded as a JPEG (as a copy found in the wild would be)."""
    quality = 95
    if kind == "resize":
        scale = rng.uniform(0.5, 0.8)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    elif kind == "jpeg":
        quality = int(rng.integers(60, 91))
    elif kind == "crop90":
        w, h = img.size
        dw, dh = round(w * 0.05), round(h * 0.05)
        img = img.crop((dw, dh, w - dw, h - dh))
    elif kind == "mirror":
        img = ImageOps.mirror(img)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))


def hashes_of(images: list[Image.Image], name: str) -> np.ndarray:
    """``(N, 2) uint64`` hashes (picture, mirror) with imagehash's ``name`` hash."""
    import imagehash

    if name == "phash":  # exactly what the loader computes
        return np.stack([perceptual_hash(img) for img in images])
    fn = {"dhash": imagehash.dhash, "whash": imagehash.whash}[name]
    out = np.zeros((len(images), 2), dtype=np.uint64)
    for i, img in enumerate(images):
        grey = img.convert("L")
        for k, view in enumerate((grey, ImageOps.mirror(grey))):
            bits = fn(view, hash_size=8).hash.ravel()
            out[i, k] = int.from_bytes(np.packbits(bits).tobytes(), "big")
    return out


def main() -> None:
    """Plant copies, hash, and print recall and false pairs per hash and threshold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs_filtered/train"
    parser.add_argument("--folder", default=os.environ.get("CATS_DOGS_DIR", str(default)))
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--sources", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--also", action="append", default=[], help="another photo folder")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    files = sorted(Path(args.folder).glob("*/*.jpg"))
    files = [files[i] for i in sorted(rng.choice(len(files), args.photos, replace=False))]
    originals = [decode_rgb(f.read_bytes(), size=160) for f in files]
    full = [decode_rgb(f.read_bytes()) for f in files]  # copies are made from the full photo
    sources = rng.choice(args.photos, args.sources, replace=False)
    copies, planted = [], []  # planted: (original row, copy row, kind)
    for src in sources:
        for kind in KINDS:
            copy = decode_rgb(plant(full[src], kind, rng), size=160)
            planted.append((int(src), args.photos + len(copies), kind))
            copies.append(copy)
    images = originals + copies
    n_neg = args.photos * (args.photos - 1) // 2
    print(
        f"{args.photos} photos of {args.folder}, {len(planted)} planted copies "
        f"({args.sources} x {', '.join(KINDS)}); {n_neg:,} original pairs as negatives"
    )
    for name in ("phash", "dhash", "whash"):
        hashes = hashes_of(images, name)
        for threshold in (6, 8, 10, 12, 14):
            pairs = near_copy_pairs(hashes, threshold)
            found = {(int(i), int(j)) for i, j, _ in pairs}
            per_kind = dict.fromkeys(KINDS, 0)
            for src, row, kind in planted:
                per_kind[kind] += (min(src, row), max(src, row)) in found
            false = [(i, j) for i, j in found if i < args.photos and j < args.photos]
            recall = sum(per_kind.values()) / len(planted)
            kinds = "  ".join(f"{k} {v}/{args.sources}" for k, v in per_kind.items())
            print(
                f"{name} <= {threshold:2d}: {kinds}  recall {recall:.1%}  "
                f"false pairs {len(false)} of {n_neg:,}"
            )
    confirmed_rule(images, planted, args)
    groups = group_ids(len(images), near_copy_pairs(hashes_of(images, "phash")))
    print(f"phash default threshold: {len(np.unique(groups))} groups of {len(images)} photos")
    every = sorted(Path(args.folder).glob("*/*.jpg"))
    hashes = hashes_of([decode_rgb(f.read_bytes(), size=160) for f in every], "phash")
    n_all = len(every) * (len(every) - 1) // 2
    for threshold in (8, 10, 12, 14):
        pairs = near_copy_pairs(hashes, threshold)
        cross = sum(every[i].parent != every[j].parent for i, j, _ in pairs)
        print(
            f"all {len(every)} photos, phash <= {threshold}: {len(pairs)} pairs of {n_all:,} "
            f"({cross} across classes)"
        )
    for folder in args.also:
        folder_pairs(Path(folder))


def confirmed_rule(images: list[Image.Image], planted: list, args) -> None:
    """The loader's rule on the planted copies: pHash match, then thumbnail confirmation."""
    thumbs = np.stack([copy_thumbnails(img) for img in images])
    pairs = confirm_pairs(near_copy_pairs(hashes_of(images, "phash")), thumbs)
    found = {(int(i), int(j)) for i, j, _ in pairs}
    per_kind = dict.fromkeys(KINDS, 0)
    for src, row, kind in planted:
        per_kind[kind] += (min(src, row), max(src, row)) in found
    false = [(i, j) for i, j in found if i < args.photos and j < args.photos]
    lowest = min(thumbnail_correlation(thumbs[src], thumbs[row]) for src, row, _ in planted)
    kinds = "  ".join(f"{k} {v}/{args.sources}" for k, v in per_kind.items())
    print(
        f"phash <= {DEFAULT_MAX_DISTANCE} + thumbnails: {kinds}  false pairs {len(false)}; "
        f"lowest thumbnail correlation of a planted copy {lowest:.3f}"
    )


def folder_pairs(folder: Path) -> None:
    """Hash matches and confirmed pairs among every photo under ``folder`` (any depth)."""
    every = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    pictures = [decode_rgb(f.read_bytes(), size=160) for f in every]
    hashes = hashes_of(pictures, "phash")
    thumbs = np.stack([copy_thumbnails(img) for img in pictures])
    matches = near_copy_pairs(hashes)
    kept = confirm_pairs(matches, thumbs)
    for what, pairs in (("hash matches", matches), ("confirmed", kept)):
        cross = sum(every[i].parent.name != every[j].parent.name for i, j, _ in pairs)
        print(f"{folder} ({len(every)} photos): {what} {len(pairs)} ({cross} across classes)")


if __name__ == "__main__":
    main()
