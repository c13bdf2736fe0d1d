"""Architecture: the model, its backbone, parameters, and what each phase trains."""

from __future__ import annotations

from cifar.report.formatting import _int
from cifar.report.runs import _weights_label
from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """Model, input, weights, parameter counts and the per-phase trainable table."""
    run = ctx.run
    model = run.metrics.get("model") or run.config.get("model", {})
    phases = run.metrics.get("phases", [])
    lines = [
        "## Architecture",
        "",
        f"- **Model:** `{model.get('name', '?')}`, input {model.get('input_size', '?')}x"
        f"{model.get('input_size', '?')} RGB, weights: {_weights_label(model.get('weights'))}",
        *backbone_line(model.get("name")),
        f"- **Parameters:** {_int(model.get('total_params'))} in total; "
        f"{_int(model.get('layers'))} top-level layers"
        + (
            f", {_int(phases[0].get('total_layers'))} counting the layers inside the base"
            if phases and phases[0].get("total_layers") != model.get("layers")
            else ""
        ),
    ]
    if phases:
        lines += [
            "",
            "| Phase | Trainable policy | Trainable layers | Trainable params | Frozen params |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {p.get('name')} | `{p.get('policy')}` | {_int(p.get('trainable_layers'))} / "
            f"{_int(p.get('total_layers'))} | {_int(p.get('trainable_params'))} | "
            f"{_int(p.get('non_trainable_params'))} |"
            for p in phases
        ]
    return "\n".join(lines)


def backbone_line(name: str | None) -> list[str]:
    """Which Keras application the model is built on and how it scales its input."""
    from cifar.models.backbones import BACKBONES, SCALINGS  # imports Keras: only when asked

    entry = BACKBONES.get(str(name))
    if entry is None:
        return []
    return [
        f"- **Backbone:** `keras.applications.{entry.application}` without its top, then "
        "GlobalAveragePooling, Dense ReLU, Dropout, Dense softmax; raw 0-255 RGB input "
        f"{SCALINGS[entry.scaling]}"
    ]
