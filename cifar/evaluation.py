"""Test-set evaluation: batched, streamed prediction and the metrics a reviewer needs.

Prediction never holds a resized copy of the test set: a Keras model is fed one batch at a time
from :func:`cifar.data.pipeline.make_dataset` (resize inside the pipeline) through one compiled
``model(x, training=False)`` step; an exported model (a :class:`cifar.inference.runtimes.Runtime`)
gets raw stored-size batches and resizes inside itself. Both paths give the same metrics, so
exports are compared with the Keras model on equal terms.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cifar.calibration.metrics import KERAS_EPSILON, image_losses
from cifar.run_files import EVALUATION_FILE, PREDICTIONS_FILE, write_json

WORST_COUNT = 25
PAIRS_COUNT = 10


def predict_dataset(model, dataset, step: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer labels and class probabilities over a batched ``(images, labels)`` dataset.

    Labels may be one-hot or integer; ``step`` is a compiled predict step (built once when
    None, pass one in to avoid retracing when called repeatedly, as a callback does).
    """
    if step is None:
        from cifar.inference.keras_model import compiled_predict_step

        step = compiled_predict_step(model)
    labels, probs = [], []
    for x, y in dataset:
        probs.append(np.asarray(step(x)))
        y = np.asarray(y)
        labels.append(y.argmax(axis=-1) if y.ndim == 2 else y.reshape(-1))
    if not probs:
        raise ValueError("the dataset is empty: nothing to predict")
    return np.concatenate(labels).astype(np.int64), np.concatenate(probs).astype(np.float32)


