"""Acceptance benchmark of ``cifar audit`` on a dirty copy of cats_and_dogs_filtered/train.

Usage: python benchmarks/audit_dirty.py [--source DIR] [--size 224] [--tune] [--seed 0] [--write]

Builds, in a temporary folder (deleted afterwards, never committed), a copy of
``../shared/data/cats_and_dogs_filtered/train`` (2,000 photos, cats/ and dogs/) made dirty with
the seed: 40 labels flipped (20 cats moved to dogs/, 20 dogs to cats/), 20 planted near-copies
under new names in their photo's class (5 each: resized to 50-80 %, re-saved as JPEG quality
60-90, a 90 % centre crop, a horizontal flip) and 3 exact duplicates filed under the other
class. Then audits it as ``cifar audit`` does, twice with one cache folder (cold: decoding and
features; warm: both cached), and prints the targets of issue 24: flips among the top 60 label
suspects (>= 38 of 40), planted near-copy pairs found (>= 19 of 20) and other pairs flagged
(<= 10, listed), cross-class duplicates named (3 of 3), the time of each audit (<= 3 min cold,
<= 30 s warm) and peak memory. ``--tune`` also scores variants on the cached features:
features with/without the mirror average, the logistic regression's C and k, and near-copy
rules (pHash alone, cosine alone, both).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "cats_and_dogs_filtered" / "train"
WEIGHTS = (
    ROOT.parent
    / "shared"
    / "weights"
    / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
)
TRANSFORMS = ("resize", "jpeg", "crop90", "mirror")


def plant_copy(source: Path, target: Path, transform: str, rng) -> str:
    """Write a near-copy of ``source`` to ``target``; a short description of what was done."""
    from PIL import Image, ImageOps

    img = Image.open(source).convert("RGB")
    quality = 90
    if transform == "resize":
        scale = rng.uniform(0.5, 0.8)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        what = f"resized to {scale:.0%}"
    elif transform == "jpeg":
        quality = int(rng.integers(60, 91))
        what = f"JPEG quality {quality}"
    elif transform == "crop90":
        w, h = img.size
        dw, dh = round(w * 0.05), round(h * 0.05)
        img = img.crop((dw, dh, w - dw, h - dh))
        what = "90% centre crop"
    else:
        img = ImageOps.mirror(img)
        what = "mirrored"
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    target.write_bytes(buffer.getvalue())
    return what


def make_dirty(source: Path, dest: Path, seed: int) -> dict:
    """Copy ``source`` (cats/, dogs/) into ``dest`` with the planted issues; what was planted."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in source.iterdir() if p.is_dir())
    files = {c: sorted(p.name for p in (source / c).iterdir() if p.is_file()) for c in classes}
    for c in classes:
        shutil.copytree(source / c, dest / c)
    flips, copies, duplicates = [], [], []
    used: set[str] = set()
    for c, other in ((classes[0], classes[1]), (classes[1], classes[0])):
        for name in rng.choice(files[c], 20, replace=False):
            shutil.move(dest / c / name, dest / other / name)
            flips.append(f"{other}/{name}")
            used.add(f"{c}/{name}")
    pool = [f"{c}/{n}" for c in classes for n in files[c] if f"{c}/{n}" not in used]
    picks = rng.choice(pool, 23, replace=False)
    for k, rel in enumerate(picks[:20]):
        c = rel.split("/")[0]
        new = f"{c}/copy_{k:02d}.jpg"
        what = plant_copy(source / rel, dest / new, TRANSFORMS[k % 4], rng)
        copies.append((rel, new, TRANSFORMS[k % 4], what))
    for k, rel in enumerate(picks[20:]):
        c = rel.split("/")[0]
        other = classes[1 - classes.index(c)]
        new = f"{other}/dup_{k}.jpg"
        shutil.copyfile(source / rel, dest / new)
        duplicates.append((rel, new))
    return {"flips": flips, "copies": copies, "duplicates": duplicates}


