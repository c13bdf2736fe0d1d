"""Top losses: the test images the model got worst, each with a heatmap of its true class.

The loss of one image is ``-log p(true class)`` (the test loss before averaging), so the top
losses are the images whose true class the model found least likely: confident mistakes
first. The heatmap explains the TRUE class, answering "what in this picture did the model see
as (or miss for) the class it should have said": the predicted class's heatmap is what
``cifar explain`` draws, and a wrong prediction's top-3 already names it.

Only the N chosen images are ever converted to float (the Explainer takes them one batch at
a time), never the whole test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cifar.calibration.metrics import KERAS_EPSILON, image_losses
from cifar.run_files import top_loss_heatmap

TOP_LOSSES = 12


def top_loss_indices(labels: np.ndarray, probs: np.ndarray, n: int = TOP_LOSSES) -> np.ndarray:
    """Indices of the ``n`` highest-loss images, highest first (lower index first on ties)."""
    # Floored as the evaluation's test loss is, so the two agree on every image.
    losses = image_losses(probs, labels, KERAS_EPSILON)
    return np.argsort(-losses, kind="stable")[: max(int(n), 0)]


def top_losses(
    run_dir: str | Path,
    model,
    x_test: np.ndarray,
    y_test: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    files: Sequence[str] | None = None,
    source_size: int | None = None,
    n: int = TOP_LOSSES,
) -> list[dict]:
    """Write the heatmaps of the ``n`` highest-loss test images and describe them.

    Args:
        run_dir: the run folder; overlays go to ``plots/top_losses/<index>.png``.
        model: the Keras model that gave ``probs`` (the heatmaps are its gradients).
        x_test: uint8 test images at their stored size (only the chosen rows are read).
        y_test: integer labels.
        probs: the model's test probabilities.
        class_names: names in label order.
        files: each test image's file relative to the data folder (None: named by index).
        source_size: the stored image size (default: ``x_test``'s).

    Returns:
        ``metrics["top_losses"]``: one dict per image, highest loss first.
    """
    from cifar.explain.explainer import Explainer

    run_dir = Path(run_dir)
    y_test = np.asarray(y_test, dtype=np.int64).reshape(-1)
    chosen = top_loss_indices(y_test, probs, n)
    if not len(chosen):
        return []
    losses = image_losses(np.asarray(probs)[chosen], y_test[chosen], KERAS_EPSILON)
    explainer = Explainer(model, list(class_names), source_size or int(x_test.shape[1]))
    explained = explainer.explain_pixels(np.asarray(x_test[chosen]), classes=y_test[chosen])
    rows = []
    for i, loss, explanation in zip(chosen, losses, explained, strict=True):
        heatmap = top_loss_heatmap(int(i))
        explanation.save_overlay(run_dir / heatmap)
        p = np.asarray(probs[i], dtype=np.float64)
        rows.append(
            {
                "file": files[i] if files is not None else str(int(i)),
                "index": int(i),
                "true": class_names[int(y_test[i])],
                "predicted": class_names[int(p.argmax())],
                "true_probability": round(float(p[y_test[i]]), 6),
                "loss": round(float(loss), 6),
                "heatmap": heatmap,
            }
        )
    return rows
