"""Data set: its name, where it was loaded from, split sizes, class counts and subsets."""

from __future__ import annotations

from cifar.report.formatting import _fmt, _int
from cifar.report.sections.context import ReportContext


def dataset_name(source: str, dataset: str = "cifar10") -> str:
    """Human name of a data source as loaded (the shared offline copy is a JPEG reconstruction)."""
    source = str(source or "")
    if "cifar-10-batches-py" in source and "shared" in source:
        return "CIFAR-10 (JPEG-q75 reconstruction)"
    if source.startswith("keras.datasets"):
        return "CIFAR-10 (keras.datasets download)"
    if dataset == "folder":
        return "image folder"
    if dataset == "cifar10":
        return "CIFAR-10"
    return dataset or "unknown data set"


def render(ctx: ReportContext) -> str:
    """The data set section, with the sample grid when the run saved one."""
    run, rel = ctx.run, ctx.plots
    data = run.metrics.get("data", {})
    cfg = run.config.get("data", {})
    source = data.get("source", cfg.get("data_dir") or "unknown")
    name = dataset_name(source, data.get("dataset", cfg.get("dataset", "cifar10")))
    val_from = data.get("val_source") or (
        f"stratified {_fmt(cfg.get('val_fraction'), '.0%')} of the training set"
    )
    lines = [
        "## Data set",
        "",
        f"- **Data set:** {name}",
        f"- **Loaded from:** `{source}`",
        f"- **Images:** {_int(data.get('n_train'))} training, {_int(data.get('n_val'))} "
        f"validation ({val_from}, used for early stopping), {_int(data.get('n_test'))} test "
        "(untouched until the end)",
    ]
    if data.get("layout"):
        lines.append(
            f"- **Folder layout:** {data['layout']}; the test figure comes from "
            f"{data.get('test_source', '?')}"
        )
    names, counts = data.get("class_names") or [], data.get("train_counts") or []
    if names and len(counts) == len(names) and len(names) <= 20:
        per_class = ", ".join(f"{n} {c:,}" for n, c in zip(names, counts, strict=True))
        lines.append(f"- **Training images per class:** {per_class}")
    if data.get("class_weight"):
        lines.append(f"- **Class weights:** {data['class_weight']} (loss weighted per class)")
    if data.get("skipped_unreadable"):
        lines.append(
            f"- **Skipped:** {len(data['skipped_unreadable'])} unreadable image file(s), "
            "listed in metrics.json"
        )
    if cfg.get("train_subset") or cfg.get("test_subset"):
        lines.append(
            f"- **Subsets:** train_subset = {cfg.get('train_subset')}, "
            f"test_subset = {cfg.get('test_subset')} (stratified; a reduced run)"
        )
    if name.endswith("(JPEG-q75 reconstruction)"):
        lines.append(
            "- This copy is a JPEG-q75 re-encoding of CIFAR-10 (official labels and order), so "
            "accuracies sit below published CIFAR-10 figures."
        )
    if "samples" in rel:
        lines += ["", f"![Sample training images]({rel['samples']})"]
    return "\n".join(lines)
