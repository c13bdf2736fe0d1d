"""Layers point down: an AST scan of every import (lazy ones too) against the layer table.

Order, lowest first: base helpers, data, models, calibration, inference, explain,
evaluation/report, training, audit, export, serving/commands, benchmarks. A module may import its
own layer or a lower one. Calibration (NumPy/SciPy statistics and the fold into a Keras layer)
sits below inference so every predictor applies the one "not sure" rule. The
trainer ends every fit with the test evaluation and the report, so training sits above them;
evaluation and report never import the trainer. The run folder's file names, readers and
writers (``cifar.run_files``) are a base helper, so every layer reads and writes them one way.
evaluation and report never import the trainer. The data audit runs frozen backbones on the
training layer's fastest extraction engine and writes its report with the report layer's
helpers, so it sits above both; only commands use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cifar", "callbacks", "exports", "experiments", "benchmarks")

# Module prefixes per layer, lowest first; the longest matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("cifar", "cifar.errors", "cifar.array_cache", "cifar.imageio", "cifar.run_files")),
    ("data", ("cifar.data",)),
    ("models", ("cifar.models", "cifar.finetuning")),
    ("calibration", ("cifar.calibration",)),
    ("inference", ("cifar.inference",)),
    ("explain", ("cifar.explain",)),
    (
        "evaluation/report",
        ("cifar.evaluation", "cifar.plots", "cifar.report", "cifar.trust"),
    ),
    (
        "training",
        (
            "cifar.trainer",
            "cifar.eval_size",
            "cifar.run_state",
            "cifar.run_record",
            "cifar.execution",
            "cifar.phases",
            "cifar.config",
            "cifar.activations",
            "cifar.distributed",
            "callbacks",
            "experiments",
        ),
    ),
    ("audit", ("cifar.audit",)),
    ("export", ("exports",)),
    ("serving/commands", ("cifar.serving", "cifar.commands", "cifar.cli")),
    ("benchmarks", ("benchmarks",)),
]


def layer_of(module: str) -> int:
    """Index in LAYERS of a first-party module (by its longest matching prefix)."""
    matches = [
        (len(prefix), rank)
        for rank, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return max(matches)[1]


def module_name(path: Path) -> str:
    """``cifar/data/folder.py`` -> ``cifar.data.folder`` (packages by their ``__init__``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """True when ``name`` is a first-party module or package in this checkout."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """First-party modules ``path`` imports anywhere (``from a import b`` counts a.b if a
    module)."""
    found = set()
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this file's package
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if is_module(f"{base}.{a.name}"))
    return {m for m in found if m.split(".")[0] in PACKAGES}


def sources() -> list[Path]:
    """Every Python file of the first-party packages."""
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def upward_imports(files: list[Path]) -> list[str]:
    """``importer -> imported (layer -> layer)`` for each import that points up."""
    bad = []
    for path in files:
        importer = module_name(path)
        for imported in sorted(imported_modules(path)):
            if layer_of(imported) > layer_of(importer):
                low, high = LAYERS[layer_of(importer)][0], LAYERS[layer_of(imported)][0]
                bad.append(f"{importer} -> {imported} ({low} imports {high})")
    return bad


def test_every_import_points_down():
    assert sources(), "no sources found"
    assert upward_imports(sources()) == []


def test_no_library_module_imports_exports_serving_or_commands():
    """The acceptance rule in words: only commands and serving may reach exports."""
    top = ("exports", "cifar.serving", "cifar.commands", "benchmarks")
    library = [
        p
        for p in (ROOT / "cifar").rglob("*.py")
        if not module_name(p).startswith(("cifar.commands", "cifar.serving", "cifar.cli"))
    ]
    offenders = [
        f"{module_name(p)} -> {m}"
        for p in library
        for m in imported_modules(p)
        if m.startswith(top)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("where", "source", "offender"),
    [
        ("cifar/data/x.py", "from cifar.models import create_model\n", "cifar.models"),
        ("cifar/inference/x.py", "def f():\n    import exports.web\n", "exports.web"),
        ("cifar/evaluation_x.py", "from cifar import trainer\n", "cifar.trainer"),
        ("cifar/data/x.py", "from ..inference import runtimes\n", "cifar.inference.runtimes"),
    ],
)
def test_an_upward_import_is_caught(tmp_path, monkeypatch, where, source, offender):
    """The scan itself: lazy, ``from pkg import module`` and relative imports all count."""
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    for name in ("cifar/__init__.py", "cifar/trainer.py", "cifar/inference/runtimes.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "cifar/inference/__init__.py").write_text("")
    (tmp_path / "cifar/data").mkdir(exist_ok=True)
    (tmp_path / "cifar/data/__init__.py").write_text("")
    path = tmp_path / where
    path.write_text(source)
    assert any(f"-> {offender} " in line for line in upward_imports([path]))
