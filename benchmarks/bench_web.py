"""Classify images through the in-browser page in headless Chromium; time it per image.

Usage::

    python benchmarks/bench_web.py MODEL.tflite [MODEL.tflite...] [--n 50] [--data-dir DIR]
        [--write]

For each model: writes the page (``exports.web.write_web_app``) into a temporary folder, serves
it on localhost, opens it in headless Chromium (Playwright), picks ``--n`` CIFAR-10 test images
(saved as 32x32 PNG files) one by one through the page's file input, and prints the median and
90th-percentile time of ``ImageClassifier.classify`` measured by the page (WASM on the CPU; the
first image, which pays for warm-up, is reported apart) and the page's top-1 agreement with
the LiteRT interpreter on the same images. ``tests/test_web.py`` drives the same functions.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

# --enable-unsafe-swiftshader: headless Chromium has no GPU, and MediaPipe's image path needs
# WebGL (software-rendered by SwiftShader) even when the model runs on the CPU.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """Debian's chromium (what ``.ci/install-chromium`` installs), or None."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    return path if os.access(path, os.X_OK) else None


def write_pngs(images: np.ndarray, folder: Path) -> list[Path]:
    """uint8 N x H x W x 3 -> PNG files ``img_000.png``... in ``folder``."""
    from cifar.imageio import encode_png

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"img_{i:03d}.png"
        path.write_bytes(encode_png(image))
        paths.append(path)
    return paths


# How an image reaches the page: a dropped or pasted File, built in the page from the bytes.
_HAND_OVER = """([kind, name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  if (kind === "paste") {
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
  } else {
    document.getElementById("drop").dispatchEvent(
      new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}"""


def classify_in_browser(
    page_dir: Path,
    images: list[Path],
    chromium: str,
    screenshot: Path | None = None,
    timeout_ms: int = 180_000,
    methods: tuple[str, ...] = ("file",),
) -> tuple[list[dict], list[str]]:
    """Serve ``page_dir``, classify ``images`` in headless Chromium, one at a time.

    Args:
        methods: how image ``i`` is handed over, ``methods[i % len(methods)]``: ``file`` (the
            page's file input), ``paste`` (a clipboard paste) or ``drop`` (dropped on the page).

    Returns:
        the page's ``window.classifications`` (name, top-3 categories, ms) and every URL the
        page requested.
    """
    from playwright.sync_api import sync_playwright

    from cifar.serving.web import make_server

    server = make_server(page_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    requested: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
            )
            try:
                page = browser.new_page(viewport={"width": 900, "height": 900})
                page.on("request", lambda request: requested.append(request.url))
                page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
                page.wait_for_function(
                    "['ready', 'error'].includes(document.body.dataset.state)", timeout=timeout_ms
                )
                if page.evaluate("document.body.dataset.state") == "error":
                    raise RuntimeError(page.locator("#status").inner_text())
                for i, image in enumerate(images, start=1):
                    method = methods[(i - 1) % len(methods)]
                    if method == "file":
                        page.set_input_files("#file", str(image))
                    else:
                        b64 = base64.b64encode(image.read_bytes()).decode()
                        page.evaluate(_HAND_OVER, [method, image.name, b64])
                    page.wait_for_function(
                        f"document.body.dataset.count === '{i}'", timeout=timeout_ms
                    )
                results = page.evaluate("window.classifications")
                if screenshot is not None:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot), full_page=True)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return results, requested


def leaves_localhost(urls: list[str]) -> list[str]:
    """The URLs that go anywhere but the loopback server (blob: URLs of local files are local)."""
    outside = []
    for url in urls:
        parsed = urlparse(url)
        inner = urlparse(parsed.path) if parsed.scheme == "blob" else parsed
        if parsed.scheme == "data" or inner.hostname == "127.0.0.1":
            continue
        outside.append(url)
    return outside


def main(argv: list[str] | None = None) -> int:
    """Print the page's per-image latency and agreement for each model; exit 1 on a failure."""
    from benchlog import bench_parser, machine_line, write_section
    from cifar.data import load_cifar10
    from cifar.inference.tflite_runner import TFLiteClassifier
    from exports.web import write_web_app

    parser = bench_parser(__doc__)
    parser.add_argument("models", nargs="+", help=".tflite files with metadata")
    parser.add_argument("--n", type=int, default=50, help="test images (default 50)")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"))
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("error: chromium not found (run .ci/install-chromium as root)", file=sys.stderr)
        return 1
    data = load_cifar10(args.data_dir)
    images = data.x_test[: args.n]
    lines = [machine_line(), ""]
    with tempfile.TemporaryDirectory() as tmp:
        files = write_pngs(images, Path(tmp) / "images")
        for model in args.models:
            page_dir = Path(tmp) / Path(model).stem
            write_web_app(model, page_dir)
            results, urls = classify_in_browser(page_dir, files, chromium)
            probs = TFLiteClassifier(model).predict(images)
            top1 = [data.class_names.index(r["categories"][0]["categoryName"]) for r in results]
            agree = np.mean(probs[np.arange(len(top1)), top1] >= probs.max(1) - 1e-6)
            ms = np.array([r["ms"] for r in results])
            lines.append(
                f"- {model}: {len(results)} CIFAR-10 (JPEG-q75 reconstruction) test images in "
                f"headless Chromium {chromium}: first image {ms[0]:.1f} ms, then median "
                f"{np.median(ms[1:]):.1f} ms, p90 {np.percentile(ms[1:], 90):.1f} ms per image; "
                f"top-1 agreement with LiteRT {agree:.2%}; requests outside localhost: "
                f"{len(leaves_localhost(urls))}"
            )
            print(lines[-1])
    if args.write:
        write_section("bench_web", "Classifier page in headless Chromium (MediaPipe WASM)", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
