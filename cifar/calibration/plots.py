"""Calibration charts: reliability diagrams (before/after scaling) and accuracy vs coverage.

Like :mod:`cifar.plots`, each ``*_figure`` returns a ``matplotlib.figure.Figure`` built without
``pyplot``; save it with :func:`cifar.plots.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from cifar.calibration.metrics import ReliabilityBins
from cifar.calibration.selective import CoverageCurve, SelectiveThreshold


def reliability_figure(panels: Mapping[str, ReliabilityBins]) -> Figure:
    """One reliability diagram per entry (e.g. ``{"before": ..., "after T = 0.72": ...}``).

    Bars are the accuracy of each confidence bin, the red outline the gap to the mean
    confidence; the diagonal is perfect calibration. Each title gives the ECE. Bins holding
    under 1% of the images are drawn faint: their gaps are mostly noise and weigh little.
    """
    if not panels:
        raise ValueError("no reliability bins to plot")
    fig = Figure(figsize=(4.6 * len(panels), 4.4))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    for ax, (title, bins) in zip(axes, panels.items(), strict=True):
        left, width = bins.edges[:-1], np.diff(bins.edges)
        share = bins.count / max(int(bins.count.sum()), 1)
        for shown, alpha, labelled in ((share >= 0.01, 1.0, True), (share < 0.01, 0.35, False)):
            shown = shown & (bins.count > 0)
            accuracy, confidence = bins.accuracy[shown], bins.confidence[shown]
            ax.bar(
                left[shown],
                accuracy,
                width[shown],
                align="edge",
                color="#4c72b0",
                edgecolor="white",
                alpha=alpha,
                label="accuracy" if labelled else None,
            )
            ax.bar(
                left[shown],
                confidence - accuracy,
                width[shown],
                bottom=accuracy,
                align="edge",
                fill=False,
                edgecolor="#c44e52",
                hatch="//",
                linewidth=0.8,
                alpha=alpha,
                label="gap to confidence" if labelled else None,
            )
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="perfect calibration")
        ax.step(
            bins.edges,
            np.append(share, share[-1]),
            where="post",
            color="#55a868",
            linewidth=1,
            label="share of images",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("top-1 confidence")
        ax.set_title(f"{title}: ECE {bins.ece:.3f}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def coverage_figure(
    curves: Mapping[str, CoverageCurve], threshold: SelectiveThreshold | None = None
) -> Figure:
    """Accuracy of the most confident predictions against coverage, one line per curve.

    ``threshold`` (measured on the same predictions as the curves) marks the chosen
    ``min_confidence``: the share still answered and their accuracy.
    """
    if not curves:
        raise ValueError("no coverage curve to plot")
    fig = Figure(figsize=(6, 4.4))
    ax = fig.subplots()
    for label, curve in curves.items():
        ax.plot(curve.coverage, curve.accuracy, linewidth=1.5, label=label)
    if threshold is not None and threshold.n_accepted:
        label = (
            f"min_confidence {threshold.min_confidence:.3f}: {threshold.coverage:.1%} "
            f"answered, {threshold.accepted_accuracy:.1%} right"
        )
        point = ([threshold.coverage], [threshold.accepted_accuracy])
        ax.plot(*point, "o", color="#c44e52", label=label)
    ax.set_xlim(0, 1)
    ax.set_xlabel("coverage (share of images answered, most confident first)")
    ax.set_ylabel("accuracy of the answered images")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig
