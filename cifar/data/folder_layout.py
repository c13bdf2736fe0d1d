"""Recognise an image folder's layout and list its class images, without decoding any.

Three layouts are recognised (class names always come from the folder names):

- ``root/<class>/*``: one pool; the test set is carved from it (stratified, seeded);
- ``root/train/<class>/*`` + ``root/test/<class>/*``: the given splits;
- ``root/train/<class>/*`` + ``root/val/`` or ``root/validation/<class>/*`` (+ optional
  ``root/test/<class>/*``): with a test folder, the validation folder is the early-stopping
  set; without one, the validation folder is the test set and early stopping uses a split
  carved from ``train/`` (so the reported figure comes from images no decision looked at).

Files are taken recursively inside each class folder; hidden files and files without an image
extension (``.DS_Store``, ``._IMG_1.jpg``, ``Thumbs.db``, ``LICENSE.txt``, scripts) are ignored,
counted and the first few named (:meth:`FolderLayout.describe_ignored`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cifar.errors import DataError

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
)
# Folder names (lower case) that name a split rather than a class.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
LAYOUT_HELP = (
    "an image folder is either root/<class>/*.jpg (one folder per class), or root/train/<class>/ "
    "with root/test/<class>/ and/or root/val/ (or validation/) <class>/ beside it"
)


@dataclass
class FolderLayout:
    """What an image folder holds: its classes and, per split, the image files with labels.

    ``splits`` maps ``"train"`` (always), ``"val"`` and ``"test"`` (when the folder has them)
    to ``(relative path, label)`` lists in a stable order (class, then path).
    """

    root: Path
    class_names: list[str]
    splits: dict[str, list[tuple[str, int]]]
    folders: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``"classes"`` for root/<class>/*, else the split folders, e.g. ``"train+val"``."""
        if not self.folders:
            return "classes"
        return "+".join(s for s in ("train", "val", "test") if s in self.folders)

    @property
    def test_source(self) -> str:
        """Which images the test figure comes from, in words."""
        if "test" in self.folders:
            return f"the {self.folders['test']}/ folder"
        if "val" in self.folders:
            return (
                f"the {self.folders['val']}/ folder (no test folder: early stopping uses a split "
                f"carved from {self.folders['train']}/)"
            )
        return "a stratified split carved from the class folders (seeded)"

    @property
    def val_source(self) -> str:
        """Which images early stopping and model selection look at, in words."""
        if "val" in self.folders and "test" in self.folders:
            return f"the {self.folders['val']}/ folder"
        where = f"{self.folders['train']}/" if self.folders else "the class folders"
        return f"a stratified split carved from {where} (seeded)"

    def describe_ignored(self, shown: int = 5) -> str:
        """``ignored N non-image file(s): a, b, ...`` naming the first ``shown`` ("" if none)."""
        if not self.ignored:
            return ""
        names = ", ".join(self.ignored[:shown])
        more = f" and {len(self.ignored) - shown} more" if len(self.ignored) > shown else ""
        return f"ignored {len(self.ignored)} non-image file(s): {names}{more}"


def is_image_file(path: Path) -> bool:
    """True for a visible file with an image extension."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def looks_like_image_folder(root: Path) -> bool:
    """True when ``root`` has sub-folders holding image files (cheap check, no decoding)."""
    for sub in _subfolders(root):
        for _, _, files in os.walk(sub):
            if any(is_image_file(Path(f)) for f in files):
                return True
    return False


def scan_folder(root: str | os.PathLike) -> FolderLayout:
    """The layout of ``root`` and its image files; raises DataError saying what is wrong."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder.")
    subs = _subfolders(root)
    split_dirs = {}
    for sub in subs:
        split = SPLIT_NAMES.get(sub.name.lower())
        if split is not None and _subfolders(sub):
            if split in split_dirs:
                raise DataError(
                    f"{root}: both {split_dirs[split].name}/ and {sub.name}/ name the {split} "
                    "split; keep one."
                )
            split_dirs[split] = sub
    ignored = sorted(p.name for p in root.iterdir() if p.is_file())
    if not split_dirs:
        class_names = _class_names(root)
        files, skipped = _list_images(root, class_names)
        _check_counts(root, class_names, files, minimum=3)
        return FolderLayout(root, class_names, {"train": files}, {}, ignored + skipped)
    if "train" not in split_dirs:
        found = ", ".join(f"{d.name}/" for d in split_dirs.values())
        raise DataError(f"{root}: found {found} but no train/ folder; {LAYOUT_HELP}.")
    extra = sorted(s.name for s in subs if s not in split_dirs.values())
    if extra:
        raise DataError(
            f"{root}: has split folders ({', '.join(d.name + '/' for d in split_dirs.values())}) "
            f"and also {', '.join(e + '/' for e in extra)}, which is neither; {LAYOUT_HELP}."
        )
    class_names = _class_names(split_dirs["train"])
    splits, folders = {}, {}
    for split in ("train", "val", "test"):
        if split not in split_dirs:
            continue
        folder = split_dirs[split]
        names = _class_names(folder)
        if names != class_names:
            missing = sorted(set(class_names) - set(names))
            unknown = sorted(set(names) - set(class_names))
            raise DataError(
                f"{folder}: its class folders differ from {split_dirs['train'].name}/'s "
                f"(missing: {missing or 'none'}; not in train: {unknown or 'none'})."
            )
        files, skipped = _list_images(folder, class_names)
        _check_counts(folder, class_names, files, minimum=2 if split == "train" else 1)
        splits[split] = files
        folders[split] = folder.name
        ignored += [f"{folder.name}/{s}" for s in skipped]
    prefixed = {s: [(f"{folders[s]}/{p}", y) for p, y in files] for s, files in splits.items()}
    return FolderLayout(root, class_names, prefixed, folders, ignored)


def _subfolders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_names(root: Path) -> list[str]:
    names = [p.name for p in _subfolders(root)]
    if len(names) < 2:
        raise DataError(
            f"{root}: expected one sub-folder per class (at least 2), found {len(names)}; "
            f"{LAYOUT_HELP}."
        )
    return names


def _list_images(root: Path, class_names: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """(relative path, label) of every image under ``root/<class>``, and the skipped files."""
    files, skipped = [], []
    for label, name in enumerate(class_names):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for file in sorted(filenames):
                path = Path(dirpath) / file
                rel = path.relative_to(root).as_posix()
                if is_image_file(path):
                    files.append((rel, label))
                else:
                    skipped.append(rel)
    return files, skipped


def _check_counts(
    root: Path, class_names: list[str], files: list[tuple[str, int]], minimum: int
) -> None:
    counts = [0] * len(class_names)
    for _, label in files:
        counts[label] += 1
    empty = [n for n, c in zip(class_names, counts, strict=True) if c == 0]
    if empty:
        raise DataError(
            f"{root}: class folder(s) with no images ({', '.join(IMAGE_EXTENSIONS)}): "
            f"{', '.join(e + '/' for e in empty)}; remove them or add images."
        )
    few = [f"{n}/ ({c})" for n, c in zip(class_names, counts, strict=True) if c < minimum]
    if few:
        raise DataError(
            f"{root}: every class needs at least {minimum} images here (to split off "
            f"validation and test images); too few in {', '.join(few)}."
        )
