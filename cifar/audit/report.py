"""The audit's files: ``AUDIT.md``, ``audit.html`` (image grids) and ``audit.csv``.

``AUDIT.md`` summarises the counts and lists the top findings of each kind with thumbnails
(small PNG files in ``thumbs/``); ``audit.html`` is the same page standalone, thumbnails
embedded; ``audit.csv`` lists every flagged file, one row per file and issue kind.
"""

from __future__ import annotations

import csv
from collections import Counter
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image

from cifar.audit.findings import EXCLUDE_KINDS, KINDS, Finding
from cifar.audit.run import AuditResult
from cifar.report.html import write_html

THUMB = 96
SHOWN = 24  # thumbnails per kind
LISTED = 40  # table rows per kind
CSV_COLUMNS = ("file", "split", "given", "issue", "suggested", "score", "partner", "detail")
WHAT_TO_DO = {
    "label conflict": "one file under two classes: keep it in the right class only",
    "label issue": "check the label; move the photo if it is wrong",
    "exact duplicate": "harmless for labels; training keeps one copy",
    "near copy": "the same picture twice: keep one, or keep the group in one split",
    "outlier": "look: a photo of something else, or an unusual view worth keeping",
    "unreadable": "fix or remove the file (data.skip_bad_images trains without it)",
}


def write_report(result: AuditResult, out_dir: Path) -> dict[str, Path]:
    """Write the three files (and thumbnails) into ``out_dir``; their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "AUDIT.md",
        "html": out_dir / "audit.html",
        "csv": out_dir / "audit.csv",
    }
    write_csv(result.findings, paths["csv"])
    text = render_markdown(result, _Thumbs(result, out_dir))
    paths["markdown"].write_text(text)
    title = f"Data audit of {result.inventory.root.name}"
    write_html(text, paths["html"], out_dir, title=title)
    return paths


def write_csv(findings: list[Finding], path: Path) -> None:
    """One row per flagged file and issue kind (columns: :data:`CSV_COLUMNS`)."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for f in findings:
            score = "" if f.score is None else f"{f.score:.4f}"
            writer.writerow(
                [f.file, f.split, f.given, f.kind, f.suggested, score, f.partner, f.detail]
            )


class _Thumbs:
    """Small PNG thumbnails of inventory rows, written once each into ``out/thumbs``."""

    def __init__(self, result: AuditResult, out_dir: Path):
        self.images = result.inventory.images
        self.dir = out_dir / "thumbs"
        self.dir.mkdir(exist_ok=True)

    def src(self, row: int) -> str:
        path = self.dir / f"{row}.png"
        if not path.is_file():
            image = Image.fromarray(np.asarray(self.images[row]))
            image.resize((THUMB, THUMB), Image.Resampling.BILINEAR).save(path)
        return f"thumbs/{path.name}"

    def grid(self, cells: list[tuple[int, str]]) -> str:
        """One line of raw HTML (Markdown keeps it): a figure per ``(row, caption)``."""
        figures = "".join(
            f'<figure style="display:inline-block;margin:4px;width:{THUMB + 8}px;'
            f'vertical-align:top"><img src="{self.src(row)}" width="{THUMB}" '
            f'height="{THUMB}" alt="{escape(caption)}"><figcaption style="font-size:11px;'
            f'overflow-wrap:anywhere">{escape(caption)}</figcaption></figure>'
            for row, caption in cells
        )
        return f"<div>{figures}</div>"


def render_markdown(result: AuditResult, thumbs: _Thumbs) -> str:
    """The ``AUDIT.md`` text."""
    inv, s = result.inventory, result.settings
    counts = Counter(f.kind for f in result.findings)
    per_split = Counter(inv.splits)
    lines = [
        f"# Data audit of {inv.root.name}",
        "",
        f"Folder `{inv.root}`: {len(inv)} photos ({_listing(per_split)}) in "
        f"{len(inv.class_names)} classes ({', '.join(inv.class_names)}). Nothing in it was "
        "moved, edited or deleted.",
        "",
        f"Method: frozen {s.backbone} features at {s.image_size}x{s.image_size}"
        f"{' averaged with the mirror' if s.mirror else ''}, {s.folds}-fold logistic "
        f"regression (C = {s.c:g}) for out-of-fold probabilities (accuracy against the given "
        f"labels: {result.accuracy:.1%}), cleanlab for label issues, outliers and overlapping "
        f"classes; near-copies by {s.near_copy_rule.describe()}.",
        "",
        "| issue | files | what to do |",
        "|---|---:|---|",
        *(f"| {kind} | {counts.get(kind, 0)} | {WHAT_TO_DO[kind]} |" for kind in KINDS),
        "",
        f"Every flagged file is in `audit.csv`. `cifar audit --write-exclude FILE` lists the "
        f"{', '.join(EXCLUDE_KINDS)} files for `data.exclude = FILE`.",
    ]
    if inv.ignored:
        lines += ["", f"Ignored non-image files: {len(inv.ignored)} ({_first(inv.ignored)})."]
    if inv.excluded:
        lines += ["", f"Left out by the exclude file given: {inv.excluded} photos."]
    lines += _label_section(result, thumbs)
    lines += _kind_section(
        result, thumbs, "label conflict", "Label conflicts (one file in two classes)"
    )
    lines += _copy_section(result, thumbs)
    lines += _kind_section(result, thumbs, "exact duplicate", "Exact duplicates within a class")
    lines += _kind_section(result, thumbs, "outlier", "Outliers (unlike the rest)")
    lines += _overlap_section(result)
    unreadable = [f for f in result.findings if f.kind == "unreadable"]
    if unreadable:
        lines += ["", "## Unreadable files", ""]
        lines += [f"- `{f.file}`: {f.detail}" for f in unreadable]
    return "\n".join(lines) + "\n"


