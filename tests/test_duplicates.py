"""Exact duplicates, near-copies and the exclude file of image folders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import SHARED
from PIL import Image, ImageOps

from cifar.data.duplicates import near_copy_groups
from cifar.data.exclude import read_exclude, write_exclude
from cifar.data.near_copies import (
    DEFAULT_MAX_DISTANCE,
    MIN_CORRELATION,
    confirm_pairs,
    copy_thumbnails,
    group_ids,
    near_copy_pairs,
    perceptual_hash,
    thumbnail_correlation,
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


# ------------------------------------------------------------------ the group-aware split


def test_group_split_keeps_groups_whole_class_balance_and_is_deterministic():
    from cifar.data.split import straddling_groups, stratified_group_split, stratified_split

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [200, 100, 60])
    groups = np.arange(len(labels))
    for start in rng.choice(len(labels) - 5, 40, replace=False):  # groups of 2-5 near-copies
        groups[start : start + rng.integers(2, 6)] = groups[start]
    keep, held = stratified_group_split(labels, groups, 0.2, seed=3)
    assert len(straddling_groups(groups, keep, held)) == 0
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(len(labels)))
    share = np.bincount(labels[held], minlength=3) / np.bincount(labels)
    assert np.all(np.abs(share - 0.2) < 0.05), share
    again = stratified_group_split(labels, groups, 0.2, seed=3)
    other = stratified_group_split(labels, groups, 0.2, seed=4)
    assert np.array_equal(again[1], held) and not np.array_equal(other[1], held)
    # one row per group: exactly the plain stratified split
    plain = stratified_split(labels, 0.2, seed=3)
    single = stratified_group_split(labels, np.arange(len(labels)), 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(plain, single, strict=True))
    # a class of one big group and one photo still has a photo on each side
    keep, held = stratified_group_split(np.zeros(6, int), np.array([0, 0, 0, 0, 0, 5]), 0.2, 0)
    assert held.tolist() == [5] and keep.tolist() == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------ folders with copies


def save(img: Image.Image, path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def scene_folder(root, per_class=8, classes=("cats", "dogs", "owls")):
    """root/<class>/*.jpg of distinct smooth pictures (so no two are near-copies)."""
    for c, name in enumerate(classes):
        for i in range(per_class):
            save(scene(1000 * c + i), root / name / f"{name}_{i}.jpg", quality=92)
    return root


def load(root, tmp_path, **kw):
    from cifar.data import load_image_folder

    logs = []
    kw.setdefault("log", logs.append)
    data = load_image_folder(root, image_size=32, cache_dir=tmp_path / "cache", **kw)
    return data, "\n".join(logs)


def all_rows(data):
    files = data.files_train + data.files_test
    return files, np.concatenate([data.groups_train, data.groups_test])


def test_duplicates_in_one_class_keep_one_copy_and_conflicts_are_left_out(tmp_path):
    root = scene_folder(tmp_path / "pets")
    (root / "cats" / "cats_0_copy.jpg").write_bytes((root / "cats" / "cats_0.jpg").read_bytes())
    (root / "dogs" / "stray.jpg").write_bytes((root / "owls" / "owls_3.jpg").read_bytes())
    data, log = load(root, tmp_path)
    files = data.files_train + data.files_test
    assert "cats/cats_0.jpg" in files and "cats/cats_0_copy.jpg" not in files
    assert "dogs/stray.jpg" not in files and "owls/owls_3.jpg" not in files
    assert len(files) == 24 - 1 and len(data.y_train) + len(data.y_test) == 23
    checks = data.extra["data_checks"]
    reasons = {d["file"]: d["reason"] for d in checks["dropped"]}
    assert reasons["cats/cats_0_copy.jpg"] == "exact duplicate of cats/cats_0.jpg"
    assert reasons["dogs/stray.jpg"].startswith("label conflict: the same file is filed under")
    assert "owls/owls_3.jpg" in reasons and len(reasons) == 3
    assert checks["identical_sets"] == 2 and checks["label_conflicts"] == 1
    assert checks["no_group_straddles_train_and_test"] is True
    assert "left out 3 photo(s)" in log and "label conflict" in log
    # a second load reads the store and gives the same rows and reasons
    again, log = load(root, tmp_path)
    assert "decoded" not in log and again.files_train == data.files_train
    assert again.extra["data_checks"] == checks
    assert np.array_equal(again.x_test, data.x_test)


def split_folder(ds):
    """ds/train/<class>/ (4 photos each) and ds/test/<class>/ (2 other photos each)."""
    scene_folder(ds / "train", per_class=4)
    for c, name in enumerate(("cats", "dogs", "owls")):
        for i in range(2):
            save(scene(7000 + 10 * c + i), ds / "test" / name / f"t{i}.jpg")
    return ds


def test_duplicate_across_given_splits_keeps_the_test_copy(tmp_path):
    ds = split_folder(tmp_path / "ds")
    (ds / "test" / "dogs" / "leak.jpg").write_bytes(
        (ds / "train" / "dogs" / "dogs_1.jpg").read_bytes()
    )
    data, _ = load(ds, tmp_path)
    assert "test/dogs/leak.jpg" in data.files_test
    assert "train/dogs/dogs_1.jpg" not in data.files_train
    dropped = data.extra["data_checks"]["dropped"]
    assert dropped == [
        {"file": "train/dogs/dogs_1.jpg", "reason": "exact duplicate of test/dogs/leak.jpg"}
    ]


def test_duplicates_error_and_keep_policies(tmp_path):
    root = scene_folder(tmp_path / "pets")
    (root / "dogs" / "stray.jpg").write_bytes((root / "owls" / "owls_3.jpg").read_bytes())
    (root / "cats" / "again.jpg").write_bytes((root / "cats" / "cats_1.jpg").read_bytes())
    with pytest.raises(DataError, match=r"same content[\s\S]*dogs/stray.jpg = owls/owls_3.jpg"):
        load(root, tmp_path, duplicates="error")
    data, _ = load(root, tmp_path, duplicates="keep")
    files, groups = all_rows(data)
    assert len(files) == 26 and data.extra["data_checks"]["dropped"] == []
    # kept, but identical files are one group and never straddle train and test
    side = {f: f in data.files_test for f in files}
    assert side["dogs/stray.jpg"] == side["owls/owls_3.jpg"]
    assert side["cats/again.jpg"] == side["cats/cats_1.jpg"]
    assert groups[files.index("dogs/stray.jpg")] == groups[files.index("owls/owls_3.jpg")]


def test_near_copies_are_grouped_in_one_split_and_dropped_beside_a_given_test_set(tmp_path):
    root = scene_folder(tmp_path / "pets", per_class=10)
    base = Image.open(root / "cats" / "cats_2.jpg")
    save(base.resize((200, 150)), root / "cats" / "small.jpg", quality=70)
    save(ImageOps.mirror(base), root / "cats" / "mirror.png")
    save(jpeg(base, 60), root / "dogs" / "mislabelled copy.jpg")
    for seed in range(5):  # the same three-picture group in every split of several seeds
        data, _ = load(root, tmp_path, seed=seed)
        files, groups = all_rows(data)
        members = [files.index(f) for f in ("cats/cats_2.jpg", "cats/small.jpg", "cats/mirror.png")]
        members.append(files.index("dogs/mislabelled copy.jpg"))
        assert len(set(groups[members])) == 1
        assert len({files[i] in data.files_test for i in members}) == 1
        checks = data.extra["data_checks"]
        assert checks["near_copy_groups"] == 1 and checks["photos_in_groups"] == 4
        assert checks["no_group_straddles_train_and_test"] is True
    # the same photo under train/ and test/ of a split folder: the training copy goes
    ds = split_folder(tmp_path / "ds")
    save(
        Image.open(ds / "test" / "owls" / "t1.jpg").resize((160, 120)),
        ds / "train" / "owls" / "x.jpg",
    )
    data, log = load(ds, tmp_path)
    assert "train/owls/x.jpg" not in data.files_train
    assert data.extra["data_checks"]["dropped"] == [
        {"file": "train/owls/x.jpg", "reason": "near-copy of test image test/owls/t1.jpg"}
    ]
    reported, log = load(ds, tmp_path, near_copies="report")
    assert "train/owls/x.jpg" in reported.files_train
    checks = reported.extra["data_checks"]
    assert checks["overlaps"] == ["train/owls/x.jpg ~ test/owls/t1.jpg"]
    assert checks["no_group_straddles_train_and_test"] is False and "near-copies of test" in log
    off, _ = load(ds, tmp_path, near_copies="off")
    assert "train/owls/x.jpg" in off.files_train
    assert off.extra["data_checks"]["near_copy_groups"] == 0


def test_exclude_file_leaves_photos_out_before_decoding(tmp_path):
    root = scene_folder(tmp_path / "pets")
    (root / "owls" / "owls_5.jpg").write_bytes(b"not even an image")  # excluded: never decoded
    listed = tmp_path / "exclude.txt"
    write_exclude(listed, ["owls/owls_5.jpg", "cats/cats_1.jpg", "cats/gone.jpg"], "test")
    data, log = load(root, tmp_path, exclude=listed)
    files, _ = all_rows(data)
    assert len(files) == 22 and "cats/cats_1.jpg" not in files
    assert "leaving out 2 photo(s)" in log
    assert "warning: 1 path(s) in" in log and "cats/gone.jpg" in log
    checks = data.extra["data_checks"]
    assert checks["excluded"] == 2 and checks["exclude_unmatched"] == 1


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize("suffix", [".tif", ".heic"])
def test_tiff_and_heic_photos_load_upright_through_the_one_decoder(tmp_path, suffix):
    from cifar.imageio import load_image

    # a wide picture, left half red, rotated by its EXIF orientation 6 (90 degrees clockwise)
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (220, 20, 20)
    pixels[:, 40:] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"photo{suffix}"
    if suffix == ".heic":  # pillow-heif writes HEIC too (and turns the pixels when reading)
        import pillow_heif

        pillow_heif.register_heif_opener()
        Image.fromarray(pixels).save(path, format="HEIF", quality=95, exif=exif.tobytes())
    else:
        Image.fromarray(pixels).save(path, format="TIFF", exif=exif)
    upright = load_image(path)
    assert upright.shape == (80, 40, 3)  # turned upright: now tall
    assert upright[5, 20, 0] > 150 and upright[-5, 20, 2] > 150  # red on top after the turn
    root = scene_folder(tmp_path / "pets", per_class=3)
    (root / "cats" / f"z{suffix}").write_bytes(path.read_bytes())
    data, _ = load(root, tmp_path)
    assert f"cats/z{suffix}" in data.files_train + data.files_test


# ------------------------------------------------------------------ commands


def messy_folder(root):
    """Photos with a duplicate, a cross-class conflict, near-copies and junk files."""
    scene_folder(root, per_class=8)
    cats = root / "cats"
    (cats / "cats_0_copy.jpg").write_bytes((cats / "cats_0.jpg").read_bytes())
    (root / "dogs" / "stray.jpg").write_bytes((root / "owls" / "owls_3.jpg").read_bytes())
    base = Image.open(cats / "cats_4.jpg")
    save(base.resize((180, 135)), cats / "cats_4_small.jpg", quality=70)
    save(ImageOps.mirror(base), cats / "cats_4_mirror.jpg", quality=80)
    save(jpeg(Image.open(root / "dogs" / "dogs_2.jpg"), 60), root / "dogs" / "dogs_2_q60.jpg")
    (root / ".DS_Store").write_bytes(b"\0")
    (cats / "Thumbs.db").write_bytes(b"\0")
    (cats / "._cats_1.jpg").write_bytes(b"\0")
    (root / "dogs" / "notes.txt").write_text("from the web")
    return root


def test_cifar_data_takes_set_and_folder_and_reports_ignored_files_and_checks(tmp_path, capsys):
    from cifar.cli import main

    root = messy_folder(tmp_path / "pets")
    out = tmp_path / "runs" / "data" / "s.png"
    argv = ["data", "--folder", str(root), "--set", "data.near_copies=report"]
    assert main([*argv, "--set", "model.input_size=32", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ignored 4 non-image file(s): .DS_Store, cats/._cats_1.jpg, cats/Thumbs.db" in text
    assert "data checks: 2 set(s) of identical files (1 filed under two classes)" in text
    assert "near-copy group(s)" in text and f"cifar audit --data-dir {root}" in text
    assert "images: " in text and out.is_file()
    assert main(["data", "--folder", str(root), "--set", "data.duplicates=maybe"]) == 2
    assert "data.duplicates: must be one of drop, error, keep" in capsys.readouterr().err


def test_training_on_a_messy_folder_keeps_every_near_copy_group_in_one_split(tmp_path):
    """No manual step: duplicates, a label conflict, near-copies and junk; 1 tiny epoch."""
    import json

    from cifar.config import load_config
    from cifar.trainer import Trainer

    root = messy_folder(tmp_path / "pets")
    cfg = load_config(
        {
            "name": "messy",
            "runs_dir": str(tmp_path / "runs"),
            "data": {"data_dir": str(root), "batch_size": 8, "val_fraction": 0.2},
            "model": {"name": "custom_cnn", "input_size": 32},
            "phases": [{"name": "scratch", "trainable": "all", "epochs": 1, "patience": 0}],
            "callbacks": {"confusion_matrix_every": 0, "progress": False},
        }
    )
    trainer = Trainer(cfg)
    trainer.fit()
    recorded = json.loads((trainer.run_dir / "metrics.json").read_text())["data"]["data_checks"]
    assert recorded["no_group_straddles_train_and_test"] is True
    assert recorded["no_group_straddles_train_val_test"] is True
    assert recorded["label_conflicts"] == 1 and recorded["near_copy_groups"] >= 2
    left_out = {d["file"] for d in recorded["dropped"]}
    assert left_out == {"cats/cats_0_copy.jpg", "dogs/stray.jpg", "owls/owls_3.jpg"}
    # and from the splits themselves: every group's photos sit in one of train/val/test
    d = trainer.datasets
    data = d.data
    side = {}
    for name, files, groups, rows in (
        ("train", data.files_train, data.groups_train, d.train_idx),
        ("val", data.files_train, data.groups_train, d.val_idx),
        ("test", data.files_test, data.groups_test, np.arange(len(data.files_test))),
    ):
        for i in rows:
            side.setdefault(int(groups[i]), set()).add(name)
            assert files[i] not in left_out
    assert all(len(s) == 1 for s in side.values())
    group_of = dict(
        zip(
            data.files_train + data.files_test,
            np.concatenate([data.groups_train, data.groups_test]),
            strict=True,
        )
    )
    copies = ["cats/cats_4.jpg", "cats/cats_4_small.jpg", "cats/cats_4_mirror.jpg"]
    assert len({group_of[f] for f in copies}) == 1
    assert group_of["dogs/dogs_2.jpg"] == group_of["dogs/dogs_2_q60.jpg"]


def patterned(seed: int) -> Image.Image:
    """scene(0) with a coarse random colour print in its middle that leaves the brightness as
    it is: the same grey picture (so the same pHash), a different picture to the eye, like one
    garment shape in other colours."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(scene(0), dtype=np.float64)
    luma = np.array([0.299, 0.587, 0.114])
    colours = rng.uniform(-60, 60, (4, 6, 3))
    colours -= (colours @ luma)[..., None] * luma / (luma @ luma)  # no change in brightness
    pixels[60:180, 70:250] += colours.repeat(30, axis=0).repeat(30, axis=1)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_thumbnails_confirm_copies_and_part_photos_that_only_look_alike():
    base = patterned(1)
    w, h = base.size
    copies = [
        base.resize((192, 144), Image.BILINEAR),
        jpeg(base, 65),
        ImageOps.mirror(base),
        jpeg(base.crop((16, 12, w - 16, h - 12)), 85),  # a 90 % centre crop
    ]
    alike = [patterned(s) for s in (2, 3, 4)]
    pictures = [base, *copies, *alike]
    hashes = np.stack([perceptual_hash(img) for img in pictures])
    thumbs = np.stack([copy_thumbnails(img) for img in pictures])
    assert thumbs.shape == (8, 2, 32, 32, 3) and thumbs.dtype == np.uint8
    pairs = near_copy_pairs(hashes)
    matched = {(int(i), int(j)) for i, j, _ in pairs}
    # The hash alone pairs the alike photos with the original: the case to fix.
    assert {(0, 5), (0, 6), (0, 7)} & matched
    confirmed = {(int(i), int(j)) for i, j, _ in confirm_pairs(pairs, thumbs)}
    assert {(0, r) for r in range(1, 5)} <= confirmed
    assert not any(i >= 5 or j >= 5 for i, j in confirmed)
    assert thumbnail_correlation(thumbs[0], thumbs[3]) >= MIN_CORRELATION  # mirror
    assert thumbnail_correlation(thumbs[0], thumbs[5]) < MIN_CORRELATION
    # The loader's grouping confirms too: the alike photos stay singletons.
    alive = np.ones(8, dtype=bool)
    digests = [f"d{i}" for i in range(8)]
    groups, facts = near_copy_groups(hashes, digests, alive, "group", thumbs)
    assert len(set(groups[:5])) == 1 and len(set(groups.tolist())) == 4
    assert facts["hash_matches"] > facts["near_copy_pairs"] >= 4


CLOTHING = SHARED / "data" / "clothing10"


@pytest.mark.skipif(not CLOTHING.is_dir(), reason=f"clothing10 not found at {CLOTHING}")
def test_real_garments_that_share_a_silhouette_are_not_near_copies():
    from cifar.imageio import decode_rgb

    names = [
        "train/dress/09c09dd1-ccef-4ced-96dd-ba3b828a49b4.jpg",  # a dress...
        "test/pants/012d1ca9-baaf-4b01-8b60-955f3408b1b7.jpg",  # ...and trousers: 10 bits apart
        "train/shorts/6075b4a5-5b1a-4ce0-aea0-9dbfbca7c35c.jpg",  # the same photo filed twice
        "train/skirt/637a56e4-7fa6-4f75-8859-0f8902461554.jpg",
    ]
    pictures = [decode_rgb((CLOTHING / n).read_bytes(), size=256) for n in names]
    hashes = np.stack([perceptual_hash(p) for p in pictures])
    thumbs = np.stack([copy_thumbnails(p) for p in pictures])
    pairs = near_copy_pairs(hashes)
    assert {(0, 1), (2, 3)} <= {(int(i), int(j)) for i, j, _ in pairs}
    assert [(int(i), int(j)) for i, j, _ in confirm_pairs(pairs, thumbs)] == [(2, 3)]
