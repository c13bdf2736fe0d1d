"""The report's trust sections (data checks, calibration, "not sure", top losses) and its PDF.

The calibration, "not sure" and top-loss numbers are computed here from a real trained model's
predictions with :mod:`cifar.calibration` and :mod:`cifar.explain` and written into
``metrics.json`` exactly as agreed in the run-file schema (the Trainer writes the same keys);
the data checks come from a real tiny run on a generated photo folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, require_chromium, require_playwright
from test_report import make_run_dir, table_value

from cifar.calibration import (
    apply_temperature,
    calibrate,
    calibration_summary,
    choose_min_confidence,
    coverage_curve,
    ece_noise_floor,
    evaluate_threshold,
    ood_auroc,
    reliability_bins,
)
from cifar.report import REPORT_HTML, REPORT_PDF, RunFiles, finalize_run
from cifar.report.sections import data_checks
from cifar.report.sections.context import ReportContext
from cifar.run_files import COVERAGE_PLOT, RELIABILITY_PLOT, TOP_LOSSES_DIR

N_TOP = 6
NEW_SECTIONS = ("## Data checks", "## Calibration", '## Confidence and "not sure"', "## Top losses")


def trust_metrics(run_dir: Path, model, data) -> dict:
    """``calibration``, ``selective`` and ``top_losses`` of the schema, from real predictions.

    The last 300 training images stand in for the validation split (where T and the threshold
    are chosen); uniform noise images are the "other things".
    """
    from cifar.explain.explainer import Explainer

    x_val, y_val = data.x_train[-300:], data.y_train[-300:]
    val = model.predict(x_val, verbose=0)
    test = model.predict(data.x_test, verbose=0)
    y_test = data.y_test
    fit = calibrate(val, y_val)
    t = fit.temperature
    val_t, test_t = apply_temperature(val, t), apply_temperature(test, t)
    noise = np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    ood = apply_temperature(model.predict(noise, verbose=0), t)
    sure = choose_min_confidence(val_t, y_val, min_accepted=50)
    on_test = evaluate_threshold(test_t, y_test, sure.min_confidence)
    curve = coverage_curve(test_t, y_test)
    points = np.unique(np.linspace(0, len(curve.coverage) - 1, 101).round().astype(int))
    loss = -np.log(np.clip(test_t[np.arange(len(y_test)), y_test], 1e-12, 1))
    worst = np.argsort(-loss)[:N_TOP]
    explainer = Explainer(model, data.class_names, source_size=32)
    overlays = explainer.explain_pixels(data.x_test[worst], classes=y_test[worst])
    top = []
    for i, shown in zip(worst, overlays, strict=True):
        rel = f"{TOP_LOSSES_DIR}/{i}.png"
        shown.save_overlay(run_dir / rel)
        top.append(
            {
                "file": str(int(i)),
                "index": int(i),
                "true": data.class_names[y_test[i]],
                "predicted": data.class_names[int(test_t[i].argmax())],
                "true_probability": float(test_t[i, y_test[i]]),
                "loss": float(loss[i]),
                "heatmap": rel,
            }
        )
    return {
        "calibration": {
            "temperature": t,
            "fitted_on": "validation",
            "n_fit": len(y_val),
            "validation": {"before": fit.before, "after": fit.after},
            "test": {
                "before": calibration_summary(test, y_test),
                "after": calibration_summary(test_t, y_test),
                "ece_noise_floor": ece_noise_floor(test_t),
            },
            "reliability": {
                "before": reliability_bins(test, y_test).as_dict(),
                "after": reliability_bins(test_t, y_test).as_dict(),
            },
        },
        "selective": {
            **sure.metadata(),
            "test": {
                "coverage": on_test.coverage,
                "accepted_accuracy": on_test.accepted_accuracy,
                "n_accepted": on_test.n_accepted,
                "n": on_test.n,
            },
            "curve": {
                "coverage": curve.coverage[points].tolist(),
                "accuracy": curve.accuracy[points].tolist(),
            },
            "ood": {
                "source": "uniform noise images",
                "n": len(ood),
                "auroc": ood_auroc(test_t, ood),
            },
        },
        "top_losses": top,
    }


@pytest.fixture(scope="module")
def trust_run(tmp_path_factory, trained_cnn):
    """A run whose metrics.json holds the schema's trust keys (no calibration PNGs yet)."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs"), trained_cnn)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.update(trust_metrics(run_dir, *trained_cnn))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    md = finalize_run(run_dir).read_text()
    return run_dir, md, metrics