def _label_section(result: AuditResult, thumbs: _Thumbs) -> list[str]:
    inv, issues = result.inventory, result.labels
    names = inv.class_names
    flagged = [f for f in result.findings if f.kind == "label issue"]
    top = result.suspects[:LISTED]
    lines = [
        "",
        "## Likely label errors",
        "",
        f"cleanlab flags {len(flagged)} photos. The most suspect {len(top)} (lowest "
        "self-confidence: the out-of-fold probability of the given label; flagged = counted "
        "as an issue by cleanlab):",
        "",
        thumbs.grid(
            [
                (int(r), f"{names[inv.labels[r]]} → {names[issues.suggested[r]]}")
                for r in top[:SHOWN]
            ]
        ),
        "",
        "| # | file | split | given | suggested | score | flagged |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for rank, row in enumerate(top, start=1):
        lines.append(
            f"| {rank} | `{inv.files[row]}` | {inv.splits[row]} | {names[inv.labels[row]]} | "
            f"{names[issues.suggested[row]]} | {issues.score[row]:.3f} | "
            f"{'yes' if issues.flagged[row] else 'no'} |"
        )
    return lines


def _kind_section(result: AuditResult, thumbs: _Thumbs, kind: str, title: str) -> list[str]:
    found = [f for f in result.findings if f.kind == kind]
    if not found:
        return []
    lines = ["", f"## {title}", "", f"{len(found)} files.", ""]
    cells = []
    for f in found[:SHOWN]:
        cells.append((f.row, f"{f.given}: {Path(f.file).name}"))
        if f.partner_row is not None and kind != "outlier":
            cells.append((f.partner_row, f"{f.suggested or f.given}: {Path(f.partner).name}"))
    lines += [thumbs.grid(cells[:SHOWN]), "", "| file | split | given | partner | detail |"]
    lines.append("|---|---|---|---|---|")
    lines += [
        f"| `{f.file}` | {f.split} | {f.given} | {f'`{f.partner}`' if f.partner else ''} | "
        f"{f.detail}{'' if f.score is None else f' (score {f.score:.3f})'} |"
        for f in found[:LISTED]
    ]
    return lines


def _copy_section(result: AuditResult, thumbs: _Thumbs) -> list[str]:
    inv, pairs = result.inventory, result.pairs
    found = [f for f in result.findings if f.kind == "near copy"]
    if not len(pairs):
        return ["", "## Near-copies", "", "None found."]
    in_groups = np.unique(pairs.pairs)
    n_groups = len(np.unique(result.groups[in_groups]))
    leaks = [f for f in found if "leak" in f.detail]
    lines = [
        "",
        "## Near-copies",
        "",
        f"{len(pairs)} pairs in {n_groups} groups ({len(in_groups)} photos); "
        f"{len(leaks)} copies sit in another split than their group's first photo. Each pair "
        "below (first photo, then its copy) should be checked by eye:",
        "",
    ]
    order = np.argsort(-pairs.cosine, kind="stable")
    cells = []
    for p in order[: SHOWN // 2]:
        i, j = (int(v) for v in pairs.pairs[p])
        cells += [(i, Path(inv.files[i]).name), (j, Path(inv.files[j]).name)]
    lines += [thumbs.grid(cells), "", "| file | copy | pHash distance | cosine | splits |"]
    lines.append("|---|---|---:|---:|---|")
    for p in order[:LISTED]:
        i, j = (int(v) for v in pairs.pairs[p])
        lines.append(
            f"| `{inv.files[i]}` | `{inv.files[j]}` | {pairs.hash_distance[p]} | "
            f"{pairs.cosine[p]:.3f} | {inv.splits[i]}, {inv.splits[j]} |"
        )
    return lines


def _overlap_section(result: AuditResult) -> list[str]:
    if not result.overlaps:
        return []
    lines = [
        "",
        "## Overlapping classes",
        "",
        "Class pairs the out-of-fold model confuses most (cleanlab's estimate of the photos "
        "between them): candidates to merge, or to describe more sharply.",
        "",
        "| class | class | photos between | joint probability |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {o.class_a} | {o.class_b} | {o.photos} | {o.joint_probability:.4f} |"
        for o in result.overlaps
    ]
    return lines


def _listing(counts: Counter) -> str:
    return ", ".join(f"{n} {split}" for split, n in counts.items())


def _first(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")
