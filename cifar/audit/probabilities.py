"""Out-of-fold predicted probabilities: each photo scored by a model that never saw it.

Stratified k-fold logistic regression on the L2-normalised features: cleanlab's label checks
need probabilities from a model that did not train on the photo it scores (a model's
predictions on its own training photos agree with their labels, wrong ones too). On frozen
features this takes seconds.
"""

from __future__ import annotations

import numpy as np

from cifar.errors import DataError

DEFAULT_FOLDS = 5
DEFAULT_C = 1.0


def out_of_fold_probabilities(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    folds: int = DEFAULT_FOLDS,
    c: float = DEFAULT_C,
    seed: int = 0,
) -> np.ndarray:
    """``(N, num_classes)`` probabilities, row ``i`` from the fold model that left ``i`` out.

    ``folds`` is lowered to the smallest class's count when a class has fewer photos; a class
    with a single photo cannot be cross-validated and raises DataError.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=num_classes)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        raise DataError(
            "the audit needs at least 2 photos in each of at least 2 classes to cross-validate "
            f"(photos per class: {counts.tolist()})"
        )
    folds = int(min(folds, present.min()))
    probs = np.zeros((len(labels), num_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(features, labels):
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(features[fit_rows], labels[fit_rows])
        probs[np.ix_(held_rows, model.classes_)] = model.predict_proba(features[held_rows])
    return probs
