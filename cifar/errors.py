"""Exceptions with messages meant for the user (the CLI prints them without a traceback)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class CifarError(Exception):
    """Base class for errors the user can fix; the message says what is wrong and how."""


class DataError(CifarError):
    """A data set could not be loaded or failed validation."""


class ConfigError(CifarError):
    """A configuration value is unknown, of the wrong type or out of range."""


class ModelError(CifarError):
    """A model could not be created or loaded."""


class RunFileError(CifarError):
    """A file of a run folder is missing, unreadable or not what it should hold."""


class DiskError(CifarError):
    """A file or folder could not be written: disk full, no permission, read-only, not a folder.

    Build it with :meth:`at`, which names the path and states the space needed and free.
    """

    @classmethod
    def at(
        cls, path: str | os.PathLike, reason: str, need: int | None = None, action: str = "write"
    ) -> DiskError:
        """``cannot write PATH: REASON (needs X, Y free on its disk)``."""
        space = [f"needs {_bytes(need)}"] if need is not None else []
        free = _free_bytes(Path(path))
        if free is not None:
            space.append(f"{_bytes(free)} free on its disk")
        detail = f" ({', '.join(space)})" if space else ""
        return cls(f"cannot {action} {path}: {reason}{detail}")


@contextlib.contextmanager
def writing(path: str | os.PathLike, need: int | None = None) -> Iterator[None]:
    """Around a write of ``path``: an OSError (disk full, read-only, no permission, a file
    where a folder should be) becomes a :class:`DiskError` naming the path."""
    try:
        yield
    except OSError as exc:
        raise DiskError.at(path, exc.strerror or str(exc), need) from exc


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the disk of ``path`` or of its nearest existing folder (None: unknown)."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _bytes(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
