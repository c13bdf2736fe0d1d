"""Calibration: ECE, NLL and Brier score before and after temperature scaling, and T.

Read from ``metrics.json``'s ``calibration`` (see :mod:`cifar.calibration`); runs without it
(older runs) have no such section.
"""

from __future__ import annotations

from cifar.calibration.metrics import N_BINS
from cifar.report.formatting import _fmt, _int
from cifar.report.sections.context import ReportContext

ROWS = (
    (f"ECE ({N_BINS} bins)", "ece"),
    ("NLL", "nll"),
    ("Brier score", "brier"),
    ("Accuracy", "accuracy"),
    ("Mean top-1 confidence", "mean_confidence"),
)


def render(ctx: ReportContext) -> str:
    """The calibration section, or "" when the run recorded none."""
    cal = ctx.run.metrics.get("calibration")
    if not isinstance(cal, dict) or not isinstance(cal.get("test"), dict):
        return ""
    temperature = cal.get("temperature")
    fitted_on = cal.get("fitted_on", "validation")
    lines = [
        "## Calibration",
        "",
        f"Temperature scaling: T = {_fmt(temperature, '.4f')}, fitted on the {fitted_on} split "
        f"({_int(cal.get('n_fit'))} images), never on the test set. {_direction(temperature)} "
        "T is folded into the final Dense layer of `best_model.keras` (kernel and bias divided "
        "by T), so every export gives the calibrated probabilities.",
        "",
        *_table(cal),
        *_noise_floor(cal["test"]),
    ]
    if "reliability" in ctx.plots:
        lines += [
            "",
            f"![Reliability diagram of the test set, before and after scaling]"
            f"({ctx.plots['reliability']})",
        ]
    return "\n".join(lines)


def _noise_floor(test: dict) -> list[str]:
    floor = test.get("ece_noise_floor")
    if not isinstance(floor, int | float):
        return []
    n = (test.get("after") or {}).get("n")
    return [
        "",
        f"On {_int(n)} test images even a perfectly calibrated model with these confidences "
        f"would measure an ECE of about {floor:.4f} (the mean over 200 draws of its labels from "
        "its own probabilities): an ECE near that is as calibrated as this test set can tell.",
    ]


def _direction(temperature) -> str:
    if not isinstance(temperature, int | float):
        return ""
    if temperature > 1:
        return "T > 1 softens the probabilities: the model was over-confident."
    if temperature < 1:
        return "T < 1 sharpens the probabilities: the model was under-confident."
    return "T = 1 leaves the probabilities unchanged."


def _table(cal: dict) -> list[str]:
    test = cal["test"]
    val = cal.get("validation") if isinstance(cal.get("validation"), dict) else {}
    n_test = (test.get("before") or {}).get("n")
    n_val = (val.get("before") or {}).get("n")
    head = f"| Test set ({_int(n_test)} images) | Before | After |"
    columns = [test]
    if val:
        head += f" Validation ({_int(n_val)}), before | Validation, after |"
        columns.append(val)
    lines = [head, "|---|" + "---:|" * (2 * len(columns))]
    for label, key in ROWS:
        cells = [
            _fmt((split.get(when) or {}).get(key), ".4f")
            for split in columns
            for when in ("before", "after")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines
