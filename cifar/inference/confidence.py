"""Which ``min_confidence`` a served model answers "not sure" below: the one resolver.

Every surface (``cifar predict``, the API, the demo, the browser page) asks
:func:`find_min_confidence`, and the answer is decided in this order:

1. a value set by hand (``--min-confidence X``);
2. ``$CIFAR_MIN_CONFIDENCE`` (for the Procfile / gunicorn app, which takes no options);
3. the model's export metadata: ``selective.min_confidence`` of the ``metadata.json`` beside the
   file (an export folder's, or ``models/metadata.json`` for the shipped model);
4. its training run's ``metrics.json``: ``selective.min_confidence`` (chosen on validation by
   the Trainer, see :mod:`cifar.calibration.selective`);
5. none: no threshold, so no answer is ever "not sure" (:meth:`ConfidenceThreshold.describe`
   says so, once, where the model is loaded).

The rule applied with it is :func:`cifar.calibration.is_not_sure` (top-1 probability below
``min_confidence``).

Example:
    >>> find_min_confidence("runs/photos-20250101-120000/export/model_float32.tflite")
    ConfidenceThreshold(min_confidence=0.83, source='.../export/metadata.json')
    >>> find_min_confidence("model.tflite", given=0.5).source
    'set by hand'
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cifar.errors import ConfigError, ModelError
from cifar.inference.model_records import ModelRecords

__all__ = [
    "MIN_CONFIDENCE_ENV",
    "ConfidenceThreshold",
    "check_min_confidence",
    "find_min_confidence",
]

MIN_CONFIDENCE_ENV = "CIFAR_MIN_CONFIDENCE"
HAND_SET = "set by hand"


@dataclass(frozen=True)
class ConfidenceThreshold:
    """A model's ``min_confidence`` (None: no threshold) and where it came from."""

    min_confidence: float | None
    source: str

    def describe(self) -> str:
        """One line for a log or a page: the threshold and its origin, or that there is none."""
        if self.min_confidence is None:
            return (
                f"no min_confidence for this model ({self.source}): every answer is a best "
                f"guess, never 'not sure'; set one with --min-confidence X or "
                f"${MIN_CONFIDENCE_ENV}"
            )
        return (
            f"min_confidence {self.min_confidence:.4g} ({self.source}): below it the answer is "
            "'not sure'"
        )


def check_min_confidence(value: object, origin: str, error: type[Exception] = ConfigError) -> float:
    """``value`` as a float in [0, 1], else ``error`` naming ``origin``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise error(f"min_confidence from {origin} must be a number from 0 to 1, got {value!r}")
    return number


def find_min_confidence(
    model_path: str | os.PathLike,
    given: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> ConfidenceThreshold:
    """The ``min_confidence`` of the model file ``model_path`` (see the module docstring).

    Raises:
        ConfigError: the hand-set or environment value is not a number from 0 to 1.
        ModelError: a metadata or metrics file records a value that is not one.
    """
    if given is not None:
        return ConfidenceThreshold(check_min_confidence(given, "--min-confidence"), HAND_SET)
    environ = os.environ if environ is None else environ
    raw = environ.get(MIN_CONFIDENCE_ENV, "").strip()
    if raw:
        value = check_min_confidence(raw, f"${MIN_CONFIDENCE_ENV}")
        return ConfidenceThreshold(value, f"${MIN_CONFIDENCE_ENV}")
    records = ModelRecords.of(model_path)
    searched = []
    for record, where in (
        (records.metadata, records.metadata_path),
        (records.metrics, records.metrics_path),
    ):
        if record is None or where is None:
            continue
        searched.append(where)
        value = recorded_min_confidence(record)
        if value is not None:
            return ConfidenceThreshold(
                check_min_confidence(value, str(where), ModelError), str(where)
            )
    where = ", ".join(str(p) for p in searched) or f"no metadata.json or run beside {model_path}"
    return ConfidenceThreshold(None, f"none recorded: {where}" if searched else where)


def recorded_min_confidence(record: Mapping) -> object | None:
    """``record["selective"]["min_confidence"]`` of a metrics.json or metadata.json, or None."""
    selective = record.get("selective")
    return selective.get("min_confidence") if isinstance(selective, Mapping) else None
