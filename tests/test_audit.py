"""``cifar audit``: its checks on generated folders, its files, the exclude file, read-only."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, requires_weights
from PIL import Image, ImageOps

from cifar.audit import AuditSettings, run_audit
from cifar.audit.duplicates import exact_duplicates
from cifar.audit.findings import EXCLUDE_KINDS
from cifar.audit.near_copies import NearCopyRule
from cifar.audit.outliers import find_outliers
from cifar.cli import main
from cifar.data.exclude import read_exclude

HUES = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 200)}


def textured(path: Path, colour, seed: int, size=(72, 56)) -> None:
    """A photo of one colour with its own smooth random texture (distinct perceptual hashes)."""
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.integers(0, 255, (5, 5, 3), dtype=np.uint8)).resize(
        size, Image.Resampling.BICUBIC
    )
    pixels = 0.75 * np.asarray(colour) + 0.25 * np.asarray(field, dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=92)


def dirty_folder(root: Path, per_class: int = 8) -> dict:
    """Three colour classes with a flipped label, a mirrored copy, a cross-class duplicate,
    an unreadable file and a non-image file; what was planted."""
    for c, (name, colour) in enumerate(HUES.items()):
        for i in range(per_class):
            textured(root / name / f"{name}_{i}.jpg", colour, seed=100 * c + i)
    shutil.move(root / "red" / "red_0.jpg", root / "blue" / "red_0.jpg")  # a wrong label
    ImageOps.mirror(Image.open(root / "green" / "green_1.jpg")).save(
        root / "green" / "mirrored.jpg", quality=92
    )
    shutil.copyfile(root / "blue" / "blue_2.jpg", root / "red" / "blue_copy.jpg")
    (root / "green" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "red" / "notes.txt").write_text("taken in 2019")
    return {
        "flip": "blue/red_0.jpg",
        "copy": ("green/green_1.jpg", "green/mirrored.jpg"),
        "conflict": {"blue/blue_2.jpg", "red/blue_copy.jpg"},
        "broken": "green/broken.jpg",
    }


def tree_digest(root: Path) -> str:
    """sha256 over every file's path, bytes and modification time under ``root``."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(f"{path.relative_to(root)}\0{path.stat().st_mtime_ns}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_audit_command_lists_planted_issues_and_leaves_the_folder_alone(tmp_path, capsys):
    root = tmp_path / "photos"
    planted = dirty_folder(root)
    before = tree_digest(root)
    out, exclude = tmp_path / "report", tmp_path / "exclude.txt"
    argv = [
        "audit",
        "--data-dir",
        str(root),
        "--out",
        str(out),
        "--write-exclude",
        str(exclude),
        "--image-size",
        "48",
        "--set",
        "model.weights=none",  # random weights keep it fast; checks below do not need ImageNet
        "--set",
        f'runs_dir="{tmp_path / "runs"}"',
        "--set",
        "cache_engine=tensorflow",  # no engine conversions: seconds
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "label conflict: 2" in printed and "unreadable: 1" in printed
    assert tree_digest(root) == before  # nothing moved, edited or deleted

    assert {p.name for p in out.iterdir()} >= {"AUDIT.md", "audit.html", "audit.csv", "thumbs"}
    rows = list(csv.DictReader((out / "audit.csv").open()))
    by_kind: dict[str, list[dict]] = {}
    for row in rows:
        by_kind.setdefault(row["issue"], []).append(row)
    assert {r["file"] for r in by_kind["label conflict"]} == planted["conflict"]
    assert [r["file"] for r in by_kind["unreadable"]] == [planted["broken"]]
    # Random features call most of these photos alike; the pair itself is checked with
    # ImageNet features below.
    assert planted["copy"][1] in {
        p for r in by_kind["near copy"] for p in (r["file"], r["partner"])
    }
    assert all(r["split"] == "pool" for r in by_kind["near copy"])
    markdown = (out / "AUDIT.md").read_text()
    assert "## Likely label errors" in markdown and "blue_copy.jpg" in markdown
    html = (out / "audit.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 10  # thumbnails embedded

    listed = read_exclude(exclude, root)
    expected = {r["file"] for r in rows if r["issue"] in EXCLUDE_KINDS}
    assert listed == expected and planted["conflict"] <= listed
    assert planted["broken"] not in listed

    assert main(argv) == 0  # a second audit reads the cached store (with hashes) and features
    again = capsys.readouterr().out
    assert again.count("cache: reusing") == 2 and "audit: features" not in again


@requires_weights
def test_imagenet_features_rank_the_flip_first_and_pair_the_mirror(
    tmp_path, monkeypatch, weights_path
):
    root = tmp_path / "photos"
    planted = dirty_folder(root, per_class=10)
    monkeypatch.setenv("MOBILENETV2_WEIGHTS", weights_path)
    settings = AuditSettings(root, cache_dir=tmp_path / "cache", image_size=96, engine="tensorflow")
    result = run_audit(settings, log=print)
    files = result.inventory.files
    pairs = {frozenset((files[i], files[j])) for i, j in result.pairs.pairs}
    assert frozenset(planted["copy"]) in pairs
    assert planted["conflict"] not in pairs  # byte-identical: a duplicate, not a near-copy
    assert files[result.suspects[0]] == planted["flip"]
    assert result.labels.flagged[result.suspects[0]]


def test_audit_needs_a_folder(capsys):
    assert main(["audit"]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_exact_duplicates_tell_conflicts_from_copies():
    groups = exact_duplicates(["a", "b", "a", "c", "b"], np.asarray([0, 1, 0, 1, 0]))
    assert [(g.rows, g.conflict) for g in groups] == [([0, 2], False), ([1, 4], True)]


def test_near_copy_rule_parts():
    rule = NearCopyRule(max_hash=10, min_cosine=0.95, joint_hash=20, joint_cosine=0.85)
    hashes = np.asarray([4, 30, 18, 18, 30])
    cosine = np.asarray([0.1, 0.97, 0.9, 0.8, 0.9])
    assert rule.matches(hashes, cosine).tolist() == [True, True, True, False, False]
    assert NearCopyRule(None, None, None, None).matches(hashes, cosine).sum() == 0


def test_a_photo_far_from_the_rest_is_an_outlier():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=64)
    vectors = centre + 0.1 * rng.normal(size=(60, 64))
    vectors[17] = rng.normal(size=64) * 3
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = find_outliers(vectors)
    assert np.flatnonzero(found.flagged).tolist() == [17]
    assert int(np.argmin(found.score)) == 17


@pytest.mark.slow
@requires_weights
def test_most_flips_among_200_real_photos_rank_in_the_top_20(tmp_path, monkeypatch, weights_path):
    source = SHARED / "data" / "cats_and_dogs_filtered" / "train"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    rng = np.random.default_rng(0)
    flipped = set()
    for c, other in (("cats", "dogs"), ("dogs", "cats")):
        names = sorted(p.name for p in (source / c).iterdir())[:100]
        flips = set(rng.choice(names, 5, replace=False))
        for name in names:
            label = other if name in flips else c
            (tmp_path / "photos" / label).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / c / name, tmp_path / "photos" / label / name)
            if name in flips:
                flipped.add(f"{label}/{name}")
    monkeypatch.setenv("MOBILENETV2_WEIGHTS", weights_path)
    settings = AuditSettings(tmp_path / "photos", cache_dir=tmp_path / "cache", engine="tensorflow")
    result = run_audit(settings, log=print)
    top = {result.inventory.files[r] for r in result.suspects[:20]}
    assert len(top & flipped) >= 8
