"""The Flask API: every route and bad input through the test client, then a real gunicorn."""

from __future__ import annotations

import http.client
import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from cifar.imageio import encode_png
from cifar.inference.predictor import MODEL_ENV, Predictor
from cifar.serving.api import create_app


@pytest.fixture(scope="module")
def tflite_path(cnn_run):
    """The trained CNN exported to TFLite in a run folder (labels beside it)."""
    return cnn_run / "export" / "model_float32.tflite"


@pytest.fixture(scope="module")
def predictor(tflite_path):
    return Predictor.load(tflite_path)


@pytest.fixture(scope="module")
def client(predictor):
    return create_app(predictor, max_batch=4, max_bytes=64 * 1024).test_client()


@pytest.fixture(scope="module")
def pngs(trained_cnn, tmp_path_factory):
    """Three CIFAR-10 test images as PNG files."""
    _, data = trained_cnn
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(3):
        path = folder / f"test{i}.png"
        path.write_bytes(encode_png(data.x_test[i]))
        paths.append(path)
    return paths


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))


def _as_pairs(items: list[dict]) -> list[tuple[str, float]]:
    return [(d["label"], d["probability"]) for d in items]


def test_info_routes(client, predictor):
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["status"] == "ok" and health.json["model_loaded"] is True
    assert health.json["model"]["kind"] == "tflite" and health.json["version"]
    assert client.get("/labels").json == {
        "labels": list(predictor.class_names),
        "num_classes": 10,
    }
    assert "POST /predict" in client.get("/").json["routes"]


def test_predict_equals_the_predictor(client, predictor, pngs):
    expected = predictor.predict_one(pngs[0].read_bytes()).to_dict(3)
    raw = client.post("/predict", data=pngs[0].read_bytes(), content_type="image/png")
    with pngs[0].open("rb") as fh:
        form = client.post("/predict", data={"image": (fh, "test0.png")})
    for response in (raw, form):
        assert response.status_code == 200, response.json
        body = response.json
        assert list(body) == ["predictions", "top_k", "not_sure", "min_confidence", "model"]
        assert len(body["predictions"]) == 10
        assert _as_pairs(body["predictions"]) == _as_pairs(expected["predictions"])
        assert _as_pairs(body["top_k"]) == _as_pairs(expected["top_k"])
        assert body["model"]["name"] == "model_float32.tflite"
    five = client.post("/predict?top_k=5", data=pngs[0].read_bytes(), content_type="image/png")
    assert len(five.json["top_k"]) == 5


def test_batch(client, predictor, pngs):
    files = [(p.open("rb"), p.name) for p in pngs]
    try:
        response = client.post("/predict/batch", data={"images": files})
    finally:
        for fh, _ in files:
            fh.close()
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["filename"] for r in results] == [p.name for p in pngs]
    assert response.json["count"] == 3
    for path, result in zip(pngs, results, strict=True):
        single = predictor.predict_one(path.read_bytes())
        got = np.array([d["probability"] for d in result["predictions"]])
        np.testing.assert_allclose(got, single.probabilities, atol=1e-5)
        assert result["top_k"][0]["label"] == single.label


