"""Near-copies: photos that are one picture up to resizing, recompression, a small crop or a mirror.

Each photo gets a 64-bit perceptual hash (``imagehash.phash``, hash size 8: the sign of the
low-frequency DCT coefficients of a 32x32 grey thumbnail) of itself and of its horizontal
mirror; two photos are near-copies when the Hamming distance between one's hash and the other's
(or its mirror's) is at most ``max_distance``. Pairs are found with chunked NumPy
(``np.bitwise_count`` over XORed hashes), so 20,000 photos (200 million pairs) take seconds.

Measured with ``python benchmarks/bench_near_copies.py`` (seed 0): 300 photos of
``cats_and_dogs_filtered/train`` plus 4 planted copies of each of 60 of them (resized to
50-80 %, JPEG quality 60-90, a 90 % centre crop, a horizontal flip: 240 planted pairs), hashed
as the loader does (decoded at 160 px, before the centre crop); false pairs counted among the
44,850 pairs of the 300 originals, then among the 1,999,000 pairs of all 2,000 photos:

==============  ======  =====  ======  ======  ======  ==============  ===================
hash <= dist.   resize  JPEG   crop90  mirror  recall  false (300)     pairs (all 2,000)
==============  ======  =====  ======  ======  ======  ==============  ===================
phash <= 8      60/60   60/60  17/60   60/60   82.1 %  0               1 (a real copy)
phash <= 10     60/60   60/60  30/60   60/60   87.5 %  0               2 (1 false)
phash <= 12     60/60   60/60  47/60   60/60   94.6 %  0               15 (2 across classes)
phash <= 14     60/60   60/60  52/60   60/60   96.7 %  1               137 (57 across)
dhash <= 10     60/60   60/60  36/60   60/60   90.0 %  0
dhash <= 12     60/60   60/60  54/60   60/60   97.5 %  3
whash <= 8      60/60   60/60  48/60   60/60   95.0 %  17
whash <= 12     60/60   60/60  58/60   60/60   99.2 %  255
==============  ======  =====  ======  ======  ======  ==============  ===================

Resizes, recompressions and mirrors are found at every threshold from 6 up. The 90 % centre
crop is the hard case: it shifts and scales the picture by 5 %, which moves the low
frequencies enough that no single hash catches every crop without pairing different photos
(whash catches the most crops but pairs hundreds of unrelated photos; dhash <= 12 beats pHash
on crops but with 3 false pairs per 300 photos). pHash (distances are even: 32 of its 64 bits
are set) at 12 is the default: it finds 78 % of the crops and every other copy, and pairs ~1
in 130,000 unrelated photos. For the training split a false pair costs little (two photos are
kept on one side of a split, or one training photo is dropped beside a test photo) while a
miss leaks a copy into the test figure, so the default leans to recall.

A hash match alone is not enough on every kind of photo. On ``../shared/data/clothing10``
(garments laid flat, centred, on a few backgrounds), pHash <= 12 pairs 241 of its 1,200
photos' pairs, 115 of them across classes (a dress with a pair of trousers): different
garments whose silhouettes share low frequencies; on all 3,000 ``cats_and_dogs_filtered``
photos it pairs 47 (16 across classes), all but one different photos. So the loader confirms
each hash match with a second look (:func:`confirm_pairs`): the Pearson correlation of 32x32
colour thumbnails of the two whole pictures, the best over the mirror and a 90 % centre crop
of either (the crop a near-copy may have). Measured with the same benchmark
(``--also ../shared/data/clothing10 --also ../shared/data/cats_and_dogs_filtered``): every
planted copy the hash finds is confirmed (lowest correlation 0.997: resize, JPEG, crop and
mirror alike) and no original pair is; clothing10's non-copies reach at most 0.965 (two
t-shirts on the same red blanket, measured at 256 px), so ``MIN_CORRELATION`` is 0.98. Of
clothing10's 241 hash matches 1 is confirmed (byte-identical photos filed as shorts and as a
skirt), of cats/dogs' 47 also 1 (``dog.74.jpg`` and ``dog.180.jpg``). The data audit
(``cifar audit``) adds backbone-feature cosine on top for crops.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "MIN_CORRELATION",
    "NEAR_COPY_RULE",
    "confirm_pairs",
    "copy_thumbnails",
    "group_ids",
    "near_copy_pairs",
    "perceptual_hash",
    "thumbnail_correlation",
]

DEFAULT_MAX_DISTANCE = 12
THUMB_SIZE = 32
MIN_CORRELATION = 0.98
CROP_MARGIN = 0.05  # the thumbnails' second view: the centre 90 % of the picture
# Names the whole rule in cache keys: a store grouped by an older rule is not reused.
NEAR_COPY_RULE = f"phash<=distance+thumb{THUMB_SIZE}corr>={MIN_CORRELATION}/v2"
HASH_SIZE = 8
# Rows compared at once: a block of _CHUNK x N distances as uint8 (20k photos: 10 MB per block).
_CHUNK = 512


def perceptual_hash(image: Image.Image) -> np.ndarray:
    """``(2,) uint64``: the pHash of ``image`` and of its horizontal mirror."""
    import imagehash

    grey = image.convert("L")
    hashes = [imagehash.phash(img, hash_size=HASH_SIZE) for img in (grey, ImageOps.mirror(grey))]
    return np.asarray([_pack(h.hash) for h in hashes], dtype=np.uint64)


def copy_thumbnails(image: Image.Image) -> np.ndarray:
    """``(2, 32, 32, 3) uint8``: the whole picture and its centre 90 %, squeezed to 32x32."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    crop = (CROP_MARGIN * w, CROP_MARGIN * h, (1 - CROP_MARGIN) * w, (1 - CROP_MARGIN) * h)
    size = (THUMB_SIZE, THUMB_SIZE)
    views = [rgb.resize(size, Image.BILINEAR), rgb.resize(size, Image.BILINEAR, box=crop)]
    return np.stack([np.asarray(v, dtype=np.uint8) for v in views])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a - a.mean(), b - b.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else 0.0


