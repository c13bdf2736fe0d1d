"""The Flask prediction API: POST /predict, POST /predict/batch, GET /health, GET /labels.

Every error is a JSON body ``{"error": "...", "detail": "..."}`` with a 4xx status (5xx only for
a bug, still without a traceback), so bad input never crashes the server and the next request
is served as usual.

Run it in production with gunicorn (the model is loaded once per worker, at start-up)::

    CIFAR_MODEL=runs/<run>/export/model.tflite gunicorn --bind 127.0.0.1:8000 \\
        'cifar.serving.api:create_app()'

or ``cifar serve api --model PATH [--min-confidence P]``; ``$CIFAR_MIN_CONFIDENCE`` sets the
"not sure" threshold where there are no options (default: the model's recorded one, see
:mod:`cifar.inference.confidence`). ``app`` at module level is created on first access, so
``gunicorn cifar.serving.api:app`` works too and importing this module loads no model.

Example:
    >>> app = create_app(Predictor.load("model.tflite"))
    >>> app.test_client().post("/predict", data=png_bytes, content_type="image/png").json
    {"predictions": [...10 classes...], "top_k": [...3...], "not_sure": false,
     "min_confidence": 0.83, "model": {...}}
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException

from cifar.errors import CifarError
from cifar.imageio import ImageError
from cifar.inference.predictor import Predictor
from cifar.serving import DEFAULT_MAX_BATCH, DEFAULT_MAX_BYTES

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_BYTES", "ApiError", "create_app", "serve"]

RAW_TYPES = ("application/octet-stream",)
FIELD = "image"
BATCH_FIELDS = ("images", "image")
HOW_TO_SEND = (
    "send multipart/form-data with the file in field 'image' "
    "(curl -F image=@cat.jpg URL), or the raw image as the body with Content-Type image/* "
    "(curl -H 'Content-Type: image/jpeg' --data-binary @cat.jpg URL)"
)

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A client error with an HTTP status, a short ``error`` and a longer ``detail``."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def create_app(
    predictor: Predictor | None = None,
    model: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_confidence: float | None = None,
) -> Flask:
    """The Flask app serving ``predictor`` (default: ``Predictor.load(model)``).

    Args:
        predictor: a loaded :class:`~cifar.inference.predictor.Predictor`; loaded here when None.
        model: model path when ``predictor`` is None (default: ``$CIFAR_MODEL``, else the
            shipped model; with none this raises a ``ModelError`` saying how to train or
            export one, so the server refuses to start).
        max_batch: most images one ``/predict/batch`` request may carry.
        max_bytes: largest request body accepted (larger: 413).
        min_confidence: "not sure" threshold set by hand when ``predictor`` is None.
    """
    predictor = predictor or Predictor.load(model, min_confidence=min_confidence)
    logger.info("%s", predictor.threshold.describe())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = max_bytes
    app.json.sort_keys = False  # keep "predictions", "top_k", "model" in the documented order
    app.extensions["cifar_predictor"] = predictor
    info = predictor.info()
    model_summary = {
        key: info[key] for key in ("name", "kind", "input_size", "num_classes", "version")
    }
    # /health describes the model without the server's file-system paths.
    model_health = {
        **model_summary,
        "class_names": info["class_names"],
        "run": Path(info["run_dir"]).name if info["run_dir"] else None,
        "min_confidence": info["min_confidence"],
    }

    @app.get("/")
    def index() -> Response:
        return jsonify(
            service="cifar image classifier",
            routes={
                "POST /predict": "one image -> class probabilities and top-k",
                "POST /predict/batch": f"up to {max_batch} images (multipart field 'images')",
                "GET /health": "model loaded, version",
                "GET /labels": "class names in label order",
            },
            model=model_summary,
        )

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", model_loaded=True, model=model_health, version=_version())

    @app.get("/labels")
    def labels() -> Response:
        return jsonify(labels=list(predictor.class_names), num_classes=predictor.num_classes)

    @app.post("/predict")
    def predict() -> Response:
        k = _top_k_arg(predictor)
        data, name = _one_image()
        result = predictor.predict_one(data, name=name)
        return jsonify(**result.to_dict(k), model=model_summary)

    @app.post("/predict/batch")
    def predict_batch() -> Response:
        k = _top_k_arg(predictor)
        files = _batch_files(max_batch)
        names = [f.filename or f"image {i}" for i, f in enumerate(files)]
        images = [_read_file(f, name) for f, name in zip(files, names, strict=True)]
        results = predictor.predict(images, names=names)
        return jsonify(
            results=[
                {"filename": name, **result.to_dict(k)}
                for name, result in zip(names, results, strict=True)
            ],
            count=len(results),
            model=model_summary,
        )

    _register_error_handlers(app)
    return app


def _version() -> str:
    from cifar import __version__

    return __version__


def _top_k_arg(predictor: Predictor) -> int:
    raw = request.args.get("top_k")
    if raw is None:
        return predictor.top_k
    if not raw.isdigit() or not 1 <= int(raw) <= predictor.num_classes:
        raise ApiError(
            400, "invalid top_k", f"top_k must be an integer from 1 to {predictor.num_classes}"
        )
    return int(raw)


def _one_image() -> tuple[bytes, str | None]:
    """The image of a ``/predict`` request: multipart field ``image`` or the raw body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        files = request.files.getlist(FIELD)
        if not files:
            raise ApiError(400, "missing field", _missing_field_detail(FIELD))
        if len(files) > 1:
            raise ApiError(
                400, "too many images", "/predict takes one image; use /predict/batch for several"
            )
        return _read_file(files[0], files[0].filename or FIELD), files[0].filename or None
    if mimetype.startswith("image/") or mimetype in RAW_TYPES:
        data = request.get_data(cache=False)
        if not data:
            raise ApiError(400, "empty body", f"the request body is empty: {HOW_TO_SEND}")
        return data, None
    if not mimetype and not request.content_length:
        raise ApiError(400, "empty body", f"the request has no image: {HOW_TO_SEND}")
    raise ApiError(
        415, "unsupported content type", f"Content-Type {mimetype or '(none)'!r}: {HOW_TO_SEND}"
    )


