"""Experiment files (TOML) overriding the ``TrainConfig`` defaults, and their lookup."""

from __future__ import annotations

from pathlib import Path

from cifar.errors import ConfigError

EXPERIMENTS_DIR = Path(__file__).resolve().parent


def list_experiments() -> list[str]:
    """Names of the experiment files shipped in this folder."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.toml"))


def experiment_path(source: str | Path) -> Path:
    """Resolve an experiment name (``smoke``) or a path to a TOML file."""
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"experiment file {path} does not exist")
        return path
    candidate = EXPERIMENTS_DIR / f"{source}.toml"
    if not candidate.is_file():
        raise ConfigError(
            f"unknown experiment {str(source)!r}; known: {', '.join(list_experiments())} "
            "(or give a path to a .toml file)"
        )
    return candidate
