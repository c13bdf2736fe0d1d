"""Sample-image grid and class-distribution summary of a loaded data set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cifar.data.dataset import ImageData


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summarize(data: ImageData, val_fraction: float | None = None) -> str:
    """A plain-text table of images per class in train (and validation) and test."""
    train = data.class_counts("train")
    test = data.class_counts("test")
    lines = [
        f"source: {data.source}",
        f"images: {len(data.y_train)} train, {len(data.y_test)} test, "
        f"{data.image_shape[0]}x{data.image_shape[1]} RGB {data.x_train.dtype}",
    ]
    header = f"{'class':<14}{'train':>8}"
    if val_fraction:
        header += f"{'(fit)':>8}{'(val)':>8}"
    lines.append(header + f"{'test':>8}")
    for name in data.class_names:
        row = f"{name:<14}{train[name]:>8}"
        if val_fraction:
            n_val = int(round(train[name] * val_fraction))
            row += f"{train[name] - n_val:>8}{n_val:>8}"
        lines.append(row + f"{test[name]:>8}")
    lines.append(f"{'total':<14}{sum(train.values()):>8}" + " " * (16 if val_fraction else 0))
    lines[-1] += f"{sum(test.values()):>8}"
    return "\n".join(lines)
