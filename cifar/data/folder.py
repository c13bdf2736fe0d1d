"""Image-folder data sets at the model's resolution (see :mod:`cifar.data.folder_layout`).

One pass decodes every photo, hashes it and checks it (:mod:`cifar.data.duplicates`): exact
duplicates and near-copies are handled by the configured policies, then the splits are made so
that no group of near-copies straddles train and test, and that is verified.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifar.data.dataset import ImageData, portable_path
from cifar.data.duplicates import (
    Entry,
    cross_split_copies,
    exact_duplicates,
    near_copy_groups,
)
from cifar.data.exclude import read_exclude
from cifar.data.folder_layout import IMAGE_EXTENSIONS, FolderLayout, scan_folder
from cifar.data.image_store import Decoded, decode_to_store
from cifar.data.near_copies import DEFAULT_MAX_DISTANCE, NEAR_COPY_RULE
from cifar.data.split import straddling_groups, stratified_group_split, stratified_split
from cifar.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "split_files"]

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "cifar-transfer-cache"
# Bump when the rules of _arrange change, so cached decisions made by the old ones are redone.
ARRANGE_RULE = "duplicates+near-copies+group-split/v1"
_SHOWN = 5


def load_image_folder(
    root: str | os.PathLike,
    image_size: int = 160,
    test_fraction: float = 0.2,
    seed: int = 42,
    cache_dir: str | os.PathLike | None = None,
    skip_bad: bool = False,
    log: Callable[[str], None] = print,
    duplicates: str = "drop",
    near_copies: str = "group",
    exclude: str | os.PathLike | None = None,
) -> ImageData:
    """Load an image folder (any layout of :mod:`~cifar.data.folder_layout`) at ``image_size``.

    Every photo is decoded once into a verified memory-mapped uint8 array under
    ``cache_dir/images`` (default: a folder in the system's temp directory), short side
    resized to ``image_size`` and centre-cropped; a second call with the same files, size and
    settings reads that array instead of decoding again. The arrays of the returned
    ``ImageData`` are slices of it: nothing is copied into memory.

    Args:
        root: the folder.
        image_size: the model's square input size (160 for MobileNetV2).
        test_fraction: share of each class held out as the test set when the folder has no
            test (or validation) folder.
        seed: seeds that split.
        cache_dir: where decoded arrays are kept.
        skip_bad: train without unreadable images (listed in a warning) instead of stopping.
        log: where progress and warnings go.
        duplicates: ``"drop"``, ``"error"`` or ``"keep"`` (see :mod:`cifar.data.duplicates`).
        near_copies: ``"group"``, ``"report"`` or ``"off"`` (see :mod:`cifar.data.duplicates`).
        exclude: a text file of photos to leave out (:mod:`cifar.data.exclude`).

    The returned ``extra["data_checks"]`` records what was found and left out, and whether a
    near-copy group straddles train and test; ``files_train``/``files_test`` name every row and
    ``groups_train``/``groups_test`` give its near-copy group.
    """
    layout = scan_folder(root)
    entries = [
        Entry(rel, y, split if layout.folders else "pool")
        for split in ("train", "val", "test")
        for rel, y in layout.splits.get(split, [])
    ]
    excluded = {}
    if exclude:
        entries, excluded = _apply_exclude(entries, exclude, layout.root, log)
    if layout.ignored:
        log(f"data: {layout.describe_ignored(_SHOWN)}")

    def arrange(decoded: Decoded) -> tuple[list[int], dict]:
        return _arrange(decoded, entries, layout, duplicates, near_copies, test_fraction, seed)

    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    images, extra, digest = decode_to_store(
        layout.root,
        [e.rel for e in entries],
        image_size,
        cache / "images",
        arrange,
        key_parts={
            "arrange": ARRANGE_RULE,
            "duplicates": duplicates,
            "near_copies": near_copies,
            "max_distance": DEFAULT_MAX_DISTANCE,
            "near_copy_rule": NEAR_COPY_RULE,
            "test_fraction": test_fraction if not layout.folders else 0,
            "seed": seed if not layout.folders else 0,
        },
        skip_bad=skip_bad,
        hash_images=near_copies != "off",
        log=log,
    )
    label_of = {e.rel: e.label for e in entries}
    files, n_fit, n_val = extra["files"], extra["n_fit"], extra["n_val"]
    labels = np.asarray([label_of[f] for f in files], dtype=np.int64)
    groups = np.asarray(extra["groups"], dtype=np.int64)
    checks = {**extra["checks"], **excluded}
    if checks["dropped"]:
        shown = [f"{d['file']}: {d['reason']}" for d in checks["dropped"]]
        log(
            f"data: left out {len(shown)} photo(s) (exact duplicates, label conflicts, copies of "
            "test images):\n  " + "\n  ".join(shown[:20]) + _more(shown, 20)
        )
    if checks["overlaps"] and near_copies == "report":
        log(
            f"warning: {checks['overlap_count']} training photo(s) are near-copies of test or "
            "validation photos (kept, as data.near_copies = 'report'):\n  "
            + "\n  ".join(checks["overlaps"][:10])
            + _more(checks["overlaps"], 10)
        )
    return ImageData(
        x_train=images[:n_fit],
        y_train=labels[:n_fit],
        x_test=images[n_fit:],
        y_test=labels[n_fit:],
        class_names=list(layout.class_names),
        source=portable_path(layout.root),
        extra=_facts(layout, extra["bad"], checks),
        val_idx=np.arange(n_fit - n_val, n_fit) if n_val else None,
        digest=digest,
        files_train=files[:n_fit],
        files_test=files[n_fit:],
        groups_train=groups[:n_fit],
        groups_test=groups[n_fit:],
    )


def _apply_exclude(
    entries: list[Entry], exclude: str | os.PathLike, root: Path, log: Callable[[str], None]
) -> tuple[list[Entry], dict]:
    """Leave out the photos the exclude file lists (before decoding), warn about the others."""
    names = read_exclude(exclude, root)
    listed = {e.rel for e in entries}
    unknown = sorted(names - listed)
    kept = [e for e in entries if e.rel not in names]
    left_out = len(entries) - len(kept)
    log(f"data: leaving out {left_out} photo(s) listed in {exclude}")
    if unknown:
        log(
            f"warning: {len(unknown)} path(s) in {exclude} name no image in {root}: "
            + ", ".join(unknown[:_SHOWN])
            + _more(unknown, _SHOWN)
        )
    facts = {
        "exclude_file": str(exclude),
        "excluded": left_out,
        "exclude_unmatched": len(unknown),
    }
    return kept, facts


def _arrange(
    decoded: Decoded,
    entries: list[Entry],
    layout: FolderLayout,
    duplicates: str,
    near_copies: str,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], dict]:
    """The rows to keep (training, then validation, then test) and why the others went."""
    names = layout.class_names
    alive = np.asarray([d is not None for d in decoded.sha256], dtype=bool)
    dropped, dup_facts = exact_duplicates(entries, decoded.sha256, names, duplicates)
    alive[list(dropped)] = False
    groups, near_facts = near_copy_groups(
        decoded.hashes, decoded.sha256, alive, near_copies, decoded.thumbnails
    )
    crossing, overlaps = cross_split_copies(entries, groups, alive, near_copies)
    dropped.update(crossing)
    alive[list(crossing)] = False
    _check_enough_left(entries, alive, layout, bool(dropped))
    labels = np.asarray([e.label for e in entries], dtype=np.int64)
    split_of = np.asarray([e.split for e in entries])
    if not layout.folders:  # root/<class>/*: carve the test set, seeded, stratified, by group
        rows = np.flatnonzero(alive)
        keep, held = stratified_group_split(labels[rows], groups[rows], test_fraction, seed)
        train, val, test = rows[keep], rows[:0], rows[held]
    else:
        train, val, test = (
            np.flatnonzero(alive & (split_of == s)) for s in ("train", "val", "test")
        )
        if "test" not in layout.folders:  # train + val only: the validation folder is the test set
            val, test = val[:0], val
    straddling = straddling_groups(groups, np.concatenate([train, val]), test)
    if len(straddling) and near_copies == "group":
        example = [entries[i].rel for i in np.flatnonzero(groups == straddling[0])]
        raise DataError(  # our bug, not the user's: the rules above must prevent it
            f"internal error: {len(straddling)} near-copy group(s) straddle train and test "
            f"after grouping (e.g. {example})"
        )
    clean = len(straddling) == 0
    checks = {
        "duplicates": duplicates,
        "near_copies": near_copies,
        **dup_facts,
        **near_facts,
        "dropped": sorted(
            ({"file": entries[i].rel, "reason": r} for i, r in dropped.items()),
            key=lambda d: d["file"],
        ),
        "overlap_count": len(overlaps),
        "overlaps": overlaps[:100],
        "straddling_groups": len(straddling),
        "no_group_straddles_train_and_test": clean,
        "statement": (
            "no near-copy or duplicate group straddles train and test"
            if clean
            else f"{len(straddling)} near-copy group(s) straddle train and test "
            f"(data.near_copies = {near_copies!r})"
        ),
    }
    rows = np.concatenate([train, val, test]).tolist()
    extra = {
        "files": [entries[i].rel for i in rows],
        "n_fit": len(train) + len(val),
        "n_val": len(val),
        "groups": groups[rows].tolist(),
        "checks": checks,
    }
    return rows, extra


def _check_enough_left(
    entries: list[Entry], alive: np.ndarray, layout: FolderLayout, any_dropped: bool
) -> None:
    """DataError when a class is left with too few photos to split (after leaving some out)."""
    need = {"pool": 2, "train": 2, "val": 1, "test": 1}
    counts: dict[tuple[str, int], int] = {}
    for e, ok in zip(entries, alive, strict=True):
        counts[(e.split, e.label)] = counts.get((e.split, e.label), 0) + int(ok)
    short = [
        f"{layout.folders.get(split, '') + '/' if split != 'pool' else ''}"
        f"{layout.class_names[label]}/ ({n})"
        for (split, label), n in sorted(counts.items())
        if n < need[split]
    ]
    if short:
        why = " after leaving out duplicates and copies of test images" if any_dropped else ""
        raise DataError(
            f"{layout.root}: too few usable photos{why} in {', '.join(short)}; add photos, or set "
            'data.duplicates = "keep" / data.near_copies = "report" to keep them'
        )


def split_files(
    layout: FolderLayout, test_fraction: float, seed: int
) -> dict[str, list[tuple[str, int]]]:
    """``(relative path, label)`` of the ``"train"``, ``"val"`` and ``"test"`` splits.

    A test folder is the test set; without one the validation folder is; a folder of class
    folders only has a test set carved from it (``test_fraction`` of each class, seeded).
    """
    train = list(layout.splits["train"])
    val = list(layout.splits.get("val", []))
    test = list(layout.splits.get("test", []))
    if not layout.folders:  # root/<class>/*: carve the test set, seeded and stratified
        labels = np.asarray([y for _, y in train])
        keep, held = stratified_split(labels, test_fraction, seed)
        train, test = [train[i] for i in keep], [train[i] for i in held]
    elif not test:  # train + val only: the validation folder is the test set
        train, test, val = train, val, []
    return {"train": train, "val": val, "test": test}


def _facts(layout: FolderLayout, bad: list[str], checks: dict) -> dict:
    return {
        "layout": layout.kind,
        "test_source": layout.test_source,
        "val_source": layout.val_source,
        "ignored_files": len(layout.ignored),
        "ignored_examples": layout.ignored[:_SHOWN],
        "skipped_unreadable": bad,
        "data_checks": checks,
    }


def _more(items: list, shown: int) -> str:
    return f" ... and {len(items) - shown} more" if len(items) > shown else ""
