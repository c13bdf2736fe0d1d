"""The in-browser classifier page: written by the exporter, served locally, run in Chromium."""

from __future__ import annotations

import json
import threading
import urllib.request

import numpy as np
import pytest
from conftest import ROOT, require_chromium, require_playwright, requires_cifar, skip_unless_ci

from benchmarks.bench_web import classify_in_browser, leaves_localhost, write_pngs
from cifar import cli
from cifar.errors import ConfigError, ModelError
from cifar.inference.tflite_runner import TFLiteClassifier
from exports import web

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def page(cnn_run, tmp_path_factory):
    """The page for the CNN's float32 export (npm fetches the MediaPipe package once)."""
    out = tmp_path_factory.mktemp("page")
    try:
        web.write_web_app(cnn_run / "export" / "model_float32.tflite", out)
    except ConfigError as exc:  # no npm, or no registry: the page cannot be built here
        skip_unless_ci(f"cannot fetch {web.PACKAGE}@{web.VERSION}: {exc}")
    return out


def test_page_folder_has_the_model_and_the_pinned_runtime(page, trained_cnn):
    _, data = trained_cnn
    config = json.loads((page / "app-config.json").read_text())
    assert config["classes"] == data.class_names and config["model"] == "model.tflite"
    assert config["runtime"] == "@mediapipe/tasks-vision@1.1.0"
    for name in [*web.RUNTIME_FILES, "index.html", "app.js", "model.tflite"]:
        assert (page / name).is_file(), name
    app = (page / "app.js").read_text()
    assert 'forVisionTasks("./wasm")' in app and "http" not in app  # no CDN


def test_server_sends_wasm_as_wasm_and_refuses_other_folders(page, tmp_path):
    from cifar.serving.web import make_server

    server = make_server(page, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{base}/wasm/vision_wasm_internal.wasm") as response:
            assert response.headers["Content-Type"] == "application/wasm"
        with urllib.request.urlopen(f"{base}/vision_bundle.mjs") as response:
            assert response.headers["Content-Type"] == "text/javascript"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ConfigError, match="not a classifier page"):
        make_server(tmp_path)


@pytest.mark.slow
def test_browser_classifies_like_litert_without_leaving_localhost(page, trained_cnn, tmp_path):
    require_playwright()
    chromium = require_chromium()
    _, data = trained_cnn
    images = data.x_test[:5]
    files = write_pngs(images, tmp_path / "images")
    shot = ARTIFACTS / "web_classify.png"
    methods = ("file", "paste", "drop")
    results, urls = classify_in_browser(page, files, chromium, screenshot=shot, methods=methods)
    probs = TFLiteClassifier(page / "model.tflite").predict(images)
    names = [f.name if i % 3 != 1 else "pasted image" for i, f in enumerate(files)]
    assert [r["name"] for r in results] == names  # picked, pasted, dropped, picked, pasted
    for row, result in zip(probs, results, strict=True):
        top = result["categories"]
        assert len(top) == 3
        assert data.class_names.index(top[0]["categoryName"]) == int(row.argmax())
        expected = np.sort(row)[::-1][:3]
        np.testing.assert_allclose([c["score"] for c in top], expected, atol=1e-4)
        assert result["ms"] > 0
    assert leaves_localhost(urls) == []
    assert any(url.endswith("/wasm/vision_wasm_internal.wasm") for url in urls)
    assert shot.stat().st_size > 0


def test_leaves_localhost_spots_outside_requests():
    local = ["http://127.0.0.1:8000/app.js", "blob:http://127.0.0.1:8000/1f2e", "data:,x"]
    assert leaves_localhost(local) == []
    outside = ["https://cdn.jsdelivr.net/npm/@mediapipe/tasks-vision/wasm/x.wasm"]
    assert leaves_localhost(local + outside) == outside


def test_file_without_metadata_is_refused(tmp_path):
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(b"TFL3" * 16)
    with pytest.raises(ModelError, match="no metadata"):
        web.write_web_app(plain, tmp_path / "page")


def test_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(web.shutil, "which", lambda _name: None)
    with pytest.raises(ConfigError, match="npm is not installed"):
        web.fetch_tasks_vision(tmp_path / "empty-cache")


def test_cli_web_errors_are_one_line(tmp_path, capsys):
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(b"TFL3")
    assert cli.main(["export", str(plain)]) == 2
    assert "add --web DIR" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path), "--formats", "onnx", "--web", "x"]) == 2
    assert "--web needs a TFLite format" in capsys.readouterr().err
    assert cli.main(["serve", "web", str(tmp_path)]) == 2
    assert "not a classifier page" in capsys.readouterr().err


