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