def _batch_files(max_batch: int) -> list[FileStorage]:
    if request.mimetype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported content type",
            f"Content-Type {request.mimetype or '(none)'!r}: /predict/batch takes "
            "multipart/form-data with one or more files in field 'images' "
            "(curl -F images=@a.jpg -F images=@b.png URL)",
        )
    files = [f for field in BATCH_FIELDS for f in request.files.getlist(field)]
    if not files:
        raise ApiError(400, "missing field", _missing_field_detail("images"))
    if len(files) > max_batch:
        raise ApiError(
            400,
            "too many images",
            f"{len(files)} images in one request; the limit is {max_batch} per batch",
        )
    return files


def _read_file(file: FileStorage, name: str) -> bytes:
    data = file.read()
    if not data:
        raise ApiError(400, "empty image", f"{name}: the uploaded file is empty (0 bytes)")
    return data


def _missing_field_detail(field: str) -> str:
    got = sorted(set(request.files) | set(request.form))
    listed = ", ".join(repr(g) for g in got) if got else "none"
    return f"no file in multipart field {field!r} (fields received: {listed})"


def _error(status: int, error: str, detail: str) -> tuple[Response, int]:
    return jsonify(error=error, detail=detail), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return _error(exc.status, exc.error, exc.detail)

    @app.errorhandler(ImageError)
    def image_error(exc: ImageError):
        return _error(400, "invalid image", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = exc.get_response()  # keeps headers such as Allow on 405
        response.set_data(
            jsonify(error=(exc.name or "error").lower(), detail=exc.description).get_data()
        )
        response.content_type = "application/json"
        return response

    @app.errorhandler(CifarError)
    def cifar_error(exc: CifarError):
        logger.error("request failed: %s", exc)
        return _error(500, "prediction failed", str(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unexpected error while serving %s %s", request.method, request.path)
        return _error(500, "internal server error", f"{type(exc).__name__}; see the server log")


def serve(
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_bytes: int = DEFAULT_MAX_BYTES,
    server: str = "gunicorn",
    min_confidence: float | None = None,
) -> None:
    """Serve the API until interrupted: gunicorn (production) or Werkzeug (development).

    The model path is resolved here, so a missing model stops the command with one clear
    message before any worker starts; each gunicorn worker then loads it once.
    """
    from cifar.inference.confidence import find_min_confidence
    from cifar.inference.predictor import resolve_model_path

    path = str(resolve_model_path(model))
    # Said once here, not once per gunicorn worker.
    print(find_min_confidence(path, min_confidence).describe())
    options = {"max_batch": max_batch, "max_bytes": max_bytes, "min_confidence": min_confidence}
    if server == "werkzeug":
        create_app(model=path, **options).run(host=host, port=port, threaded=True)
        return
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "timeout": 120,  # the first request of a worker may wait for TensorFlow
                "accesslog": "-",
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return create_app(model=path, **options)

    _Gunicorn().run()


def __getattr__(name: str) -> Any:
    """``app``: the app for ``gunicorn cifar.serving.api:app``, created on first access."""
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