@requires_cifar
def test_cli_exports_a_run_and_writes_its_page(page, trained_cnn, tmp_path, capsys):
    from test_exports import make_run_dir

    model, data = trained_cnn
    run = make_run_dir(tmp_path, model, data)
    web_dir = tmp_path / "web"
    args = ["export", str(run), "--formats", "tflite,tflite-int8", "--web", str(web_dir)]
    assert cli.main([*args, "--verify-n", "50", "--representative-n", "50"]) == 0
    assert f"cifar serve web {web_dir}" in capsys.readouterr().out
    config = json.loads((web_dir / "app-config.json").read_text())
    assert config["source_file"] == "model_float32.tflite"  # no float16 exported: the first
    exported = run / "export" / "model_float32.tflite"
    assert (web_dir / "model.tflite").read_bytes() == exported.read_bytes()


def test_tarball_escaping_its_folder_is_refused(tmp_path, monkeypatch):
    import io
    import tarfile

    tarball = tmp_path / "evil.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    monkeypatch.delattr(tarfile, "data_filter", raising=False)  # the Python < 3.11.4 path
    with pytest.raises(ConfigError, match="unsafe entry"):
        web._extract(tarball, tmp_path / "into")
    assert not (tmp_path / "outside.txt").exists()


def test_server_is_quiet_when_a_browser_cancels_a_download(tmp_path, capsys):
    """A client that hangs up mid-file is normal; other errors still print their traceback."""
    from cifar.serving.web import make_server

    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "app-config.json").write_text("{}")
    server = make_server(tmp_path, "127.0.0.1", 0)
    try:
        for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise error
            except ConnectionError:
                server.handle_error(None, ("127.0.0.1", 50000))
        assert capsys.readouterr().err == ""
        try:
            raise ValueError("a real bug")
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 50000))
        assert "ValueError: a real bug" in capsys.readouterr().err
    finally:
        server.server_close()


@pytest.mark.slow
def test_page_says_not_sure_below_the_exported_threshold(cnn_run, trained_cnn, tmp_path):
    """The threshold recorded in the export's metadata.json reaches the page's config, and
    Chromium answers "Not sure" below it (still listing the top 3) and the class above it."""
    import shutil

    from playwright.sync_api import sync_playwright

    from cifar.serving.web import make_server

    require_playwright()
    chromium = require_chromium()
    _, data = trained_cnn
    export = tmp_path / "export"
    shutil.copytree(cnn_run / "export", export)
    images = data.x_test[:40]
    probs = TFLiteClassifier(export / "model_float32.tflite").predict(images)
    order = np.argsort(probs.max(axis=1))
    low, high = int(order[0]), int(order[-1])
    threshold = round(float(probs[low].max() + probs[high].max()) / 2, 4)
    metadata = json.loads((export / "metadata.json").read_text())
    metadata["selective"] = {"min_confidence": threshold, "chosen_by": "validation"}
    (export / "metadata.json").write_text(json.dumps(metadata))
    out = tmp_path / "page"
    try:
        web.write_web_app(export / "model_float32.tflite", out)
    except ConfigError as exc:
        skip_unless_ci(f"cannot fetch {web.PACKAGE}@{web.VERSION}: {exc}")
    config = json.loads((out / "app-config.json").read_text())
    assert config["min_confidence"] == threshold
    assert config["min_confidence_source"] == "metadata.json"
    files = write_pngs(images[[low, high]], tmp_path / "images")

    server = make_server(out, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shown = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/", timeout=180_000)
                page.wait_for_function("document.body.dataset.state === 'ready'", timeout=180_000)
                intro = page.locator("#threshold").inner_text()
                for i, file in enumerate(files, start=1):
                    page.set_input_files("#file", str(file))
                    page.wait_for_function(f"document.body.dataset.count === '{i}'")
                    items = page.locator("#results li").all_inner_texts()
                    shown.append((page.locator("#verdict").inner_text(), items))
                records = page.evaluate("window.classifications")
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert intro == f'Answers "not sure" below a top-1 probability of {threshold:.2f}.'
    names = data.class_names
    best_low = names[int(probs[low].argmax())]
    best_high = names[int(probs[high].argmax())]
    (low_text, low_items), (high_text, high_items) = shown
    score = records[0]["categories"][0]["score"]
    assert low_text == f"Not sure (best guess: {best_low} {score:.2f}, below {threshold:.2f})"
    assert len(low_items) == 3 and low_items[0].startswith(best_low)
    assert high_text.startswith(f"{best_high} ") and "Not sure" not in high_text
    assert len(high_items) == 3
    assert [r["notSure"] for r in records] == [True, False]
