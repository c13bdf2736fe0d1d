"""Objective: what is classified, into which classes, and how the model was obtained."""

from __future__ import annotations

from cifar.report.runs import _pretrained
from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """Classes, model, pretrained or from scratch."""
    run = ctx.run
    model = run.metrics.get("model") or run.config.get("model", {})
    names = run.class_names
    how = (
        f"by transfer learning: `{model.get('name', '?')}` starts from ImageNet-pretrained "
        "weights and is adapted to this data set in phases"
        if _pretrained(model.get("weights"))
        else f"with `{model.get('name', '?')}` trained from scratch (no pretrained weights)"
    )
    folder = (run.metrics.get("data") or {}).get("dataset") == "folder"
    what = "photos from an image folder" if folder else "small colour images"
    return (
        "## Objective\n\n"
        f"Classify {what} into {len(names)} classes "
        f"({', '.join(names)}) {how}, and measure the result on a test set never used "
        "for training or model selection."
    )