def flips_in_top(result, flips: list[str], top: int = 60) -> int:
    """How many flipped files are among the ``top`` label suspects."""
    files = result.inventory.files
    return len({files[r] for r in result.suspects[:top]} & set(flips))


def copy_scores(pairs, files: list[str], copies, duplicates) -> tuple[int, list[str]]:
    """(planted pairs among ``pairs``, the other pairs as text)."""
    planted = {frozenset((a, b)) for a, b, *_ in copies}
    planted |= {frozenset(d) for d in duplicates}
    found = {frozenset((files[i], files[j])) for i, j in pairs.pairs}
    others = [
        f"{files[i]} ~ {files[j]} (pHash {d}, cosine {c:.3f})"
        for (i, j), d, c in zip(pairs.pairs, pairs.hash_distance, pairs.cosine, strict=True)
        if frozenset((files[i], files[j])) not in planted
    ]
    return len(found & {frozenset((a, b)) for a, b, *_ in copies}), others


def tune(result, planted: dict, lines: list[str]) -> None:
    """Score feature, classifier and near-copy variants on the cached features."""
    import numpy as np

    from cifar.audit.features import backbone_features, pooled
    from cifar.audit.findings import suspects
    from cifar.audit.label_issues import find_label_issues
    from cifar.audit.near_copies import NearCopyRule, candidate_pairs
    from cifar.audit.probabilities import out_of_fold_probabilities

    inv, s = result.inventory, result.settings
    quiet = lambda *_: None  # noqa: E731
    feats = backbone_features(
        inv.images, inv.digest, s.cache_dir / "audit", s.backbone, s.weights, s.engine, quiet
    )
    conflicts = {r for g in result.duplicates if g.conflict for r in g.rows}
    flips = set(planted["flips"])
    lines.append("label suspects: flips in the top 60 (out-of-fold accuracy) per variant")
    for mirror in (True, False):
        vectors = pooled(feats, mirror)
        for folds, c in [(5, 0.1), (5, 0.3), (5, 1.0), (5, 3.0), (5, 10.0), (10, 1.0)]:
            probs = out_of_fold_probabilities(vectors, inv.labels, 2, folds, c, s.seed)
            ranked = suspects(find_label_issues(inv.labels, probs), conflicts)
            hits = len({inv.files[r] for r in ranked[:60]} & flips)
            accuracy = np.mean(probs.argmax(1) == inv.labels)
            lines.append(
                f"  mirror {'on ' if mirror else 'off'} k={folds:<2d} C={c:<5g}: {hits}/40 "
                f"({accuracy:.1%})"
            )
    vectors = pooled(feats, True)
    candidates = candidate_pairs(inv.hashes, vectors)
    index = {f: i for i, f in enumerate(inv.files)}
    lines.append("planted copies: pHash distance / cosine (mirror-averaged features)")
    for a, b, transform, what in planted["copies"]:
        i, j = sorted((index[a], index[b]))
        hit = np.flatnonzero((candidates.pairs[:, 0] == i) & (candidates.pairs[:, 1] == j))
        measure = (
            f"{candidates.hash_distance[hit[0]]:>2d} / {candidates.cosine[hit[0]]:.3f}"
            if len(hit)
            else "not a candidate"
        )
        lines.append(f"  {transform:<7s} {what:<18s} {measure}")
    identical = np.asarray(
        [inv.sha256[i] == inv.sha256[j] for i, j in candidates.pairs], dtype=bool
    )
    rules = {
        "pHash <= 8": NearCopyRule(8, None, None, None),
        "pHash <= 12": NearCopyRule(12, None, None, None),
        "cosine >= 0.90": NearCopyRule(None, 0.90, None, None),
        "cosine >= 0.95": NearCopyRule(None, 0.95, None, None),
        "pHash <= 12 or cosine >= 0.95": NearCopyRule(12, 0.95, None, None),
        "pHash <= 10 or cos >= .93 or (pHash <= 22 and cos >= .88)": NearCopyRule(
            10, 0.93, 22, 0.88
        ),
        "pHash <= 6 or cos >= .97 or (pHash <= 16 and cos >= .85)": NearCopyRule(6, 0.97, 16, 0.85),
        "pHash <= 8 or cos >= .97 or (pHash <= 20 and cos >= .85)": NearCopyRule(8, 0.97, 20, 0.85),
        "pHash <= 6 or (pHash <= 16 and cos >= .85)": NearCopyRule(6, None, 16, 0.85),
    }
    lines.append("near-copy rules: planted pairs found / other pairs flagged")
    for name, rule in rules.items():
        chosen = candidates.select(
            rule.matches(candidates.hash_distance, candidates.cosine) & ~identical
        )
        found, others = copy_scores(chosen, inv.files, planted["copies"], planted["duplicates"])
        lines.append(f"  {name:<58s} {found:>2d}/20, {len(others)} other")


