"""The audit's findings as one row per flagged file and issue kind, and what to exclude.

Kinds, in report order:

- ``label conflict``: byte-identical files filed under different classes (every copy);
- ``label issue``: cleanlab flags the given label as likely wrong (conflicts aside);
- ``exact duplicate``: byte-identical files in one class (every copy but the first);
- ``near copy``: the same picture up to resizing, recompression, a crop or a mirror (every
  member of a group but the first in folder order, its ``partner``);
- ``outlier``: a photo unlike the rest of the folder;
- ``unreadable``: a file the decoder refuses (with the reason).

:data:`EXCLUDE_KINDS` are what ``--write-exclude`` lists: training without them drops the
likely wrong labels and keeps one photo of each copy group. Outliers are not excluded (an
unusual photo may be a valuable one: look at them), nor unreadable files (the loader's
``data.skip_bad_images`` handles those).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.audit.duplicates import DuplicateGroup
from cifar.audit.inventory import Inventory
from cifar.audit.label_issues import LabelIssues
from cifar.audit.near_copies import CopyPairs
from cifar.audit.outliers import Outliers

KINDS = ("label conflict", "label issue", "exact duplicate", "near copy", "outlier", "unreadable")
EXCLUDE_KINDS = ("label conflict", "label issue", "exact duplicate", "near copy")


@dataclass
class Finding:
    """One flagged file: ``row`` in the inventory (None for an unreadable file)."""

    kind: str
    file: str
    split: str = ""
    given: str = ""
    suggested: str = ""
    score: float | None = None
    partner: str = ""
    detail: str = ""
    row: int | None = None
    partner_row: int | None = None


def collect_findings(
    inv: Inventory,
    duplicates: list[DuplicateGroup],
    labels: LabelIssues,
    pairs: CopyPairs,
    groups: np.ndarray,
    outliers: Outliers,
) -> list[Finding]:
    """Every finding, grouped by kind in :data:`KINDS` order, most severe first in each."""
    names = inv.class_names

    def finding(kind: str, row: int, **extra) -> Finding:
        partner = extra.pop("partner_row", None)
        return Finding(
            kind,
            inv.files[row],
            inv.splits[row],
            names[int(inv.labels[row])],
            partner=inv.files[partner] if partner is not None else "",
            row=row,
            partner_row=partner,
            **extra,
        )

    found: list[Finding] = []
    conflict_rows = set()
    for group in (g for g in duplicates if g.conflict):
        conflict_rows.update(group.rows)
        for row in group.rows:
            others = [r for r in group.rows if r != row]
            other_labels = sorted({names[int(inv.labels[r])] for r in others})
            found.append(
                finding(
                    "label conflict",
                    row,
                    suggested=" / ".join(other_labels),
                    partner_row=others[0],
                    detail=f"the same file is also filed under {', '.join(other_labels)}",
                )
            )
    for row in suspects(labels, conflict_rows):
        if not labels.flagged[row]:
            break
        found.append(
            finding(
                "label issue",
                int(row),
                suggested=names[int(labels.suggested[row])],
                score=float(labels.score[row]),
                detail="cleanlab: given label unlikely (self-confidence)",
            )
        )
    for group in (g for g in duplicates if not g.conflict):
        for row in group.rows[1:]:
            found.append(
                finding(
                    "exact duplicate",
                    row,
                    partner_row=group.rows[0],
                    detail=_split_note(inv, [group.rows[0], row]),
                )
            )
    found += _near_copy_findings(inv, pairs, groups, finding)
    for row in np.argsort(outliers.score, kind="stable"):
        if outliers.flagged[row]:
            found.append(
                finding(
                    "outlier",
                    int(row),
                    score=float(outliers.score[row]),
                    detail="unlike the other photos (cleanlab out-of-distribution score)",
                )
            )
    for message in inv.unreadable:
        file, _, reason = message.partition(": ")
        rel = _relative(file, inv)
        found.append(Finding("unreadable", rel, detail=reason))
    return found


def suspects(labels: LabelIssues, leave_out: set[int] = frozenset()) -> np.ndarray:
    """Rows ranked from most to least likely mislabelled, ``leave_out`` rows omitted."""
    return np.asarray([r for r in labels.ranked if int(r) not in leave_out], dtype=np.int64)


def excluded_files(findings: list[Finding]) -> list[str]:
    """The files ``--write-exclude`` lists: those with a kind in :data:`EXCLUDE_KINDS`."""
    return sorted({f.file for f in findings if f.kind in EXCLUDE_KINDS})


def _near_copy_findings(inv, pairs: CopyPairs, groups: np.ndarray, finding) -> list[Finding]:
    """Every member of a group but its first (the keeper), paired with the keeper."""
    if not len(pairs):
        return []
    measures = zip(pairs.pairs, pairs.hash_distance, pairs.cosine, strict=True)
    best = {(int(i), int(j)): (int(d), float(c)) for (i, j), d, c in measures}
    members: dict[int, list[int]] = {}
    for row in np.unique(pairs.pairs):
        members.setdefault(int(groups[row]), []).append(int(row))
    found = []
    for rows in members.values():
        keeper = rows[0]  # group ids are the smallest row: folder order
        for row in rows[1:]:
            distance, cosine = best.get((keeper, row), (None, None))
            measured = (
                f"pHash distance {distance}, cosine {cosine:.3f}"
                if distance is not None
                else f"in a group of {len(rows)} with {inv.files[keeper]}"
            )
            note = _split_note(inv, rows)
            found.append(
                finding(
                    "near copy",
                    row,
                    score=cosine,
                    partner_row=keeper,
                    detail=f"{measured}{'; ' + note if note else ''}",
                )
            )
    return found


def _split_note(inv: Inventory, rows: list[int]) -> str:
    splits = sorted({inv.splits[r] for r in rows})
    return f"copies in {' and '.join(splits)}: a leak across splits" if len(splits) > 1 else ""


def _relative(path: str, inv: Inventory) -> str:
    try:
        return Path(path).relative_to(inv.root).as_posix()
    except ValueError:
        return path
