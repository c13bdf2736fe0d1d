# The prediction API in production: gunicorn serving cifar.serving.api on $PORT (default 8000).
#   docker build -t cifar-api .
#   docker run -p 8000:8000 -v "$PWD/runs/<run>/export:/model" \
#       -e CIFAR_MODEL=/model/model_float32.tflite cifar-api
# Without CIFAR_MODEL the server uses models/*.tflite shipped in the image, if any, and refuses
# to start (saying how to train or export one) when there is no model at all.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8000

WORKDIR /app

# Dependencies first (the pinned lock), so code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 app \
    && chown -R app /app
USER app

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=4)"
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-1} --timeout 120 'cifar.serving.api:create_app()'"]
