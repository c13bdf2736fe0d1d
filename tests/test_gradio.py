"""The Gradio app for real: a server in a subprocess, called by gradio_client and by Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    CIFAR_DIR,
    HAVE_CIFAR,
    ROOT,
    require_chromium,
    require_playwright,
    requires_cifar,
)

from cifar.imageio import encode_png
from cifar.inference.predictor import MODEL_ENV, Predictor

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def served_run(cnn_run, trained_cnn):
    """The CNN run folder with its TFLite export and a test-set evaluation."""
    from cifar.evaluation import evaluate_and_save

    model, data = trained_cnn
    predictor = Predictor.load(cnn_run / "export" / "model_float32.tflite")
    evaluate_and_save(cnn_run, model, data.x_test, data.y_test, data.class_names, 32)
    return cnn_run, predictor


@pytest.fixture(scope="module")
def image_file(trained_cnn, tmp_path_factory):
    _, data = trained_cnn
    path = tmp_path_factory.mktemp("images") / "test0.png"
    path.write_bytes(encode_png(data.x_test[0]))
    return path


@pytest.fixture(scope="module")
def gradio_url(served_run, tmp_path_factory):
    """``python gradio_app.py`` on a free loopback port; stopped after the module's tests."""
    from benchmarks.bench_serving import free_port, request

    run, predictor = served_run
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if HAVE_CIFAR:
        env["CIFAR10_DIR"] = str(CIFAR_DIR)
    log = tmp_path_factory.mktemp("gradio") / "server.log"
    cmd = [sys.executable, str(ROOT / "gradio_app.py"), "--model", str(predictor.path)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while request(port, "GET", "/")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Gradio app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_classify_through_gradio_client(gradio_url, served_run, image_file):
    from gradio_client import Client, handle_file

    _, predictor = served_run
    client = Client(gradio_url, verbose=False)
    result = client.predict(handle_file(str(image_file)), api_name="/classify")
    confidences = result["confidences"]
    assert len(confidences) == 3
    values = [c["confidence"] for c in confidences]
    assert values == sorted(values, reverse=True) and sum(values) <= 1.0 + 1e-6
    expected = predictor.predict_one(image_file).top_k(3)
    assert [c["label"] for c in confidences] == [label for label, _ in expected]
    np.testing.assert_allclose(values, [p for _, p in expected], atol=1e-6)
    assert result["label"] == expected[0][0]

    table = client.predict(
        [handle_file(str(image_file)), handle_file(str(image_file))], api_name="/batch"
    )
    assert table["headers"][:3] == ["file", "top-1", "p1"]
    assert [row[1] for row in table["data"]] == [expected[0][0]] * 2


@pytest.mark.slow
def test_browser_upload_shows_three_classes(gradio_url, served_run, image_file, tmp_path):
    sync_api = require_playwright()
    chromium = require_chromium()
    _, predictor = served_run
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = browser.new_page()
            page.goto(gradio_url, wait_until="domcontentloaded", timeout=60_000)
            upload = page.locator("#image-input input[type=file]")
            upload.wait_for(state="attached", timeout=60_000)
            upload.set_input_files(str(image_file))
            rows = page.locator("#top3 [data-testid$='-confidence-set']")
            page.wait_for_function(
                "document.querySelectorAll(\"#top3 [data-testid$='-confidence-set']\").length"
                " === 3",
                timeout=60_000,
            )
            names = [rows.nth(i).locator("dt").inner_text().strip() for i in range(3)]
            heading = page.locator("#top3 [data-testid='label-output-value']").inner_text()
            page.screenshot(path=str(ARTIFACTS / "gradio_classify.png"), full_page=True)
        finally:
            browser.close()
    expected = [label for label, _ in predictor.predict_one(image_file).top_k(3)]
    assert names == expected
    assert heading.strip() == expected[0]


def test_model_tab_shows_metrics_and_confusion_matrix(served_run):
    import gradio as gr

    from cifar.serving.demo import build_demo, model_summary_markdown

    run, predictor = served_run
    text = model_summary_markdown(predictor)
    accuracy = json.loads((run / "evaluation.json").read_text())["headline"]["accuracy"]
    assert f"| accuracy | {accuracy:.4f} |" in text
    assert "the run's best_model.keras" in text and "model_float32.tflite" in text
    demo = build_demo(predictor)
    plots = [b for b in demo.blocks.values() if isinstance(b, gr.Plot)]
    assert len(plots) == 1 and plots[0].value is not None


@requires_cifar
def test_examples_are_written_from_the_cifar10_test_set(tmp_path):
    from cifar.data import load_cifar10
    from cifar.imageio import load_image
    from cifar.serving.examples import write_examples

    paths = write_examples(tmp_path, data_dir=CIFAR_DIR)
    data = load_cifar10(CIFAR_DIR)
    assert [p.name for p in paths] == [f"{i:02d}_{n}.png" for i, n in enumerate(data.class_names)]
    for label, path in enumerate(paths):
        first = int(np.flatnonzero(data.y_test == label)[0])
        assert np.array_equal(load_image(path), data.x_test[first])


def test_no_model_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != MODEL_ENV}
    env["CIFAR_MODELS_DIR"] = str(tmp_path / "no-shipped-models")  # ignore the repo's models/
    result = subprocess.run(
        [sys.executable, str(ROOT / "gradio_app.py"), "--port", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no model to serve" in result.stderr and "cifar export RUN_DIR" in result.stderr
