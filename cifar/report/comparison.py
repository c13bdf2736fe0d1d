"""The text of ``COMPARISON.md``: one row per model trained on the same data and split."""

from __future__ import annotations

from datetime import datetime

from cifar.report.formatting import _duration, _fmt, _int, _size
from cifar.report.runs import _pretrained, _weights_label


def render_comparison(context: dict, rows: list[dict]) -> str:
    """Markdown report of a comparison: what was run, the table, and how to read it.

    ``context`` holds ``experiment``, ``command``, ``data`` (name, n_train, n_val, n_test),
    ``seed``; each row holds ``model``, ``weights``, ``input_size``, ``run_dir`` and either the
    measurements (``accuracy``, ``loss``, ``params``, ``fp16_bytes``, ``latency_ms``,
    ``training_seconds``) or ``error``.
    """
    data = context.get("data", {})
    lines = [
        f"# Backbone comparison: {context.get('experiment', '?')}",
        "",
        f"Generated {datetime.now().isoformat(timespec='seconds')} by",
        "",
        f"```\n{context.get('command', '')}\n```",
        "",
        f"Every model trained with the phases of `{context.get('experiment', '?')}` on the same "
        f"data and split: {data.get('name', '?')}, {_int(data.get('n_train'))} training / "
        f"{_int(data.get('n_val'))} validation / {_int(data.get('n_test'))} test images, "
        f"seed {context.get('seed', '?')}.",
        "",
        "| Model | Weights | Input | Test accuracy | Test loss | Parameters | "
        "float16 TFLite | LiteRT latency / image | Training time | Run |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    failures: list[str] = []
    for row in rows:
        weights = _weights_label(row.get("weights"))
        if not _pretrained(row.get("weights")):
            weights = "none (random initialisation)"
        size = row.get("input_size")
        head = f"| `{row['model']}` | {weights} | {size}x{size} |"
        if row.get("error"):
            failures.append(f"{len(failures) + 1}. `{row['model']}`: {_cell(row['error'])}")
            lines.append(f"{head} not measured ({len(failures)}) |{' |' * 5} - |")
            continue
        fp16 = _size(row["fp16_bytes"]) if row.get("fp16_bytes") else "-"
        if row.get("fp16_error"):
            failures.append(
                f"{len(failures) + 1}. `{row['model']}` export: {_cell(row['fp16_error'])}"
            )
            fp16 = f"failed ({len(failures)})"
        latency = row.get("latency_ms")
        lines.append(
            f"{head} {_fmt(row.get('accuracy'), '.4f')} | {_fmt(row.get('loss'), '.4f')} | "
            f"{_int(row.get('params'))} | {fp16} | "
            f"{_fmt(latency, '.2f')}{' ms' if latency is not None else ''} | "
            f"{_duration(row.get('training_seconds'))} | `{row.get('run_dir', '-')}` |"
        )
    if failures:
        lines += ["", "Not measured:", "", *failures]
    lines += ["", *_notes(rows)]
    return "\n".join(lines).rstrip() + "\n"


def _notes(rows: list[dict]) -> list[str]:
    notes = [
        "- Latency: median of 30 single-image calls of the float16 `.tflite` file in LiteRT on "
        "this machine's CPU, after warm-up (the export's own verification measures it).",
        "- Test accuracy and loss come from the Keras model on the run's test images; the float16 "
        "file's agreement with it is in each run's `export/metadata.json`.",
        "- Training time includes computing the cached activations, unless an earlier run on the "
        "same images and weights left them in `RUNS_DIR/.cache/` (then it is reused).",
    ]
    if any(not _pretrained(r.get("weights")) for r in rows):
        notes.append(
            "- **Rows with random initialisation are not a comparison of pretrained networks**: "
            "their accuracy only shows that the pipeline runs; parameters, file size and "
            "latency do not depend on the weights and are comparable."
        )
    return notes


def _cell(text: str) -> str:
    """One line of text that cannot break a table or a list."""
    return " ".join(str(text).split()).replace("|", "/")