def predict_images(
    model, images: np.ndarray, image_size: int, batch_size: int = 64, step: Callable | None = None
) -> np.ndarray:
    """Class probabilities for uint8 stored-size ``images`` from a Keras model or a runtime.

    ``step``: the Keras model's compiled predict step, for callers predicting many chunks
    (:func:`chunk_predictor`); None builds one for this call.
    """
    import keras

    if isinstance(model, keras.Model):
        from cifar.data.pipeline import make_dataset

        dummy = np.zeros(len(images), dtype=np.int64)
        ds = make_dataset(images, dummy, 1, image_size, batch_size, training=False, one_hot=False)
        return predict_dataset(model, ds, step)[1]
    if not callable(getattr(model, "predict", None)):
        raise TypeError(
            f"cannot evaluate a {type(model).__name__}: expected a keras.Model or an object "
            "with .predict(images) -> probabilities (cifar.inference.runtimes.Runtime)"
        )
    chunks = [
        np.asarray(model.predict(images[i : i + batch_size]), dtype=np.float32)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def chunk_predictor(model, image_size: int, batch_size: int = 64) -> Callable:
    """``predict(images) -> probabilities`` for many chunks: a Keras model's step is compiled
    once, where a step per chunk would trace the model again on every call."""
    import keras

    step = None
    if isinstance(model, keras.Model):
        from cifar.inference.keras_model import compiled_predict_step

        step = compiled_predict_step(model)
    return lambda images: predict_images(model, images, image_size, batch_size, step)


def predict_tta(
    model, images: np.ndarray, image_size: int, views: int, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities averaged over ``views`` test-time views (see :mod:`cifar.data.tta`).

    The views are drawn from the stored images one batch at a time (crops at full stored
    resolution), then predicted as :func:`predict_images` does.
    """
    from cifar.data import tta

    predict = chunk_predictor(model, image_size, batch_size)
    chunks = []
    for i in range(0, len(images), batch_size):
        chunks.append(tta.average(predict, np.asarray(images[i : i + batch_size]), views))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def compute_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """Every test metric from labels and probabilities (plain data, ready for JSON).

    Returns a dict with ``headline`` (accuracy, loss, top-3 accuracy, macro/weighted F1 and
    precision/recall, n), ``per_class`` (precision, recall, F1, support by class name),
    ``classification_report`` (scikit-learn's dict and text), ``confusion_matrix`` (counts,
    rows = true class) and its row-normalised form, ``confused_pairs`` (the class pairs mixed
    up most often, both directions summed) and ``most_confident_errors``.
    """
    from sklearn.metrics import classification_report, confusion_matrix

    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    n_cls = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(y_true), n_cls):
        raise ValueError(
            f"probabilities of shape {probs.shape} do not match {len(y_true)} labels "
            f"and {n_cls} classes"
        )
    if len(y_true) == 0:
        raise ValueError("no test images to evaluate")
    y_pred = probs.argmax(axis=1)
    labels = list(range(n_cls))
    k = min(3, n_cls)
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=class_names, output_dict=True, zero_division=0
    )
    text = classification_report(
        y_true, y_pred, labels=labels, target_names=class_names, digits=4, zero_division=0
    )
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    headline = {
        "accuracy": float((y_pred == y_true).mean()),
        "loss": float(image_losses(probs, y_true, KERAS_EPSILON).mean()),
        "top3_accuracy": float((topk == y_true[:, None]).any(axis=1).mean()),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "weighted_f1": float(report["weighted avg"]["f1-score"]),
        "macro_precision": float(report["macro avg"]["precision"]),
        "macro_recall": float(report["macro avg"]["recall"]),
        "n": len(y_true),
    }
    per_class = {
        name: {
            "precision": float(report[name]["precision"]),
            "recall": float(report[name]["recall"]),
            "f1": float(report[name]["f1-score"]),
            "support": int(report[name]["support"]),
        }
        for name in class_names
    }
    return {
        "headline": headline,
        "class_names": list(class_names),
        "per_class": per_class,
        "classification_report": {"dict": report, "text": text},
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_normalized": row_normalize(cm).round(6).tolist(),
        "confused_pairs": confused_pairs(cm, class_names),
        "most_confident_errors": most_confident_errors(y_true, probs, class_names),
    }


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Confusion matrix rows divided by their sums (recall on the diagonal); empty rows stay 0."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def confused_pairs(
    cm: np.ndarray, class_names: list[str], top: int = PAIRS_COUNT
) -> list[dict[str, Any]]:
    """Unordered class pairs by total confusions (a taken for b plus b taken for a)."""
    cm = np.asarray(cm)
    pairs = []
    for a in range(len(class_names)):
        for b in range(a + 1, len(class_names)):
            total = int(cm[a, b] + cm[b, a])
            if total:
                pairs.append(
                    {
                        "a": class_names[a],
                        "b": class_names[b],
                        "count": total,
                        "a_as_b": int(cm[a, b]),
                        "b_as_a": int(cm[b, a]),
                    }
                )
    pairs.sort(key=lambda p: (-p["count"], p["a"], p["b"]))
    return pairs[:top]


def most_confident_errors(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], top: int = WORST_COUNT
) -> list[dict[str, Any]]:
    """The wrong predictions made with the highest confidence, most confident first."""
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    conf = probs[wrong, y_pred[wrong]]
    order = wrong[np.argsort(-conf, kind="stable")][:top]
    return [
        {
            "index": int(i),
            "true": class_names[int(y_true[i])],
            "predicted": class_names[int(y_pred[i])],
            "confidence": float(probs[i, y_pred[i]]),
            "true_class_probability": float(probs[i, y_true[i]]),
        }
        for i in order
    ]


def evaluate_and_save(
    run_dir: Path,
    model,
    x_test: np.ndarray,
    y_test: np.ndarray,
    class_names: list[str],
    image_size: int,
    batch_size: int = 64,
    prefix: str = "",
    tta: int = 1,
) -> dict:
    """Evaluate ``model`` on the test set and write the detailed results into ``run_dir``.

    Args:
        run_dir: the run directory; writes ``{prefix}evaluation.json`` (all metrics) and
            ``{prefix}predictions.npz`` (labels, probabilities and the pixels of the most
            confidently wrong images, for the report's plots).
        model: a ``keras.Model`` taking float images of ``image_size``, or an object with
            ``.predict(uint8 N x 32 x 32 x 3) -> probabilities`` (a
            ``cifar.inference.runtimes.Runtime``).
        x_test: uint8 test images at their stored size (N x 32 x 32 x 3).
        y_test: integer labels.
        class_names: names in label order.
        image_size: the Keras model's input size (ignored for runtimes, which resize inside).
        batch_size: images per prediction step.
        prefix: file-name prefix, so an exported model's results sit beside the Keras ones.
        tta: with more than 1, also measure test-time augmentation over this many views
            (:mod:`cifar.data.tta`); the headline stays the single pass (what an export
            delivers) and ``tta`` records the averaged views' accuracy, loss and time.

    Returns:
        The headline metrics (``accuracy``, ``loss``, ``top3_accuracy``, ``macro_f1``,
        ``weighted_f1``, ``n``, ...) plus ``model_kind``, ``seconds`` and ``images_per_second``
        (and ``tta`` when asked).
    """
    run_dir = Path(run_dir)
    y_test = np.asarray(y_test, dtype=np.int64).reshape(-1)
    if len(x_test) != len(y_test):
        raise ValueError(f"{len(x_test)} test images but {len(y_test)} labels")
    start = time.perf_counter()
    probs = predict_images(model, x_test, image_size, batch_size)
    seconds = time.perf_counter() - start
    result = compute_metrics(y_test, probs, class_names)
    kind = getattr(model, "kind", None) or "keras"
    headline = {
        **result["headline"],
        "model_kind": kind,
        "seconds": round(seconds, 3),
        "images_per_second": round(len(y_test) / seconds, 1) if seconds > 0 else None,
    }
    if tta > 1:
        start = time.perf_counter()
        tta_probs = predict_tta(model, x_test, image_size, tta, batch_size)
        tta_seconds = time.perf_counter() - start
        tta_head = compute_metrics(y_test, tta_probs, class_names)["headline"]
        headline["tta"] = {
            "views": tta,
            "accuracy": tta_head["accuracy"],
            "loss": tta_head["loss"],
            "seconds": round(tta_seconds, 3),
            "cost": round(tta_seconds / seconds, 2) if seconds > 0 else None,
        }
    result["headline"] = headline
    result["model"] = {"kind": kind, "image_size": int(image_size), "batch_size": batch_size}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / f"{prefix}{EVALUATION_FILE}", result)
    worst = np.array([e["index"] for e in result["most_confident_errors"]], dtype=np.int64)
    np.savez_compressed(
        run_dir / f"{prefix}{PREDICTIONS_FILE}",
        labels=y_test,
        probabilities=probs.astype(np.float32),
        worst_indices=worst,
        worst_images=np.asarray(x_test)[worst] if len(worst) else np.zeros((0, 32, 32, 3), "u1"),
    )
    return headline


def file_prefix(model_path: str | Path) -> str:
    """The evaluation-file prefix of a model file: ``export/model.tflite`` -> ``model_tflite_``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", Path(model_path).name).strip("_") + "_"