_NOISE = encode_png(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _raw(data: bytes, content_type: str = "image/png"):
    return lambda: {"data": data, "content_type": content_type}


def _form(field: str, *payloads: bytes):
    """Multipart kwargs, built fresh per call (file objects are consumed by a request)."""
    return lambda: {"data": {field: [(io.BytesIO(p), f"{i}.png") for i, p in enumerate(payloads)]}}


# case -> (method, url, request kwargs factory, expected status); the client allows 64 KiB
# bodies and 4 images per batch.
BAD_REQUESTS = {
    "empty body": ("post", "/predict", _raw(b""), 400),
    "no body at all": ("post", "/predict", dict, 400),
    "missing field": ("post", "/predict", _form("file", b"abc"), 400),
    "empty upload": ("post", "/predict", _form("image", b""), 400),
    "two images to /predict": ("post", "/predict", _form("image", _NOISE, _NOISE), 400),
    "not an image": ("post", "/predict", _raw(b"hello"), 400),
    "truncated": ("post", "/predict", _raw(_NOISE[: len(_NOISE) // 2]), 400),
    "zero pixels": ("post", "/predict", _form("image", _png_header(0, 0)), 400),
    "bomb 50000x50000": ("post", "/predict", _raw(_png_header(50_000, 50_000)), 400),
    "body over the limit": ("post", "/predict", _raw(b"\0" * 70_000), 413),
    "upload over the limit": ("post", "/predict", _form("image", b"\0" * 70_000), 413),
    "wrong content type": ("post", "/predict", _raw(b'{"a": 1}', "application/json"), 415),
    "form without a file": (
        "post",
        "/predict",
        _raw(b"a=1", "application/x-www-form-urlencoded"),
        415,
    ),
    "wrong method": ("get", "/predict", dict, 405),
    "unknown route": ("get", "/nope", dict, 404),
    "bad top_k": ("post", "/predict?top_k=0", _raw(_NOISE), 400),
    "batch raw body": ("post", "/predict/batch", _raw(_NOISE), 415),
    "batch wrong field": ("post", "/predict/batch", _form("files", _NOISE), 400),
    "batch too many": ("post", "/predict/batch", _form("images", *[_NOISE] * 5), 400),
    "batch one bad image": ("post", "/predict/batch", _form("images", _NOISE, b"nope"), 400),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_json_4xx_and_the_next_request_works(client, pngs, case):
    method, url, make_kwargs, status = BAD_REQUESTS[case]
    response = getattr(client, method)(url, **make_kwargs())
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert set(body) == {"error", "detail"} and body["error"] and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    ok = client.post("/predict", data=pngs[0].read_bytes(), content_type="image/png")
    assert ok.status_code == 200 and len(ok.json["predictions"]) == 10


def test_not_sure_field(tflite_path, predictor, pngs, monkeypatch):
    from cifar.inference.confidence import MIN_CONFIDENCE_ENV
    from cifar.serving import api

    body = pngs[0].read_bytes()
    confidence = predictor.predict_one(body).confidence
    above = min(1.0, round(confidence + 0.01, 2))
    client = create_app(Predictor.load(tflite_path, min_confidence=above)).test_client()
    result = client.post("/predict", data=body, content_type="image/png").json
    assert result["not_sure"] is True and result["min_confidence"] == above
    assert len(result["top_k"]) == 3  # the top 3 still answered
    assert client.get("/health").json["model"]["min_confidence"] == above
    with pngs[0].open("rb") as fh:
        batch = client.post("/predict/batch", data={"images": [(fh, "a.png")]}).json
    assert batch["results"][0]["not_sure"] is True

    below = max(0.0, round(confidence - 0.01, 2))
    client = create_app(Predictor.load(tflite_path, min_confidence=below)).test_client()
    result = client.post("/predict", data=body, content_type="image/png").json
    assert result["not_sure"] is False and result["min_confidence"] == below

    # The gunicorn / Procfile app takes no options: $CIFAR_MIN_CONFIDENCE sets it.
    monkeypatch.setenv(MODEL_ENV, str(tflite_path))
    monkeypatch.setenv(MIN_CONFIDENCE_ENV, str(above))
    monkeypatch.delitem(api.__dict__, "app", raising=False)
    try:
        result = api.app.test_client().post("/predict", data=body, content_type="image/png").json
        assert result["not_sure"] is True and result["min_confidence"] == above
    finally:
        api.__dict__.pop("app", None)


def test_default_app_serves_the_shipped_model(monkeypatch, tmp_path):
    from cifar.inference.predictor import MODELS_DIR_ENV

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "smoke-20990101-000000").mkdir(parents=True)
    (tmp_path / "runs" / "smoke-20990101-000000" / "best_model.keras").write_bytes(b"x")
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    health = create_app().test_client().get("/health").json
    assert health["model"]["name"] == "model_float16.tflite" and health["model"]["run"] is None


def test_module_app_is_created_lazily(tflite_path, monkeypatch, tmp_path):
    from cifar.errors import ModelError
    from cifar.serving import api

    monkeypatch.chdir(tmp_path)  # no runs/ or models/ here
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("CIFAR_MODELS_DIR", str(tmp_path / "no-shipped-models"))
    monkeypatch.delitem(api.__dict__, "app", raising=False)  # created and cached on access
    with pytest.raises(ModelError, match="cifar train smoke"):
        _ = api.app
    monkeypatch.setenv(MODEL_ENV, str(tflite_path))
    assert api.app.test_client().get("/health").json["model"]["name"] == tflite_path.name
    api.__dict__.pop("app")  # do not keep a loaded app cached for later tests


def test_cli_refuses_to_serve_without_a_model(monkeypatch, tmp_path, capsys):
    from cifar.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("CIFAR_MODELS_DIR", str(tmp_path / "no-shipped-models"))
    assert main(["serve", "api", "--port", "1"]) == 2
    assert "cifar train smoke" in capsys.readouterr().err


@pytest.mark.slow
def test_real_gunicorn_server(tflite_path, predictor, pngs, tmp_path):
    from benchmarks.bench_serving import GunicornServer

    with GunicornServer(tflite_path, workers=1, threads=2, timeout=90) as server:

        def post(path: str, body: bytes, ctype: str) -> tuple[int, dict]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": ctype})
                response = conn.getresponse()
                return response.status, json.loads(response.read())
            finally:
                conn.close()

        status, body = post("/predict", pngs[1].read_bytes(), "image/png")
        assert status == 200
        expected = predictor.predict_one(pngs[1].read_bytes()).to_dict(3)
        assert _as_pairs(body["predictions"]) == _as_pairs(expected["predictions"])
        status, body = post("/predict", b"GIF89a broken", "image/gif")
        assert status == 400 and body["error"] == "invalid image"
        status, body = post("/predict", pngs[2].read_bytes(), "application/octet-stream")
        assert status == 200 and len(body["top_k"]) == 3

    # With no model anywhere the server refuses to start, saying how to get one.
    env = {k: v for k, v in os.environ.items() if k != MODEL_ENV}
    env["CIFAR_MODELS_DIR"] = str(tmp_path / "no-shipped-models")  # ignore the repo's models/
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "cifar.serving.api:app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "no model to serve" in result.stderr and "cifar train smoke" in result.stderr
