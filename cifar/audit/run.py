"""Run every check of the audit on a folder and write the report: :func:`run_audit`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cifar.audit.duplicates import DuplicateGroup, exact_duplicates
from cifar.audit.features import backbone_features, pooled
from cifar.audit.findings import Finding, collect_findings, suspects
from cifar.audit.inventory import Inventory, take_inventory
from cifar.audit.label_issues import LabelIssues, find_label_issues
from cifar.audit.near_copies import (
    DEFAULT_RULE,
    CopyPairs,
    NearCopyRule,
    near_copies,
)
from cifar.audit.outliers import Outliers, find_outliers
from cifar.audit.overlap import ClassOverlap, overlapping_classes
from cifar.audit.probabilities import DEFAULT_C, DEFAULT_FOLDS, out_of_fold_probabilities

DEFAULT_SIZE = 224


@dataclass
class AuditSettings:
    """What to audit and how.

    Args:
        data_dir: the image folder (any layout ``cifar train`` reads).
        cache_dir: where decoded photos, features and hashes are cached.
        image_size: the size photos are decoded at and the backbone runs at.
        backbone: a backbone name of :mod:`cifar.models.backbones`.
        weights: its weights (``model.weights`` rules: "imagenet", a file, a folder, None).
        mirror: average each photo's features with its mirror's.
        folds: k of the stratified k-fold out-of-fold probabilities.
        c: inverse regularisation strength of the logistic regression.
        engine: what runs the backbone (``cache_engine`` values).
        exclude: relative paths to leave out (an exclude file already accepted).
        near_copy_rule: when a pair of photos counts as near-copies.
        seed: seeds the folds.
    """

    data_dir: str | Path
    cache_dir: Path = Path("runs/.cache")
    image_size: int = DEFAULT_SIZE
    backbone: str = "mobilenet_v2"
    weights: str | None = "imagenet"
    mirror: bool = True
    folds: int = DEFAULT_FOLDS
    c: float = DEFAULT_C
    engine: str = "auto"
    exclude: set[str] = field(default_factory=set)
    near_copy_rule: NearCopyRule = DEFAULT_RULE
    seed: int = 0


@dataclass
class AuditResult:
    """Everything the audit found, with the probabilities and features it used."""

    settings: AuditSettings
    inventory: Inventory
    probs: np.ndarray
    labels: LabelIssues
    suspects: np.ndarray
    duplicates: list[DuplicateGroup]
    pairs: CopyPairs
    groups: np.ndarray
    outliers: Outliers
    overlaps: list[ClassOverlap]
    findings: list[Finding]
    seconds: dict[str, float]

    @property
    def accuracy(self) -> float:
        """Out-of-fold accuracy against the given labels."""
        return float(np.mean(self.probs.argmax(axis=1) == self.inventory.labels))

    def count(self, kind: str) -> int:
        """Number of findings of ``kind``."""
        return sum(f.kind == kind for f in self.findings)


def run_audit(settings: AuditSettings, log: Callable[[str], None] = print) -> AuditResult:
    """Decode, featurise and check every photo of ``settings.data_dir`` (never modifies it)."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    cache = Path(settings.cache_dir)
    inv = take_inventory(
        settings.data_dir, settings.image_size, cache / "images", settings.exclude, log
    )
    lap("decode")
    features = backbone_features(
        inv.images,
        inv.digest,
        cache / "audit",
        settings.backbone,
        settings.weights,
        settings.engine,
        log,
    )
    vectors = pooled(features, settings.mirror)
    lap("features")
    num_classes = len(inv.class_names)
    probs = out_of_fold_probabilities(
        vectors, inv.labels, num_classes, settings.folds, settings.c, settings.seed
    )
    labels = find_label_issues(inv.labels, probs)
    duplicates = exact_duplicates(inv.sha256, inv.labels)
    conflicts = {r for g in duplicates if g.conflict for r in g.rows}
    lap("labels")
    pairs, groups = near_copies(inv.hashes, vectors, inv.sha256, settings.near_copy_rule)
    lap("near copies")
    outliers = find_outliers(vectors)
    overlaps = overlapping_classes(inv.labels, probs, inv.class_names)
    findings = collect_findings(inv, duplicates, labels, pairs, groups, outliers)
    lap("outliers and overlap")
    seconds["total"] = round(sum(seconds.values()), 2)
    return AuditResult(
        settings,
        inv,
        probs,
        labels,
        suspects(labels, conflicts),
        duplicates,
        pairs,
        groups,
        outliers,
        overlaps,
        findings,
        seconds,
    )