def section(md: str, heading: str) -> str:
    """The text of one ``## `` section."""
    start = md.index(heading + "\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end >= 0 else len(md)]


def test_sections_come_in_reading_order(trust_run):
    _, md, _ = trust_run
    headings = re.findall(r"^## (.+)$", md, re.M)
    order = [
        "Objective",
        "Data set",
        "Architecture",
        "Preprocessing and training strategy",
        "Evaluation on the test set",
        "Calibration",
        'Confidence and "not sure"',
        "Top losses",
        "Comparison with the other runs",
        "Transfer learning: what the numbers say",
        "Deployment artefacts",
        "Files in this run",
    ]
    assert headings == order  # no data checks: CIFAR-10 runs have none


def test_calibration_section_quotes_metrics_json(trust_run):
    _, md, metrics = trust_run
    cal = metrics["calibration"]
    text = section(md, "## Calibration")
    assert f"T = {cal['temperature']:.4f}, fitted on the validation split (300 images)" in text
    for label, key in [("ECE (15 bins)", "ece"), ("NLL", "nll"), ("Brier score", "brier")]:
        row = re.search(rf"^\| {re.escape(label)} \| (.+) \|$", text, re.M)
        assert row, label
        cells = [float(c) for c in row.group(1).split(" | ")]
        expected = [cal[s][w][key] for s in ("test", "validation") for w in ("before", "after")]
        assert cells == pytest.approx(expected, abs=5e-5), label
    assert f"]({RELIABILITY_PLOT})" in text
    floor = cal["test"]["ece_noise_floor"]
    assert f"would measure an ECE of about {floor:.4f}" in text


def test_confidence_section_gives_threshold_coverage_and_auroc(trust_run):
    _, md, metrics = trust_run
    sel = metrics["selective"]
    text = section(md, '## Confidence and "not sure"')
    assert f"min_confidence = {sel['min_confidence']:.4f}" in text
    assert f"reach {sel['target_accuracy']:.2%} accuracy" in text
    val = table_value(text, "Validation (chosen here)")
    assert val == f"{sel['coverage']:.1%}"
    test = sel["test"]
    assert f"| Test | {test['coverage']:.1%} | {test['accepted_accuracy']:.2%} |" in text
    assert f"{test['n_accepted']} / {test['n']} |" in text
    assert f"200 images of uniform noise images with an AUROC of {sel['ood']['auroc']:.3f}" in text
    assert f"]({COVERAGE_PLOT})" in text


def test_top_losses_table_has_every_image_with_its_heatmap(trust_run):
    run_dir, md, metrics = trust_run
    text = section(md, "## Top losses")
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == N_TOP
    for row, entry in zip(rows, metrics["top_losses"], strict=True):
        assert f"]({entry['heatmap']})" in row
        assert f"| {entry['true']} | {entry['predicted']} |" in row
        assert f"| {entry['true_probability']:.3f} | {entry['loss']:.3f} |" in row
        assert (run_dir / entry["heatmap"]).stat().st_size > 100
    losses = [e["loss"] for e in metrics["top_losses"]]
    assert losses == sorted(losses, reverse=True)


def test_calibration_charts_are_drawn_from_the_numbers_when_missing(trust_run):
    from PIL import Image

    run_dir, md, _ = trust_run
    html = (run_dir / REPORT_HTML).read_text()
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', html)) == len(
        re.findall(r"!\[", md)
    )
    for rel in (RELIABILITY_PLOT, COVERAGE_PLOT):
        pixels = np.asarray(Image.open(run_dir / rel).convert("RGB"))
        assert min(pixels.shape[:2]) > 200 and pixels.std() > 10, rel


