"""The exclude file: photos a user leaves out of a folder without moving or deleting them.

A plain text file, one path a line, relative to the image folder (or absolute, inside it);
lines starting with ``#`` are comments and blank lines are skipped (a ``#`` later in a line is
part of the file name: photo names may hold one). ``cifar audit --write-exclude FILE`` writes
one; ``data.exclude = FILE`` makes the loader leave those photos out before decoding anything.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from cifar.errors import DataError

__all__ = ["read_exclude", "write_exclude"]


def read_exclude(path: str | os.PathLike, root: Path) -> set[str]:
    """The relative posix paths (under ``root``) that the exclude file at ``path`` lists.

    Raises DataError naming the file and line for a path outside ``root``, and when the file
    cannot be read. Paths that name no file are returned as they are (the loader warns).
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"exclude file {path}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"exclude file {path}: not a UTF-8 text file ({exc.reason})") from exc
    root_abs = Path(os.path.abspath(Path(root).expanduser()))
    found: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        found.add(_relative(entry, root_abs, f"exclude file {path}, line {number}"))
    return found


def _relative(entry: str, root: Path, where: str) -> str:
    """``entry`` as a normalised posix path relative to ``root``; DataError if it leaves it."""
    candidate = Path(entry.replace("\\", "/")).expanduser()
    absolute = Path(os.path.normpath(candidate if candidate.is_absolute() else root / candidate))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        raise DataError(
            f"{where}: {entry!r} is outside the image folder {root}; list paths relative to it"
        ) from None
    if not rel.parts:
        raise DataError(f"{where}: {entry!r} names the image folder itself, not a photo")
    return PurePosixPath(*rel.parts).as_posix()


def write_exclude(path: str | os.PathLike, rel_paths: list[str], header: str) -> None:
    """Write ``rel_paths`` (relative to the image folder) one a line under ``#`` comment lines.

    ``header`` (may span lines) says what the list is, e.g. which command wrote it and why.
    Paths are written as given, sorted and without repeats; one that could not be read back
    (starting with ``#``, starting or ending with a space, holding a newline) is refused with a
    DataError.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for rel in sorted(set(rel_paths)):
        if rel.startswith("#") or rel != rel.strip() or "\n" in rel or not rel:
            raise DataError(
                f"cannot list {rel!r} in an exclude file (it starts with # or a space, ends "
                "with a space or holds a newline); rename that photo"
            )
        lines.append(rel)
    Path(path).expanduser().write_text("\n".join(lines) + "\n", encoding="utf-8")
