"""The one owner of a run folder's files: their names, and how each is read and written.

A run folder (``runs/<name>-<timestamp>/``) holds ``config.json``, ``labels.txt``,
``test_files.json``, ``samples.png``, ``history.json``, ``metrics.json``, ``best_model.keras``,
``evaluation.json`` and ``predictions.npz`` (also ``<prefix>_evaluation.json`` of exported
files), ``checkpoint/`` and ``export/`` (the exported models with their own ``labels.txt`` and
``metadata.json``). Every module that names, reads or writes one of them asks this module, which
sits in the lowest layer so that inference, evaluation, the report, exports and serving can.

Writes are atomic (a reader never sees half a file). A missing or corrupt file the caller needs
raises :class:`~cifar.errors.RunFileError` naming the file; callers that can do without a file
pass a ``default`` or catch that error.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from cifar.errors import RunFileError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
LABELS_FILE = "labels.txt"
TEST_FILES = "test_files.json"
SAMPLES_FILE = "samples.png"
BEST_MODEL = "best_model.keras"
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.npz"
CHECKPOINT_DIR = "checkpoint"
EXPORT_DIR = "export"
METADATA_FILE = "metadata.json"  # export/'s description of the exported files

_MISSING: Any = object()
_EXTRA_EVALUATION = re.compile(rf"^(.+)_{re.escape(EVALUATION_FILE)}$")


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """``runs_dir/<name>-<timestamp>``, suffixed when two runs start in the same second."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(runs_dir) / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(runs_dir) / f"{name}-{stamp}-{suffix}"
    return path


def run_dir_of(model_path: str | os.PathLike) -> Path | None:
    """The run a model file belongs to (``RUN/best_model.keras`` or ``RUN/export/...``), or
    None for a file outside a run."""
    parent = Path(model_path).parent
    if parent.name == EXPORT_DIR:
        parent = parent.parent
    return parent if (parent / CONFIG_FILE).is_file() else None


# ---------------------------------------------------------------------- writing


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a hidden temporary name, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON atomically (values JSON cannot hold are written as strings)."""
    return write_text(path, json.dumps(data, indent=1, default=str) + "\n")


def write_labels(folder: Path, class_names: list[str]) -> Path:
    """``folder/labels.txt``: one class name per line, in the model's output order."""
    return write_text(Path(folder) / LABELS_FILE, "\n".join(class_names) + "\n")


def write_test_files(run_dir: Path, root: str, files: list[tuple[str, str]]) -> Path:
    """``test_files.json``: the run's test images as (path relative to ``root``, class name)."""
    return write_json(Path(run_dir) / TEST_FILES, {"root": root, "files": [list(f) for f in files]})


# ---------------------------------------------------------------------- reading


def read_json(path: Path, default: Any = _MISSING, kind: type = dict) -> Any:
    """The parsed JSON file ``path``; ``default`` when it does not exist (if given).

    Raises:
        RunFileError: the file is missing (and no ``default``), unreadable, not valid JSON, or
            does not hold a ``kind`` (a JSON object by default).
    """
    path = Path(path)
    if not path.is_file():
        if default is not _MISSING:
            return default
        raise RunFileError(f"{path} does not exist; is {path.parent} a finished run folder?")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"cannot read {path} ({exc}); was the run interrupted?") from exc
    if not isinstance(data, kind):
        what = "a JSON object" if kind is dict else f"a JSON {kind.__name__}"
        raise RunFileError(f"{path} does not hold {what}; was it edited by hand?")
    return data


def read_optional_json(path: Path) -> dict | None:
    """A JSON object the caller can do without: None when it is absent or unreadable."""
    try:
        return read_json(path, None)
    except RunFileError:
        return None


def read_labels(path: Path) -> list[str] | None:
    """Class names of a ``labels.txt`` (one per line, blank lines ignored); None if absent."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"cannot read {path} ({exc})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_test_files(run_dir: Path) -> tuple[Path, list[tuple[str, str]]] | None:
    """(folder, [(relative path, class name)]) of the run's test images; None for a run that
    did not record them (CIFAR-10, or trained before runs recorded them)."""
    data = read_json(Path(run_dir) / TEST_FILES, None)
    if data is None:
        return None
    try:
        return Path(data["root"]), [(str(rel), str(name)) for rel, name in data["files"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFileError(f"{Path(run_dir) / TEST_FILES} is malformed ({exc!r})") from exc


@dataclass
class RunFiles:
    """The parsed files of one run directory (missing files are empty)."""

    run_dir: Path
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    evaluation: dict | None = None
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    export_metadata: dict = field(default_factory=dict)
    extra_evaluations: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunFiles:
        """Read a run directory.

        Raises:
            RunFileError: it is not a run directory, or one of its own files is corrupt (the
                export's metadata and extra evaluations are optional and skipped if so).
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunFileError(f"run directory {run_dir} does not exist")
        if not (run_dir / METRICS_FILE).is_file() and not (run_dir / CONFIG_FILE).is_file():
            raise RunFileError(
                f"{run_dir} is not a run directory (no {METRICS_FILE} or {CONFIG_FILE}); "
                "pass a folder made by `cifar train`, e.g. runs/<name>-<timestamp>"
            )
        run = cls(
            run_dir,
            config=read_json(run_dir / CONFIG_FILE, {}),
            metrics=read_json(run_dir / METRICS_FILE, {}),
            history=read_json(run_dir / HISTORY_FILE, [], kind=list),
            evaluation=read_json(run_dir / EVALUATION_FILE, None),
            export_metadata=read_optional_json(run_dir / EXPORT_DIR / METADATA_FILE) or {},
        )
        if (run_dir / PREDICTIONS_FILE).is_file():
            with np.load(run_dir / PREDICTIONS_FILE) as npz:
                run.predictions = {key: npz[key] for key in npz.files}
        for path in sorted(run_dir.glob(f"*_{EVALUATION_FILE}")):
            data = read_optional_json(path)
            if data and "headline" in data:
                run.extra_evaluations[_EXTRA_EVALUATION.match(path.name).group(1)] = data
        return run

    @property
    def class_names(self) -> list[str]:
        """Class names from the evaluation, metrics or ``labels.txt``."""
        if self.evaluation:
            return self.evaluation["class_names"]
        names = self.metrics.get("data", {}).get("class_names")
        if not names:
            names = read_labels(self.run_dir / LABELS_FILE)
        return list(names or [])

    @property
    def name(self) -> str:
        """Run name (the experiment's ``name``) or the folder name."""
        return self.metrics.get("name") or self.config.get("name") or self.run_dir.name