def test_the_runs_own_calibration_chart_is_kept(tmp_path, trust_run):
    """A PNG the run wrote (it may show more than the stored numbers) is used as it is."""
    import shutil

    from cifar.imageio import encode_png

    run_dir = tmp_path / trust_run[0].name
    shutil.copytree(trust_run[0], run_dir)
    own = encode_png(np.full((300, 400, 3), 90, dtype=np.uint8))
    (run_dir / RELIABILITY_PLOT).write_bytes(own)
    md = finalize_run(run_dir).read_text()
    assert (run_dir / RELIABILITY_PLOT).read_bytes() == own
    assert f"]({RELIABILITY_PLOT})" in md


def test_older_runs_have_none_of_the_new_sections(tmp_path, trained_cnn):
    run_dir = make_run_dir(tmp_path, trained_cnn)
    md = finalize_run(run_dir).read_text()
    assert not [s for s in NEW_SECTIONS if s in md]
    assert not (run_dir / RELIABILITY_PLOT).exists() and not (run_dir / COVERAGE_PLOT).exists()


def checks_run(tmp_path: Path, checks: dict, **data) -> str:
    """The data-checks section of a run folder holding only ``metrics.json``."""
    run = RunFiles(tmp_path, metrics={"data": {"dataset": "folder", **data, "data_checks": checks}})
    return data_checks.render(ReportContext(run, {}, []))


def test_data_checks_list_twenty_dropped_files_then_count_the_rest(tmp_path):
    dropped = [
        {"file": f"cats/{i:02d}.jpg", "reason": "exact duplicate of cats/x.jpg"} for i in range(25)
    ]
    text = checks_run(
        tmp_path,
        {
            "duplicates": "drop",
            "near_copies": "group",
            "identical_sets": 25,
            "identical_files": 50,
            "label_conflicts": 2,
            "near_copy_pairs": 9,
            "hash_matches": 40,
            "near_copy_groups": 7,
            "photos_in_groups": 16,
            "max_hash_distance": 12,
            "dropped": dropped,
            "overlap_count": 12,
            "overlaps": [f"train/cats/{i}.jpg ~ test/cats/{i}.jpg" for i in range(12)],
            "straddling_groups": 0,
            "no_group_straddles_train_and_test": True,
            "exclude_file": "flagged.txt",
            "excluded": 4,
            "exclude_unmatched": 1,
        },
        layout="train+test",
        ignored_files=7,
        ignored_examples=[".DS_Store", "notes.txt"],
    )
    assert "`cats/19.jpg`" in text and "`cats/20.jpg`" not in text
    assert "... and 5 more, all listed in metrics.json." in text
    assert "25 set(s) of identical files (50 files), 2 of them filed under two or more" in text
    assert "**Near-copy groups:** 7 group(s) holding 16 photos" in text
    assert "31 more hash match(es) were alike photos, not copies, and stay apart" in text
    assert (
        "12 training photo(s) are copies or near-copies of test or validation photos (left out)"
        in text
    )
    assert "- ... and 2 more" in text
    assert (
        "`flagged.txt` left out 4 photo(s) before decoding; 1 listed path(s) named no image" in text
    )
    assert "**Ignored non-image files:** 7 (`.DS_Store`, `notes.txt` and 5 more)" in text
    assert "no near-copy or duplicate group straddles train and test." in text


def test_data_checks_say_when_a_group_straddles(tmp_path):
    text = checks_run(
        tmp_path,
        {
            "duplicates": "drop",
            "near_copies": "report",
            "dropped": [],
            "overlap_count": 0,
            "straddling_groups": 3,
            "no_group_straddles_train_and_test": False,
        },
    )
    assert "3 near-copy group(s) straddle train and test**" in text
    assert "no near-copy or duplicate group straddles" not in text


