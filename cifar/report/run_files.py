"""Loading one run directory: its JSON files, predictions and extra evaluations."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cifar.errors import CifarError

EXPORT_DIR = "export"
_EXTRA_EVALUATION = re.compile(r"^(.+)_evaluation\.json$")


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
        """Read a run directory; raises CifarError when it is not one."""
        from cifar.evaluation import EVALUATION_FILE, PREDICTIONS_FILE

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise CifarError(f"run directory {run_dir} does not exist")
        if not (run_dir / "metrics.json").is_file() and not (run_dir / "config.json").is_file():
            raise CifarError(
                f"{run_dir} is not a run directory (no metrics.json or config.json); "
                "pass a folder made by `cifar train`, e.g. runs/<name>-<timestamp>"
            )
        run = cls(
            run_dir,
            config=_read_json(run_dir / "config.json", {}),
            metrics=_read_json(run_dir / "metrics.json", {}),
            history=_read_json(run_dir / "history.json", []),
            evaluation=_read_json(run_dir / EVALUATION_FILE, None),
            export_metadata=_read_json(run_dir / EXPORT_DIR / "metadata.json", {}, strict=False),
        )
        if (run_dir / PREDICTIONS_FILE).is_file():
            with np.load(run_dir / PREDICTIONS_FILE) as npz:
                run.predictions = {key: npz[key] for key in npz.files}
        for path in sorted(run_dir.glob(f"*_{EVALUATION_FILE}")):
            data = _read_json(path, None, strict=False)
            if isinstance(data, dict) and "headline" in data:
                run.extra_evaluations[_EXTRA_EVALUATION.match(path.name).group(1)] = data
        return run

    @property
    def class_names(self) -> list[str]:
        """Class names from the evaluation, metrics or ``labels.txt``."""
        if self.evaluation:
            return self.evaluation["class_names"]
        names = self.metrics.get("data", {}).get("class_names")
        labels = self.run_dir / "labels.txt"
        if not names and labels.is_file():
            names = [line.strip() for line in labels.read_text().splitlines() if line.strip()]
        return list(names or [])

    @property
    def name(self) -> str:
        """Run name (the experiment's ``name``) or the folder name."""
        return self.metrics.get("name") or self.config.get("name") or self.run_dir.name


def _read_json(path: Path, default: Any, strict: bool = True) -> Any:
    """Parsed JSON file, ``default`` when absent; a corrupt file is an error unless not strict."""
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if not strict:
            return default
        raise CifarError(f"{path} is not valid JSON ({exc}); was the run interrupted?") from exc
