"""A static classifier page that runs a ``.tflite`` file in the browser (MediaPipe Tasks, WASM).

:func:`write_web_app` writes a folder any static web server can serve: ``index.html`` and
``app.js`` (from ``exports/web_page/``), the model with its metadata, ``app-config.json``, and
MediaPipe's JavaScript bundle and WASM files taken from the pinned npm package
``@mediapipe/tasks-vision`` at export time (kept in a cache folder outside the repository,
fetched with ``npm pack``). Nothing is loaded from a CDN: the page works offline once served.
It needs an HTTP origin (browsers do not load WASM or ES modules from ``file://``):
``cifar serve web DIR``.

The page answers "not sure" below the model's ``min_confidence``, embedded in
``app-config.json`` when the folder is written (found by
:func:`cifar.inference.confidence.find_min_confidence`: the export's ``metadata.json``, else the
run's ``metrics.json``; ``null`` when there is none).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from cifar.errors import ConfigError, ModelError
from cifar.inference.confidence import find_min_confidence
from exports.tflite_metadata import embedded_labels

PACKAGE = "@mediapipe/tasks-vision"
# Pinned: the npm list also has a stray, deprecated 20230920.0.0 that "latest" must never mean.
VERSION = "1.1.0"
CACHE_ENV = "CIFAR_WEB_CACHE"
PAGE_DIR = Path(__file__).with_name("web_page")
# The bundle plus the two WASM builds FilesetResolver chooses from (SIMD or not).
RUNTIME_FILES = [
    "vision_bundle.mjs",
    "wasm/vision_wasm_internal.js",
    "wasm/vision_wasm_internal.wasm",
    "wasm/vision_wasm_nosimd_internal.js",
    "wasm/vision_wasm_nosimd_internal.wasm",
]
MODEL_NAME = "model.tflite"


def default_cache_dir() -> Path:
    """``$CIFAR_WEB_CACHE``, else ``~/.cache/cifar-transfer/npm`` (never inside the repo)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "cifar-transfer" / "npm"


def fetch_tasks_vision(cache_dir: str | os.PathLike | None = None, timeout: float = 300) -> Path:
    """The unpacked ``@mediapipe/tasks-vision@1.1.0`` package folder, fetched with npm once.

    Raises:
        ConfigError: npm is missing, or ``npm pack`` failed (offline, registry unreachable).
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    package = cache / f"tasks-vision-{VERSION}" / "package"
    if _complete(package):
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(
            f"npm is not installed: the web page needs {PACKAGE}@{VERSION} from the npm "
            "registry (install Node.js with npm, or set $CIFAR_WEB_CACHE to a folder that "
            f"holds tasks-vision-{VERSION}/package)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    # One fetch at a time per cache (parallel test workers, two exports at once): the second
    # waits, then finds the package complete.
    with open(cache / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(package):
            return package
        return _fetch(npm, cache, package, timeout)


def _fetch(npm: str, cache: Path, package: Path, timeout: float) -> Path:
    """``npm pack`` into a temporary folder of ``cache``, checked, then moved to ``package``."""
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"npm pack {PACKAGE}@{VERSION} did not finish in {timeout:.0f} s (offline?)"
            ) from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise ConfigError(f"npm pack {PACKAGE}@{VERSION} failed (offline?): {reason}")
        unpacked = Path(tmp) / "unpacked"
        _extract(tarballs[0], unpacked)
        if not _complete(unpacked / "package"):
            raise ConfigError(f"{PACKAGE}@{VERSION} from npm lacks the expected files")
        package.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(package, ignore_errors=True)
        os.replace(unpacked / "package", package)
    return package


def _extract(tarball: Path, into: Path) -> None:
    """Unpack an npm tarball, refusing links and paths that leave ``into``."""
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 checks this itself
            archive.extractall(into, filter="data")
            return
        for member in archive.getmembers():
            target = (into / member.name).resolve()
            if member.issym() or member.islnk() or not target.is_relative_to(into.resolve()):
                raise ConfigError(f"{tarball.name}: unsafe entry {member.name!r}")
        archive.extractall(into)


def _complete(package: Path) -> bool:
    """The package folder holds version 1.1.0 and every file the page needs."""
    try:
        version = json.loads((package / "package.json").read_text()).get("version")
    except (OSError, json.JSONDecodeError):
        return False
    return version == VERSION and all((package / name).is_file() for name in RUNTIME_FILES)


def write_web_app(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    title: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    min_confidence: float | None = None,
) -> Path:
    """Write the classifier page for ``model_path`` (a ``.tflite`` file with metadata) to
    ``out_dir``; returns ``out_dir/index.html``.

    ``min_confidence``: the "not sure" threshold set by hand (default: the model's own).

    Raises:
        ModelError: the file is missing or has no metadata (MediaPipe would refuse it).
        ConfigError: the MediaPipe package cannot be fetched.
    """
    model = Path(model_path)
    if model.suffix != ".tflite":
        raise ModelError(f"{model} is not a .tflite file")
    if not model.is_file():
        raise ModelError(f"TFLite model {model} does not exist")
    labels = embedded_labels(model)
    if labels is None:
        raise ModelError(
            f"{model} has no metadata with class labels, so MediaPipe cannot run it; re-export "
            "it with `cifar export RUN_DIR` (metadata is added by default)"
        )
    threshold = find_min_confidence(model, min_confidence)
    package = fetch_tasks_vision(cache_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / name, out / name)
    for page_file in ("index.html", "app.js"):
        shutil.copyfile(PAGE_DIR / page_file, out / page_file)
    shutil.copyfile(model, out / MODEL_NAME)
    config = {
        "title": title or f"Image classifier ({len(labels)} classes)",
        "model": MODEL_NAME,
        "source_file": model.name,
        "classes": labels,
        "runtime": f"{PACKAGE}@{VERSION}",
        # The rule of cifar.calibration.is_not_sure, applied by app.js: top-1 score below this.
        "min_confidence": threshold.min_confidence,
        "min_confidence_source": Path(threshold.source).name
        if threshold.min_confidence is not None
        else None,
    }
    (out / "app-config.json").write_text(json.dumps(config, indent=1) + "\n")
    return out / "index.html"
