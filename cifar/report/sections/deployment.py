"""Deployment artefacts: the Keras model and every exported file with its checks."""

from __future__ import annotations

from cifar.inference.input_size import input_size
from cifar.report.artefacts import _number, export_artefacts
from cifar.report.formatting import _fmt, _int, _size
from cifar.report.sections.context import ReportContext
from cifar.run_files import BEST_MODEL


def render(ctx: ReportContext) -> str:
    """Sizes, export-check accuracy, agreement, latency and test accuracy of each file."""
    run = ctx.run
    rows = export_artefacts(run)
    lines = ["## Deployment artefacts", ""]
    keras_file = run.run_dir / BEST_MODEL
    if keras_file.is_file():
        lines += [
            f"Trained Keras model `{BEST_MODEL}`: {_size(keras_file.stat().st_size)}.",
            "",
        ]
    if not rows:
        size = input_size(run.metrics)
        takes = f"raw {size}x{size} RGB images" if size else "raw RGB images at the stored size"
        lines.append(
            f"No export yet: run `cifar export {run.run_dir}` to produce SavedModel, TFLite and "
            f"ONNX files (they take {takes})."
        )
        return "\n".join(lines)
    check = (
        run.export_metadata.get("verification") if isinstance(run.export_metadata, dict) else None
    )
    check = check if isinstance(check, dict) else {}
    n_check = check.get("n_images")
    keras_row = check.get("keras") if isinstance(check.get("keras"), dict) else {}
    if n_check:
        lines += [
            f"The export check ran every file in its own runtime on {_int(n_check)} test images "
            f"(Keras model on the same images: accuracy "
            f"{_fmt(_number(keras_row.get('accuracy')), '.4f')}); the last column is the run's "
            "whole test set, from `cifar evaluate RUN_DIR --model FILE`.",
            "",
        ]
    lines += [
        "| File | Format | Size | Check accuracy | Agreement with Keras | Latency (1 image) | "
        "Test accuracy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `export/{r['file']}` | {r['format']} | {_size(r['bytes'])} | "
        f"{_fmt(r['accuracy'], '.4f')} | {_fmt(r['agreement'], '.2%')} | "
        f"{_fmt(r['latency_ms'], '.2f')}{' ms' if r['latency_ms'] is not None else ''} | "
        f"{_fmt(r['test_accuracy'], '.4f')} |"
        for r in rows
    ]
    failed = run.export_metadata.get("failed") if isinstance(run.export_metadata, dict) else None
    if isinstance(failed, dict) and failed:
        lines += ["", "Failed exports: " + "; ".join(f"{k}: {v}" for k, v in failed.items())]
    return "\n".join(lines)
