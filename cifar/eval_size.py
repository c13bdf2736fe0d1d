"""The size a trained network is evaluated, calibrated and saved at: FixRes, chosen on validation.

Training on random-resized crops shows the network its objects larger than a whole-photo view
at the same input size does, so the same weights often see whole photos better at a larger
input (Touvron et al., "Fixing the train-test resolution discrepancy", NeurIPS 2019). A
backbone that ends in global pooling takes any input size with unchanged weights, so this costs
no training: the trained network is rebuilt at each candidate size, the validation split is
predicted at each, and the size whose temperature-scaled validation NLL is lowest is kept. The
candidates run from the training size in steps of :data:`STEP` up to the size the photos were
stored at, so a view never asks for pixels that were not kept.

Example:
    >>> candidate_sizes(224, 256)
    [224, 256]
    >>> choice = choose_eval_size([224, 256], predict_val)   # doctest: +SKIP
    >>> choice.size, choice.record()["candidates"][0]["val_nll"]   # doctest: +SKIP
    (256, 0.0712)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from cifar.calibration.temperature import calibrate
from cifar.errors import ConfigError

__all__ = ["STEP", "EvalSizeChoice", "candidate_sizes", "choose_eval_size", "rebuild_at"]

# MobileNet-style backbones downsample by 32: multiples of it keep every feature map whole.
STEP = 32


def candidate_sizes(input_size: int, stored_size: int, step: int = STEP) -> list[int]:
    """The training size, then larger sizes ``step`` apart up to ``stored_size`` (inclusive)."""
    if input_size < 1 or stored_size < 1 or step < 1:
        raise ValueError(f"sizes must be positive: {input_size}, {stored_size}, step {step}")
    return [input_size, *range(input_size + step, stored_size + 1, step)]


def rebuild_at(model: keras.Model, size: int, build: Callable[[int], keras.Model]) -> keras.Model:
    """``build(size)`` holding ``model``'s weights: the same network taking ``size`` squared.

    Raises ConfigError when the weights do not fit the rebuilt network, i.e. the model's
    weights depend on its input size (a Flatten head, such as the custom CNN's).
    """
    if int(model.input_shape[1]) == size:
        return model
    resized = build(size)
    try:
        resized.set_weights(model.get_weights())
    except ValueError as exc:
        raise ConfigError(
            f"model.eval_size: {model.name} cannot run at {size}x{size} with the weights it "
            f"trained at {model.input_shape[1]}x{model.input_shape[1]} ({exc}); use a model "
            "ending in global pooling, or leave eval_size unset"
        ) from exc
    return resized


@dataclass(frozen=True)
class EvalSizeChoice:
    """The evaluation size and why: ``chosen_by`` is ``"validation"`` or ``"configured"``.

    ``candidates`` holds, per size tried, the validation accuracy, the fitted temperature and
    the NLL after it (empty for a configured size).
    """

    size: int
    chosen_by: str
    candidates: tuple[dict, ...] = field(default_factory=tuple)

    def record(self) -> dict:
        """What ``metrics.json`` keeps under ``model.eval_size_choice``."""
        return {"size": self.size, "chosen_by": self.chosen_by, "candidates": list(self.candidates)}


def choose_eval_size(
    sizes: list[int], predict_val: Callable[[int], tuple[np.ndarray, np.ndarray]]
) -> EvalSizeChoice:
    """The size among ``sizes`` whose validation predictions fit best once temperature-scaled.

    ``predict_val(size)`` gives (labels, probabilities) of the validation split at ``size``.
    NLL after a fitted temperature compares sizes by how well they rank and separate the
    classes, not by how confident each happens to be (a larger input shifts confidence), and
    it still tells sizes apart where a few hundred validation photos have one or two errors.
    Ties go to the earlier (smaller) size.
    """
    if not sizes:
        raise ValueError("no candidate sizes")
    rows = []
    for size in sizes:
        labels, probs = predict_val(size)
        fit = calibrate(probs, labels)
        rows.append(
            {
                "size": int(size),
                "val_accuracy": round(float(np.mean(probs.argmax(axis=1) == labels)), 6),
                "temperature": round(fit.temperature, 6),
                "val_nll": round(fit.after["nll"], 6),
            }
        )
    best = min(rows, key=lambda row: row["val_nll"])
    return EvalSizeChoice(best["size"], "validation", tuple(rows))
