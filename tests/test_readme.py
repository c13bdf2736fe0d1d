"""Every Python example of the README (and of docs/python-api.md) runs; every `cifar X` exists.

The examples train the smoke experiment; here ``load_config`` gets a smaller subset and one
epoch per phase first (the examples' own overrides still apply on top), so each trains for
real in about ten seconds, in a temporary folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import CIFAR_DIR, WEIGHTS, requires_cifar, requires_weights

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [ROOT / "README.md", ROOT / "docs" / "python-api.md"]
# Smaller than smoke (600 train / 300 test images, 2 + 1 epochs): the same code paths.
TINY = [
    "data.train_subset=200",
    "data.test_subset=100",
    "phases.0.epochs=1",
    "phases.1.epochs=1",
]


def python_blocks(path: Path) -> list[str]:
    """The ```python fenced blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def cifar_subcommands(text: str) -> set[str]:
    """Every ``X`` of ``cifar X`` written in a Markdown text (code or prose)."""
    return set(re.findall(r"(?:^|[\s`/])cifar ([a-z][a-z_-]*)", text, flags=re.M))


def test_the_examples_are_found():
    assert len(python_blocks(ROOT / "README.md")) >= 1
    assert len(python_blocks(ROOT / "docs" / "python-api.md")) >= 2


def test_every_cifar_subcommand_shown_exists():
    from cifar.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    shown = {p.name: cifar_subcommands(p.read_text()) for p in DOCS}
    assert shown["README.md"], "the README shows no cifar command"
    missing = {name: sorted(cmds - set(sub.choices)) for name, cmds in shown.items()}
    assert {name: cmds for name, cmds in missing.items() if cmds} == {}


@requires_cifar
@requires_weights
@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_python_examples_run(path, tmp_path, monkeypatch):
    import cifar.config
    from cifar.models import create_model, registry

    monkeypatch.setenv("CIFAR10_DIR", str(CIFAR_DIR))
    monkeypatch.setenv("MOBILENETV2_WEIGHTS", str(WEIGHTS))
    monkeypatch.chdir(tmp_path)  # runs/ lands here
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # examples may add
    real = cifar.config.load_config
    monkeypatch.setattr(
        cifar.config,
        "load_config",
        lambda source, overrides=None: real(source, [*TINY, *(overrides or [])]),
    )
    namespace: dict = {"__name__": "__example__"}
    for block in python_blocks(path):
        exec(compile(block, f"{path.name} example", "exec"), namespace)
    # Each example file trains once and ends with its result in `metrics`, from the run folder
    # it left behind.
    assert "metrics" in namespace, f"the {path.name} example no longer sets `metrics`"
    accuracy = namespace["metrics"]["test"]["accuracy"]
    assert 0 <= accuracy <= 1
    (run_dir,) = [p.parent for p in tmp_path.glob("runs/*/metrics.json")]
    assert (run_dir / "best_model.keras").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"] == accuracy
    if path.name == "python-api.md":  # the registered model builds by name
        assert "tiny" in namespace and create_model("tiny").output_shape == (None, 10)
