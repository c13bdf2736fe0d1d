"""Evaluation on the test set: headline metrics, per class, confusions, worst images, exports."""

from __future__ import annotations

from cifar.report.formatting import _fmt, _int
from cifar.report.sections.context import ReportContext
from cifar.report.sections.dataset import dataset_name


def headline_table(headline: dict, n_classes: int | None = None) -> str:
    """The test metrics as a two-column Markdown table (top-3 left out for 3 classes or fewer)."""
    rows = [
        ("Accuracy", "accuracy"),
        ("Loss (cross-entropy)", "loss"),
        ("Top-3 accuracy", "top3_accuracy"),
        ("Macro F1", "macro_f1"),
        ("Weighted F1", "weighted_f1"),
        ("Macro precision", "macro_precision"),
        ("Macro recall", "macro_recall"),
    ]
    lines = ["| Metric | Value |", "|---|---:|"]
    if n_classes is not None and n_classes <= 3:
        rows = [r for r in rows if r[1] != "top3_accuracy"]  # always 1 with 3 classes or fewer
    lines += [f"| {label} | {_fmt(headline.get(key), '.4f')} |" for label, key in rows]
    lines.append(f"| Test images | {_int(headline.get('n'))} |")
    return "\n".join(lines)


def render(ctx: ReportContext) -> str:
    """The evaluation section, or how to make one when the run has none."""
    run, rel = ctx.run, ctx.plots
    if not run.evaluation:
        return (
            "## Evaluation\n\nThis run has no evaluation yet; run `cifar evaluate "
            f"{run.run_dir}` to compute the test metrics."
        )
    ev = run.evaluation
    data = run.metrics.get("data", {})
    name = dataset_name(data.get("source", ""), data.get("dataset", "cifar10"))
    lines = [
        "## Evaluation on the test set",
        "",
        f"Test set of {name}, {_int(ev['headline'].get('n'))} images; "
        f"model kind `{ev['headline'].get('model_kind', 'keras')}`.",
        "",
        headline_table(ev["headline"], len(ev.get("class_names") or []) or None),
        "",
        "| Class | Precision | Recall | F1 | Support |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {cls} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
        for cls, m in ev["per_class"].items()
    ]
    for tag, caption in (
        ("test_confusion_matrix", "Confusion matrix (colours row-normalised, cells are counts)"),
        ("per_class_f1", "F1 per class"),
    ):
        if tag in rel:
            lines += ["", f"![{caption}]({rel[tag]})"]
    pairs = ev.get("confused_pairs", [])
    if pairs:
        lines += [
            "",
            "### Most confused class pairs",
            "",
            "| Pair | Confusions | a taken for b | b taken for a |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {p['a']} / {p['b']} | {p['count']} | {p['a_as_b']} | {p['b_as_a']} |"
            for p in pairs[:5]
        ]
    errors = ev.get("most_confident_errors", [])
    if errors:
        lines += ["", "### Most confidently wrong test images", ""]
        if "misclassified" in rel:
            lines += [f"![Most confidently wrong test images]({rel['misclassified']})", ""]
        lines += ["| Test index | True | Predicted | Confidence |", "|---:|---|---|---:|"]
        lines += [
            f"| {e['index']} | {e['true']} | {e['predicted']} | {e['confidence']:.3f} |"
            for e in errors[:10]
        ]
    if run.extra_evaluations:
        lines += [
            "",
            "### Other model files on the same test set",
            "",
            "| Evaluation | Kind | Accuracy | Loss | Top-3 | Macro F1 | Images/s |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for prefix, other in run.extra_evaluations.items():
            h = other["headline"]
            lines.append(
                f"| `{prefix}` | {h.get('model_kind', '?')} | {_fmt(h.get('accuracy'), '.4f')} |"
                f" {_fmt(h.get('loss'), '.4f')} | {_fmt(h.get('top3_accuracy'), '.4f')} | "
                f"{_fmt(h.get('macro_f1'), '.4f')} | {_fmt(h.get('images_per_second'), '.0f')} |"
            )
    return "\n".join(lines)
