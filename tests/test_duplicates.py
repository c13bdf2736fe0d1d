"""Exact duplicates, near-copies and the exclude file of image folders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from cifar.data.exclude import read_exclude, write_exclude
from cifar.data.near_copies import (
    DEFAULT_MAX_DISTANCE,
    group_ids,
    near_copy_pairs,
    perceptual_hash,
)
from cifar.errors import DataError


def scene(seed: int, size=(320, 240)) -> Image.Image:
    """A smooth random picture (blobs of colour), so its low frequencies carry its identity."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.full((h, w, 3), rng.uniform(40, 200, 3))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 90)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        pixels += blob[..., None] * rng.uniform(-120, 120, 3)
    pixels += rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


# ------------------------------------------------------------------ near-copies


def test_resized_recompressed_and_mirrored_copies_are_found_and_others_are_not():
    originals = [scene(s) for s in range(12)]
    base = originals[0]
    copies = [
        base.resize((192, 144), Image.BILINEAR),  # 60 %
        jpeg(base, 65),
        ImageOps.mirror(base),
        jpeg(ImageOps.mirror(base.resize((224, 168), Image.BILINEAR)), 80),
    ]
    hashes = np.stack([perceptual_hash(img) for img in originals + copies])
    assert hashes.shape == (16, 2) and hashes.dtype == np.uint64
    pairs = near_copy_pairs(hashes)
    assert pairs.dtype == np.int64 and pairs.shape[1] == 3
    assert np.all(pairs[:, 0] < pairs[:, 1]) and np.all(pairs[:, 2] <= DEFAULT_MAX_DISTANCE)
    found = {(int(i), int(j)) for i, j, _ in pairs}
    copy_rows = set(range(12, 16))
    # every copy pairs with the original (and the copies with each other), nothing else pairs
    assert {(0, r) for r in copy_rows} <= found
    assert all(i in copy_rows | {0} and j in copy_rows for i, j in found)
    groups = group_ids(16, pairs)
    assert len(set(groups[[0, 12, 13, 14, 15]])) == 1
    assert len(set(groups.tolist())) == 12  # the other 11 pictures are singletons
    # the mirrored copy is found through the mirror hash
    mirror = near_copy_pairs(hashes[[0, 14]])
    assert len(mirror) == 1 and np.bitwise_count(hashes[0, 0] ^ hashes[14, 0]) > mirror[0, 2]


def test_near_copy_pairs_is_chunked_and_matches_a_direct_count():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=(1300, 2), dtype=np.uint64)
    hashes[700] = hashes[3] ^ np.uint64(0b101)  # 2 bits apart, across chunks
    hashes[1299] = [hashes[10, 1], hashes[10, 0]]  # the mirror of row 10
    hashes[50] = 0  # no hash (an unreadable file): never paired
    hashes[51] = 0
    pairs = near_copy_pairs(hashes, max_distance=4)
    assert {(int(i), int(j), int(d)) for i, j, d in pairs} == {(3, 700, 2), (10, 1299, 0)}
    assert near_copy_pairs(np.zeros((0, 2), np.uint64)).shape == (0, 3)


def test_group_ids_are_connected_components():
    pairs = np.array([[5, 6, 0], [0, 2, 3], [2, 4, 1], [6, 7, 2]])
    assert group_ids(8, pairs).tolist() == [0, 1, 0, 3, 0, 5, 5, 5]
    assert group_ids(3, np.zeros((0, 3), np.int64)).tolist() == [0, 1, 2]
    assert group_ids(8, pairs[::-1]).tolist() == group_ids(8, pairs).tolist()


# ------------------------------------------------------------------ exclude file


def test_exclude_file_round_trip_comments_and_absolute_paths(tmp_path):
    root = tmp_path / "photos"
    (root / "cats").mkdir(parents=True)
    listed = tmp_path / "exclude.txt"
    write_exclude(listed, ["dogs/b #2.jpg", "cats/a.jpg", "cats/a.jpg"], "written by a test\nwhy")
    text = listed.read_text()
    assert text.splitlines()[:2] == ["# written by a test", "# why"]
    with listed.open("a") as fh:
        fh.write(f"\n   \n# a comment\n{root / 'cats' / 'c.png'}\n./dogs/../dogs/d.jpg\n")
    assert read_exclude(listed, root) == {"cats/a.jpg", "dogs/b #2.jpg", "cats/c.png", "dogs/d.jpg"}


@pytest.mark.parametrize("entry", ["../other/x.jpg", "/etc/passwd", "cats/../../x.jpg", "."])
def test_exclude_file_refuses_paths_outside_the_folder_with_the_line(tmp_path, entry):
    listed = tmp_path / "exclude.txt"
    listed.write_text(f"# header\ncats/ok.jpg\n{entry}\n")
    with pytest.raises(DataError, match=r"exclude.txt, line 3"):
        read_exclude(listed, tmp_path / "photos")
    with pytest.raises(DataError, match="cannot read"):
        read_exclude(tmp_path / "missing.txt", tmp_path)
