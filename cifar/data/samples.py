"""Sample-image grid and class-distribution summary of a loaded data set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cifar.data.dataset import ImageData
from cifar.errors import writing


def plot_sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    path: str | os.PathLike,
    per_class: int = 5,
    seed: int = 0,
) -> Path:
    """Save a PNG grid with ``per_class`` images of every class, one class per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    n_cls = len(class_names)
    fig, axes = plt.subplots(
        per_class, n_cls, figsize=(1.2 * n_cls, 1.3 * per_class), squeeze=False
    )
    for col, name in enumerate(class_names):
        members = np.flatnonzero(labels == col)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for row in range(per_class):
            ax = axes[row][col]
            ax.axis("off")
            if row < len(chosen):
                ax.imshow(images[chosen[row]], interpolation="nearest")
            if row == 0:
                ax.set_title(name, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summarize(data: ImageData, val_fraction: float | None = None) -> str:
    """A plain-text table of images per class in train (fit and validation) and test.

    The validation column is the data set's own validation folder when it has one
    (``data.val_idx``), else a ``val_fraction`` share of every class.
    """
    train = data.class_counts("train")
    test = data.class_counts("test")
    lines = [
        f"source: {data.source}",
        f"images: {len(data.y_train)} train, {len(data.y_test)} test, "
        f"{data.image_shape[0]}x{data.image_shape[1]} RGB {data.x_train.dtype}",
    ]
    for key in ("layout", "test_source", "val_source"):
        if key in data.extra:
            lines.append(f"{key.replace('_', ' ')}: {data.extra[key]}")
    val_counts = None
    if data.val_idx is not None:
        labels = data.y_train[np.asarray(data.val_idx)]
        val_counts = np.bincount(labels, minlength=data.num_classes)
    elif val_fraction:
        val_counts = [int(round(train[name] * val_fraction)) for name in data.class_names]
    header = f"{'class':<14}{'train':>8}"
    if val_counts is not None:
        header += f"{'(fit)':>8}{'(val)':>8}"
    lines.append(header + f"{'test':>8}")
    for i, name in enumerate(data.class_names):
        row = f"{name:<14}{train[name]:>8}"
        if val_counts is not None:
            row += f"{train[name] - int(val_counts[i]):>8}{int(val_counts[i]):>8}"
        lines.append(row + f"{test[name]:>8}")
    pad = " " * (16 if val_counts is not None else 0)
    lines.append(f"{'total':<14}{sum(train.values()):>8}{pad}{sum(test.values()):>8}")
    counts = [c for c in train.values() if c]
    if counts and max(counts) >= 2 * min(counts):
        lines.append(
            f"imbalanced: the largest class has {max(counts) / min(counts):.1f}x the images of "
            'the smallest; consider data.class_weight = "balanced"'
        )
    return "\n".join(lines)