def thumbnail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The best Pearson correlation of two photos' :func:`copy_thumbnails`: whole against
    whole, whole against either's centre crop, each also against ``b`` mirrored."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    best = -1.0
    for left, right in ((a[0], b[0]), (a[0], b[1]), (a[1], b[0])):
        for view in (right, right[:, ::-1]):
            best = max(best, _correlation(left, view))
    return best


def confirm_pairs(
    pairs: np.ndarray, thumbnails: np.ndarray, min_correlation: float = MIN_CORRELATION
) -> np.ndarray:
    """The rows of ``pairs`` (``(P, >=2)``, from :func:`near_copy_pairs`) whose photos'
    thumbnails correlate at ``min_correlation`` or more: one picture, not two alike."""
    pairs = np.asarray(pairs, dtype=np.int64)
    if not len(pairs):
        return pairs
    keep = [
        thumbnail_correlation(thumbnails[i], thumbnails[j]) >= min_correlation
        for i, j in pairs[:, :2]
    ]
    return pairs[np.asarray(keep, dtype=bool)]


def _pack(bits: np.ndarray) -> np.uint64:
    """The 64 booleans of an 8x8 hash as one unsigned integer."""
    return np.uint64(int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big"))


def near_copy_pairs(hashes: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE) -> np.ndarray:
    """``(P, 3) int64`` rows ``(i, j, distance)`` with ``i < j`` for every near-copy pair.

    ``hashes`` is ``(N, 2) uint64`` from :func:`perceptual_hash` (a row of zeros is a photo
    with no hash, e.g. an unreadable file, and is never paired). ``distance`` is the smaller of
    the Hamming distances from i's hash to j's hash and to j's mirrored hash.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    if hashes.ndim != 2 or hashes.shape[1] != 2:
        raise ValueError(f"expected hashes of shape (N, 2), got {hashes.shape}")
    n = len(hashes)
    valid = np.any(hashes != 0, axis=1)
    plain, mirror = hashes[:, 0], hashes[:, 1]
    found = []
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        block = plain[start:stop, None]
        dist = np.minimum(np.bitwise_count(block ^ plain), np.bitwise_count(block ^ mirror))
        rows, cols = np.nonzero(dist <= max_distance)
        i = rows + start
        keep = (cols > i) & valid[i] & valid[cols]
        i, j = i[keep], cols[keep]
        found.append(np.stack([i, j, dist[rows[keep], j]], axis=1).astype(np.int64))
    if not found:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(found)


def group_ids(n: int, pairs: np.ndarray) -> np.ndarray:
    """``(n,) int64`` connected-component id per row of the graph of ``pairs`` (``(P, >=2)``).

    Ids are the smallest row index in each component, so a singleton's id is its own index and
    the result does not depend on the order of ``pairs``.
    """
    parent = np.arange(n, dtype=np.int64)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    edges = np.asarray(pairs, dtype=np.int64)
    edges = edges[:, :2] if edges.size else np.zeros((0, 2), dtype=np.int64)
    for i, j in edges:
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.asarray([find(i) for i in range(n)], dtype=np.int64)
