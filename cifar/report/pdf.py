"""``REPORT.pdf``: the standalone HTML report printed to A4 by headless Chromium.

Chromium is the system's (:mod:`cifar.report.chromium`), driven by Playwright's sync API
(``page.pdf``). Playwright is an optional dependency (``pip install 'cifar-transfer[pdf]'``);
without it or without Chromium, :func:`pdf_prerequisites` raises one clear
:class:`~cifar.errors.MissingDependencyError`. The page's print rules (``html._CSS``) keep
every image and table inside the page.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cifar.errors import MissingDependencyError, writing
from cifar.report.chromium import HEADLESS_FLAGS, describe_missing, find_chromium

# A4 with margins that leave 186 mm x 267 mm for the report; CSS @page says the same.
PAGE = {
    "format": "A4",
    "margin": {"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
}
LOAD_TIMEOUT_MS = 60_000


def pdf_prerequisites() -> str:
    """The Chromium to print with; MissingDependencyError when Playwright or Chromium is absent."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "--pdf needs the playwright package: pip install 'cifar-transfer[pdf]' "
            "(or pip install playwright); REPORT.html prints to PDF from any browser too"
        ) from exc
    chromium = find_chromium()
    if chromium is None:
        raise MissingDependencyError(f"--pdf needs Chromium: {describe_missing()}")
    return chromium


def write_pdf(html_path: Path, pdf_path: Path, chromium: str | None = None) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4, backgrounds on) in headless Chromium.

    Chromium starts with a new empty profile that is removed afterwards.

    Raises:
        MissingDependencyError: Playwright or Chromium is missing, or Chromium does not start.
        DiskError: the PDF cannot be written.
    """
    chromium = chromium or pdf_prerequisites()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="cifar-pdf-profile-") as profile,
        sync_playwright() as pw,
    ):
        try:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium, headless=True, args=HEADLESS_FLAGS
            )
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MissingDependencyError(f"Chromium {chromium} did not start: {first}") from exc
        try:
            page = context.new_page()
            page.goto(
                Path(html_path).resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS
            )
            page.emulate_media(media="print")
            data = page.pdf(**PAGE, print_background=True, prefer_css_page_size=True)
        finally:
            context.close()
    pdf_path = Path(pdf_path)
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    with writing(pdf_path, need=len(data)):
        tmp.write_bytes(data)
        tmp.replace(pdf_path)
    return pdf_path
