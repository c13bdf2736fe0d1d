"""Every chart renders to a valid, non-trivial PNG; phase boundaries are where history says."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cifar import plots
from cifar.evaluation import compute_metrics

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def two_phase_history() -> list[dict]:
    """Five epochs: three frozen, two fine-tuning (the layout of history.json)."""
    rows = []
    for epoch, (phase, i) in enumerate(
        [("frozen", 0), ("frozen", 0), ("frozen", 0), ("finetune", 1), ("finetune", 1)], 1
    ):
        rows.append(
            {
                "epoch": epoch,
                "phase": phase,
                "phase_index": i,
                "loss": 1.8 - 0.2 * epoch,
                "accuracy": 0.35 + 0.06 * epoch,
                "val_loss": 1.7 - 0.15 * epoch,
                "val_accuracy": 0.4 + 0.05 * epoch,
                "learning_rate": 1e-3 if i == 0 else 1e-5,
            }
        )
    return rows


def random_predictions(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10)) + 3 * np.eye(10)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def assert_real_png(path, min_width=300, min_height=200):
    """A decodable PNG of plausible size with real content (not one flat colour)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000
    image = Image.open(io.BytesIO(data))
    image.verify()
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert pixels.shape[1] >= min_width and pixels.shape[0] >= min_height
    assert pixels.std() > 10
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_training_curves_mark_the_phase_boundary(tmp_path):
    fig = plots.training_curves_figure(two_phase_history())
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert "train" in labels and "validation" in labels
        boundaries = [
            line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"
        ]
        assert boundaries == [3.5]  # between epoch 3 (frozen) and epoch 4 (finetune)
        assert {t.get_text() for t in ax.texts} == {"frozen", "finetune"}
    assert_real_png(plots.save_figure(fig, tmp_path / "curves.png"))


def test_training_curves_need_a_history():
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves_figure([])


def test_confusion_matrix_heat_map(tmp_path):
    y, probs = random_predictions()
    cm = compute_metrics(y, probs, NAMES)["confusion_matrix"]
    fig = plots.confusion_matrix_figure(cm, NAMES, title="test")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    cells = [int(t.get_text()) for t in ax.texts]
    assert cells == np.asarray(cm).reshape(-1).tolist()  # annotated with the counts
    assert_real_png(plots.save_figure(fig, tmp_path / "cm.png"), 500, 500)


def test_per_class_f1_chart(tmp_path):
    y, probs = random_predictions()
    per_class = compute_metrics(y, probs, NAMES)["per_class"]
    fig = plots.per_class_f1_figure(per_class)
    widths = [bar.get_width() for bar in fig.axes[0].patches]
    assert widths == pytest.approx([per_class[n]["f1"] for n in NAMES])
    assert_real_png(plots.save_figure(fig, tmp_path / "f1.png"))


def test_misclassified_grid(tmp_path, small_data):
    y, probs = random_predictions(len(small_data.y_test))
    errors = compute_metrics(small_data.y_test, probs, NAMES)["most_confident_errors"][:12]
    images = small_data.x_test[[e["index"] for e in errors]]
    fig = plots.misclassified_figure(images, errors, columns=5)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 12
    assert titles[0].startswith(f"true: {errors[0]['true']}\npred: {errors[0]['predicted']}")
    assert_real_png(plots.save_figure(fig, tmp_path / "wrong.png"))
    with pytest.raises(ValueError, match="no misclassified"):
        plots.misclassified_figure(images[:0], [])


def test_png_bytes_become_a_tensorboard_image_tensor():
    png = plots.figure_to_png(plots.per_class_f1_figure({"a": {"f1": 0.5}, "b": {"f1": 0.9}}))
    tensor = plots.png_to_image_tensor(png)
    assert tensor.shape[0] == 1 and tensor.shape[-1] == 3 and tensor.dtype.name == "uint8"
