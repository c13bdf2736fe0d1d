"""Confidence and "not sure": the ``min_confidence`` threshold, accuracy against coverage,
and how well confidence tells the test set from images of other things (OOD AUROC).

Read from ``metrics.json``'s ``selective`` (see :mod:`cifar.calibration.selective`); runs
without it (older runs) have no such section.
"""

from __future__ import annotations

from cifar.report.formatting import _fmt, _int
from cifar.report.sections.context import ReportContext


def render(ctx: ReportContext) -> str:
    """The "not sure" section, or "" when the run recorded no threshold."""
    sel = ctx.run.metrics.get("selective")
    if not isinstance(sel, dict) or sel.get("min_confidence") is None:
        return ""
    test = sel.get("test") if isinstance(sel.get("test"), dict) else {}
    lines = [
        '## Confidence and "not sure"',
        "",
        f"Below **min_confidence = {_fmt(sel['min_confidence'], '.4f')}** (top-1 probability, "
        'after calibration) a prediction is answered "not sure"; its top 3 are still shown. '
        + _how_chosen(sel),
        "",
        "| Split | Answered (coverage) | Accuracy of the answered | Answered / images |",
        "|---|---:|---:|---:|",
        _row("Validation (chosen here)", sel),
    ]
    if test:
        lines.append(_row("Test", test))
    if "coverage" in ctx.plots:
        lines += [
            "",
            f"![Accuracy against coverage on the test set]({ctx.plots['coverage']})",
        ]
    lines += ["", _ood_line(sel.get("ood"), test.get("n"))]
    return "\n".join(lines)


def _how_chosen(sel: dict) -> str:
    by = sel.get("chosen_by")
    target = sel.get("target_accuracy")
    if by == "validation":
        text = (
            "It was chosen on the validation split as the lowest confidence at which the "
            f"answered predictions reach {_fmt(target, '.2%')} accuracy"
        )
        if sel.get("target_met") is False:
            text += (
                " (not reachable: the threshold with the best accuracy of the answered was kept)"
            )
        return text + "."
    if by == "hand":
        return "It was set by hand."
    return f"Chosen by: {by}." if by else ""


def _row(label: str, numbers: dict) -> str:
    return (
        f"| {label} | {_fmt(numbers.get('coverage'), '.1%')} | "
        f"{_fmt(numbers.get('accepted_accuracy'), '.2%')} | "
        f"{_int(numbers.get('n_accepted'))} / {_int(numbers.get('n'))} |"
    )


def _ood_line(ood, n_test) -> str:
    if not isinstance(ood, dict) or ood.get("auroc") is None:
        return (
            "**Images of other things:** not measured for this run (no out-of-distribution "
            "images were given)."
        )
    return (
        f"**Images of other things:** the top-1 confidence separates the {_int(n_test)} test "
        f"images from {_int(ood.get('n'))} images of {ood.get('source', '?')} with an AUROC of "
        f"{_fmt(ood.get('auroc'), '.3f')} (1.0: every test image is more confident than every "
        "other image; 0.5: confidence cannot tell them apart)."
    )
