"""Run charts as matplotlib figures, saved as PNG and logged to TensorBoard as images.

Every chart has a ``*_figure`` function returning a :class:`matplotlib.figure.Figure` built
without ``pyplot`` (no global figure registry to leak from long runs or callbacks), and
:func:`save_figure` / :func:`figure_to_png` turn it into a file or PNG bytes. The sample-image
grid lives with the data pipeline (:func:`cifar.data.samples.plot_sample_grid`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cifar.errors import writing

DPI = 100


def figure_to_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write the figure to ``path`` as PNG (parent folders created) and return the path."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(figure_to_png(fig))
    return path


def training_curves_figure(history: Sequence[Mapping]) -> Figure:
    """Loss and accuracy (train and validation) per global epoch, phase boundaries marked.

    Args:
        history: per-epoch dicts as in ``history.json`` (``epoch``, ``phase``, ``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``); missing metrics are skipped.
    """
    if not history:
        raise ValueError("the history is empty: no epoch to plot")
    epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(history)])
    phases = [str(row.get("phase", "")) for row in history]
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                y = np.array([np.nan if v is None else v for v in values], dtype=float)
                ax.plot(epochs, y, style, markersize=3, label=label)
        _mark_phases(ax, epochs, phases)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric, pad=16)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _mark_phases(ax, epochs: np.ndarray, phases: list[str]) -> None:
    """Dashed line between phases and the phase name over each span."""
    starts = [i for i in range(len(phases)) if i == 0 or phases[i] != phases[i - 1]]
    for n, start in enumerate(starts):
        end = starts[n + 1] - 1 if n + 1 < len(starts) else len(phases) - 1
        if n > 0:
            ax.axvline(epochs[start] - 0.5, color="grey", linestyle="--", linewidth=1)
        if phases[start]:
            middle = (epochs[start] + epochs[end]) / 2
            ax.text(
                middle,
                1.01,
                phases[start],
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                color="dimgrey",
            )


def confusion_matrix_figure(
    matrix: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    title: str = "Confusion matrix",
    normalize: bool = True,
) -> Figure:
    """Seaborn heat map of a confusion matrix (rows = true class), annotated with counts.

    With ``normalize`` the colours are row-normalised (recall on the diagonal), so classes
    of different sizes compare fairly; the numbers in the cells stay counts.
    """
    import seaborn as sns

    from cifar.evaluation import row_normalize

    counts = np.asarray(matrix, dtype=np.int64)
    colours = row_normalize(counts) if normalize else counts
    size = max(5.0, 0.6 * len(class_names) + 2.5)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    sns.heatmap(
        colours,
        annot=counts,
        fmt="d",
        cmap="Blues",
        vmin=0,
        vmax=1 if normalize else None,
        xticklabels=class_names,
        yticklabels=class_names,
        square=True,
        cbar_kws={"label": "fraction of true class" if normalize else "images"},
        annot_kws={"fontsize": 7},
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    return fig


def per_class_f1_figure(per_class: Mapping[str, Mapping[str, float]]) -> Figure:
    """Horizontal bar chart of F1 per class (as in ``evaluation.json``), macro F1 marked."""
    names = list(per_class)
    f1 = np.array([per_class[n]["f1"] for n in names], dtype=float)
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.5))
    ax = fig.subplots()
    bars = ax.barh(names, f1, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in f1], padding=3, fontsize=8)
    ax.axvline(f1.mean(), color="tab:red", linestyle="--", label=f"macro F1 {f1.mean():.3f}")
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("F1")
    ax.set_title("F1 per class (test set)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def misclassified_figure(images: np.ndarray, errors: Sequence[Mapping], columns: int = 5) -> Figure:
    """Grid of wrongly classified images titled with true and predicted label and confidence.

    Args:
        images: uint8 images (N x H x W x 3), in the same order as ``errors``.
        errors: dicts with ``true``, ``predicted`` and ``confidence`` (``evaluation.json``'s
            ``most_confident_errors``).
        columns: images per row.
    """
    n = min(len(images), len(errors))
    if n == 0:
        raise ValueError("no misclassified images to show")
    rows = -(-n // columns)
    fig = Figure(figsize=(2.0 * columns, 2.3 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).reshape(-1)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            err = errors[i]
            ax.imshow(images[i], interpolation="nearest")
            ax.set_title(
                f"true: {err['true']}\npred: {err['predicted']} ({err['confidence']:.0%})",
                fontsize=8,
                color="darkred",
            )
    fig.suptitle("Most confidently wrong test images")
    fig.tight_layout()
    return fig


def png_to_image_tensor(png: bytes):
    """A 1 x H x W x 3 uint8 tensor of PNG bytes, the shape ``tf.summary.image`` expects."""
    import tensorflow as tf

    return tf.expand_dims(tf.io.decode_png(png, channels=3), 0)


def log_images(writer, images: Mapping[str, bytes], step: int) -> None:
    """Write PNG images to a ``tf.summary`` writer, one image summary per tag."""
    import tensorflow as tf

    with writer.as_default():
        for tag, png in images.items():
            tf.summary.image(tag, png_to_image_tensor(png), step=step)
    writer.flush()
