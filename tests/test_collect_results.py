"""benchmarks/collect_results.py: RESULTS.md rows come from the runs' own records, unedited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.collect_results import describe_augmentation, replace_section, row, table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def test_row_names_train_bn_augmentation_and_schedule():
    run = RESULTS / "mobilenetv2_finetune_plus-20261125-153654"
    phases = row(run, run, ROOT)["cells"][2]
    assert (
        "finetune (unfreeze_last(50), train_bn, lr 0.0001, cosine, label smoothing 0.1)" in phases
    )
    assert phases.endswith("; flip + pad-crop, 2 cached views per image")


def test_augmentation_text():
    assert describe_augmentation({"flip": False, "crop_padding": 0, "cached_views": 0}) == ""
    mixed = {"flip": True, "crop_padding": 0, "mixup": 0.2, "cached_views": 1}
    assert describe_augmentation(mixed) == "flip + mixup 0.2"


@pytest.mark.parametrize("section", ["results_cifar10", "results_photos"])
def test_results_md_tables_are_what_the_script_writes(section):
    """Every committed row regenerates byte for byte from results/<run>/ (no hand edits)."""
    text = (ROOT / "RESULTS.md").read_text()
    committed = text.split(f"<!-- {section}:begin -->\n")[1].split(f"\n<!-- {section}:end -->")[0]
    rows = []
    for line in committed.splitlines()[2:]:
        run = re.match(r"\| \[([^\]]+)\]", line).group(1)
        experiment = re.search(r"`cifar train ([^\s`]+)", line).group(1)
        rows.append(row(RESULTS / run, RESULTS / run, ROOT, experiment))
    assert table(rows) == committed


def test_replace_section_keeps_the_rest():
    text = "intro\n<!-- t:begin -->\nold\n<!-- t:end -->\nrest\n"
    assert (
        replace_section(text, "t", "new") == "intro\n<!-- t:begin -->\nnew\n<!-- t:end -->\nrest\n"
    )
    with pytest.raises(SystemExit, match="markers"):
        replace_section("no markers", "t", "new")
