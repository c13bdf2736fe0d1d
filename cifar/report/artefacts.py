"""The exported model files of a run, with their sizes and check results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cifar.run_files import EXPORT_DIR, RunFiles


def export_artefacts(run: RunFiles) -> list[dict[str, Any]]:
    """Files in ``export/`` with their size on disk, joined with ``export/metadata.json``.

    Each row: ``file``, ``format``, ``bytes``, and when known the export check's ``accuracy``,
    ``agreement`` with Keras and single-image ``latency_ms`` (metadata, on the export's
    verification images) and the full ``test_accuracy`` from ``cifar evaluate --model``.
    """
    from cifar.evaluation import file_prefix

    export = run.run_dir / EXPORT_DIR
    if not export.is_dir():
        return []
    entries = run.export_metadata.get("artifacts") if isinstance(run.export_metadata, dict) else []
    described = {
        str(e.get("file")): e for e in entries or [] if isinstance(e, dict) and e.get("file")
    }
    rows = []
    for path in sorted(export.iterdir()):
        if path.name.startswith(".") or path.suffix in (".json", ".txt"):
            continue  # metadata.json, labels.txt, half-written temporaries
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        meta = described.get(path.name, {})
        evaluated = run.extra_evaluations.get(file_prefix(path).rstrip("_"))
        rows.append(
            {
                "file": path.name + ("/" if path.is_dir() else ""),
                "format": meta.get("format") or _kind_of(path),
                "bytes": sum(f.stat().st_size for f in files),
                "accuracy": _number(meta.get("accuracy")),
                "agreement": _number(meta.get("agreement")),
                "latency_ms": _number(meta.get("latency_ms")),
                "test_accuracy": evaluated["headline"].get("accuracy") if evaluated else None,
            }
        )
    return rows


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _kind_of(path: Path) -> str:
    if path.is_dir():
        return "savedmodel" if (path / "saved_model.pb").is_file() else "folder"
    return path.suffix.lstrip(".") or "file"