def main(argv: list[str] | None = None) -> None:
    """Build the dirty folder, audit it cold and warm, print (and optionally record) targets."""
    from benchlog import bench_parser, machine_line, peak_rss_mb, write_section

    parser = bench_parser(__doc__)
    parser.add_argument("--source", default=str(SOURCE), help="cats_and_dogs_filtered/train")
    parser.add_argument("--size", type=int, default=None, help="audit image size (default 224)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune", action="store_true", help="also score variants")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOBILENETV2_WEIGHTS", str(WEIGHTS))
    from cifar.audit import AuditSettings, run_audit
    from cifar.audit.report import write_report
    from cifar.errors import DataError

    source = Path(args.source)
    if not source.is_dir():
        raise DataError(f"{source} not found (the benchmark needs ../shared)")
    lines = [machine_line()]
    with tempfile.TemporaryDirectory(prefix="audit-dirty-") as tmp:
        tmp = Path(tmp)
        planted = make_dirty(source, tmp / "dirty", args.seed)
        settings = AuditSettings(tmp / "dirty", cache_dir=tmp / "cache", seed=args.seed)
        if args.size:
            settings.image_size = args.size
        times, steps = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            result = run_audit(settings, log=lambda *_: None)
            write_report(result, tmp / "out")
            times.append(time.perf_counter() - t0)
            steps.append(result.seconds)
        files = result.inventory.files
        flips = flips_in_top(result, planted["flips"])
        found, others = copy_scores(result.pairs, files, planted["copies"], planted["duplicates"])
        conflicts = {f.file for f in result.findings if f.kind == "label conflict"}
        named = sum(new in conflicts and old in conflicts for old, new in planted["duplicates"])
        s = result.settings
        lines += [
            f"folder: {len(files)} photos ({len(planted['flips'])} flipped labels, "
            f"{len(planted['copies'])} planted near-copies, {len(planted['duplicates'])} "
            "cross-class exact duplicates), seed "
            f"{args.seed}",
            f"audit: {s.backbone} at {s.image_size} px, mirror-averaged {s.mirror}, "
            f"{s.folds}-fold logistic regression C={s.c:g}; out-of-fold accuracy "
            f"{result.accuracy:.1%}; near-copies by {s.near_copy_rule.describe()}",
            f"flipped labels in the top 60 suspects: {flips}/40 (target >= 38)",
            f"planted near-copy pairs found: {found}/20 (target >= 19)",
            f"other pairs flagged: {len(others)} (target <= 10)",
            *(f"  {o}" for o in others),
            f"cross-class duplicates named: {named}/3 (target 3)",
            f"audit time: cold {times[0]:.1f} s (target <= 180), cached features "
            f"{times[1]:.1f} s (target <= 30)",
            f"  steps, cold: {steps[0]}",
            f"  steps, cached: {steps[1]}",
            f"peak RSS: {peak_rss_mb():.0f} MiB",
        ]
        if args.tune:
            tune(result, planted, lines)
    print("\n".join(lines))
    if args.write:
        path = write_section("audit-dirty", "Data audit of a dirty cats/dogs folder", lines)
        print(f"wrote {path}")


if __name__ == "__main__":
    from benchlog import run

    run(main)