def write_photo_folder(root: Path) -> None:
    """Two classes of generated photos, one copy filed twice in a class and one in both."""
    from cifar.imageio import encode_png

    rng = np.random.default_rng(1)
    for c, (name, colour) in enumerate((("tulips", (200, 40, 60)), ("zebras", (40, 60, 200)))):
        (root / name).mkdir(parents=True)
        for i in range(16):
            image = np.clip(rng.normal(colour, 60, (40, 40, 3)), 0, 255).astype(np.uint8)
            image[:, (i + c) % 40] = 255  # every photo differs in more than noise
            (root / name / f"{name}_{i:02d}.png").write_bytes(encode_png(image))
    (root / "tulips" / "copy.png").write_bytes((root / "tulips" / "tulips_00.png").read_bytes())
    (root / "tulips" / "conflict.png").write_bytes((root / "zebras" / "zebras_00.png").read_bytes())
    (root / "notes.txt").write_text("not a photo")


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory) -> Path:
    """A real tiny run (one epoch) on a generated photo folder with duplicates and junk."""
    from cifar.config import load_config
    from cifar.trainer import Trainer

    tmp = tmp_path_factory.mktemp("photo_run")
    write_photo_folder(tmp / "photos")
    config = load_config(
        {
            "name": "photos_tiny",
            "runs_dir": str(tmp / "runs"),
            "data": {"dataset": "folder", "data_dir": str(tmp / "photos"), "batch_size": 16},
            "model": {"name": "custom_cnn", "input_size": 32, "weights": "none"},
            "phases": [{"name": "warmup", "trainable": "all", "epochs": 1, "patience": 0}],
            "callbacks": {"progress": False},
        }
    )
    metrics = Trainer(config, verbose=0).fit()
    return Path(metrics["run_dir"])


def test_a_real_photo_run_reports_its_data_checks(photo_run):
    md = (photo_run / "REPORT.md").read_text()
    text = section(md, "## Data checks")
    checks = json.loads((photo_run / "metrics.json").read_text())["data"]["data_checks"]
    for d in checks["dropped"]:
        assert f"| `{d['file']}` | {d['reason']} |" in text
    dropped = {d["file"] for d in checks["dropped"]}
    assert {"tulips/conflict.png", "zebras/zebras_00.png"} <= dropped  # the label conflict
    assert len(dropped & {"tulips/copy.png", "tulips/tulips_00.png"}) == 1  # one copy kept
    assert f"{checks['near_copy_groups']} group(s)" in text
    assert "no near-copy or duplicate group straddles train and test" in text
    assert "**Ignored non-image files:** 1 (`notes.txt`)" in text
    assert "Given test/validation folders" not in text  # root/<class>/*: nothing given


def extract_pdf_text(path: Path) -> str:
    import pypdf

    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


@pytest.mark.slow
def test_cli_report_pdf_holds_the_test_accuracy_and_every_class(tmp_path, trust_run, capsys):
    from cifar.cli import main as cli_main

    require_playwright()
    require_chromium()
    import shutil

    run_dir = tmp_path / trust_run[0].name
    shutil.copytree(trust_run[0], run_dir)
    assert cli_main(["report", str(run_dir), "--pdf"]) == 0
    pdf = run_dir / REPORT_PDF
    assert f"pdf:    {pdf}" in capsys.readouterr().out
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = extract_pdf_text(pdf)
    md = (run_dir / "REPORT.md").read_text()
    accuracy = table_value(md, "Accuracy")  # as the report prints it
    assert re.search(rf"Accuracy\s+{re.escape(accuracy)}", text)
    for name in trust_run[2]["data"]["class_names"]:
        assert name in text, name
    assert "Top losses" in text and "Calibration" in text


def test_cli_report_pdf_without_chromium_is_one_line(trust_run):
    """CHROMIUM_PATH names a missing file: one ``error:`` line, exit 2, no traceback."""
    import os

    env = {**os.environ, "CHROMIUM_PATH": "/nonexistent/chromium", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "cifar.cli", "report", str(trust_run[0]), "--pdf"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --pdf needs Chromium: CHROMIUM_PATH=/nonexistent/chromium is not an executable file"
    )
    assert "Traceback" not in result.stderr
    assert not (trust_run[0] / REPORT_PDF).exists()
