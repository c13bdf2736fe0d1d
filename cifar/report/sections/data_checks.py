"""Data checks: duplicates and near-copies found by the loader, what was left out and why.

Read from ``metrics.json``'s ``data.data_checks`` (written by :mod:`cifar.data.folder`, rules in
:mod:`cifar.data.duplicates`) and ``data.ignored_files``; runs without them (CIFAR-10, older
runs) have no such section.
"""

from __future__ import annotations

from cifar.report.formatting import _cell, _int
from cifar.report.sections.context import ReportContext

LISTED = 20  # dropped files named in the report; metrics.json lists them all
OVERLAPS_LISTED = 10


def render(ctx: ReportContext) -> str:
    """The data-checks section, or "" when the run recorded none."""
    data = ctx.run.metrics.get("data") or {}
    checks = data.get("data_checks")
    if not isinstance(checks, dict):
        return ""
    given_folders = data.get("layout") not in (None, "classes")
    lines = ["## Data checks", "", *_policy_lines(checks), *_found_lines(checks, given_folders)]
    lines += _exclude_lines(checks) + _ignored_lines(data)
    lines += ["", _separation(checks)]
    lines += _dropped_table(checks.get("dropped") or [])
    lines += _overlap_list(checks)
    return "\n".join(lines)


def _policy_lines(checks: dict) -> list[str]:
    near = checks.get("near_copies", "?")
    distance = checks.get("max_hash_distance")
    how = (
        f", perceptual hashes at most {distance} bits apart, confirmed by thumbnails"
        if distance is not None
        else ""
    )
    return [
        f'- **Policies:** data.duplicates = "{checks.get("duplicates", "?")}", '
        f'data.near_copies = "{near}"{how}'
    ]


def _unconfirmed(checks: dict) -> str:
    extra = checks.get("hash_matches", 0) - checks.get("near_copy_pairs", 0)
    if extra <= 0:
        return ""
    return f"; {_int(extra)} more hash match(es) were alike photos, not copies, and stay apart"


def _found_lines(checks: dict, given_folders: bool) -> list[str]:
    lines = []
    if checks.get("duplicates") == "keep":
        lines.append('- **Exact duplicates:** not looked for (data.duplicates = "keep")')
    else:
        lines.append(
            f"- **Exact duplicates:** {_int(checks.get('identical_sets', 0))} set(s) of "
            f"identical files ({_int(checks.get('identical_files', 0))} files), "
            f"{_int(checks.get('label_conflicts', 0))} of them filed under two or more classes "
            "(a label conflict: every copy left out)"
        )
    if checks.get("near_copies") == "off":
        lines.append('- **Near-copy groups:** not looked for (data.near_copies = "off")')
    else:
        lines.append(
            f"- **Near-copy groups:** {_int(checks.get('near_copy_groups', 0))} group(s) holding "
            f"{_int(checks.get('photos_in_groups', 0))} photos "
            f"({_int(checks.get('near_copy_pairs', 0))} near-copy pairs), same picture up to "
            "resizing, recompression, a small crop or a mirror" + _unconfirmed(checks)
        )
    overlaps = checks.get("overlap_count", 0)
    kept = checks.get("near_copies") == "report"
    if given_folders or overlaps:  # root/<class>/* has no given split to check against train
        lines.append(
            f"- **Given test/validation folders against training:** {_int(overlaps)} training "
            "photo(s) are copies or near-copies of test or validation photos"
            + (
                (' (kept: data.near_copies = "report")' if kept else " (left out)")
                if overlaps
                else ""
            )
        )
    n_dropped = len(checks.get("dropped") or [])
    lines.append(f"- **Left out:** {_int(n_dropped)} photo(s), listed below with the reason")
    return lines


def _exclude_lines(checks: dict) -> list[str]:
    if "excluded" not in checks:
        return []
    unmatched = checks.get("exclude_unmatched") or 0
    note = f"; {_int(unmatched)} listed path(s) named no image" if unmatched else ""
    return [
        f"- **Exclude file:** `{checks.get('exclude_file', '?')}` left out "
        f"{_int(checks['excluded'])} photo(s) before decoding{note}"
    ]


def _ignored_lines(data: dict) -> list[str]:
    count = data.get("ignored_files")
    if count is None:
        return []
    examples = data.get("ignored_examples") or []
    named = ", ".join(f"`{e}`" for e in examples)
    more = f" and {_int(count - len(examples))} more" if count > len(examples) else ""
    return [
        f"- **Ignored non-image files:** {_int(count)}" + (f" ({named}{more})" if named else "")
    ]


def _separation(checks: dict) -> str:
    """The explicit statement whether any group straddles train and test."""
    clean = checks.get("no_group_straddles_train_and_test")
    all_three = checks.get("no_group_straddles_train_val_test")
    if clean is None:
        return "**Train/test separation:** not recorded by this run."
    if clean:
        text = "**Train/test separation:** no near-copy or duplicate group straddles train and test"
        if all_three:
            text += " (nor training and validation)"
        if checks.get("near_copies") == "off":
            text += "; near-copy detection was off, so only identical files were grouped"
        return text + "."
    return (
        f"**Train/test separation: {_int(checks.get('straddling_groups'))} near-copy group(s) "
        "straddle train and test** (data.near_copies = "
        f'"{checks.get("near_copies")}"): the test figure may be higher than the model has earned.'
    )


def _dropped_table(dropped: list[dict]) -> list[str]:
    if not dropped:
        return []
    lines = ["", "| Left out | Reason |", "|---|---|"]
    lines += [
        f"| `{_cell(d.get('file', '?'))}` | {_cell(d.get('reason', '?'))} |"
        for d in dropped[:LISTED]
    ]
    if len(dropped) > LISTED:
        lines += ["", f"... and {_int(len(dropped) - LISTED)} more, all listed in metrics.json."]
    return lines


def _overlap_list(checks: dict) -> list[str]:
    overlaps = checks.get("overlaps") or []
    if not overlaps:
        return []
    total = checks.get("overlap_count", len(overlaps))
    lines = ["", "Training photos that are copies of test or validation photos:", ""]
    lines += [f"- `{pair}`" for pair in overlaps[:OVERLAPS_LISTED]]
    if total > OVERLAPS_LISTED:
        lines.append(f"- ... and {_int(total - OVERLAPS_LISTED)} more")
    return lines
