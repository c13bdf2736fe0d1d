"""The system's Chromium, the one rule for finding it, and the flags it runs headless with.

Used by ``cifar report --pdf``, the browser benchmark and the browser tests. Chromium is a
system program (Debian's ``chromium``, what ``.ci/install-chromium`` installs), driven through
Playwright's Python package with ``executable_path``: Playwright's own browser download is
never needed.
"""

from __future__ import annotations

import os
import shutil

# Set to the Chromium to use; honoured by .ci/install-chromium too. When it is set, nothing
# else is tried, so a wrong path is reported rather than silently replaced.
CHROMIUM_ENV = "CHROMIUM_PATH"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

# Headless in a container: no sandbox (no user namespaces), no GPU, and nothing that phones
# home or updates itself while a page is printed or tested.
HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """``$CHROMIUM_PATH`` if set, else ``chromium`` on the PATH or ``/usr/bin/chromium``; the
    path when it is an executable file, else None."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or DEFAULT_CHROMIUM
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def describe_missing() -> str:
    """Why :func:`find_chromium` found nothing, and how to fix it, in one sentence."""
    wanted = os.environ.get(CHROMIUM_ENV)
    if wanted:
        return f"{CHROMIUM_ENV}={wanted} is not an executable file"
    return (
        f"Chromium was not found (no `chromium` on the PATH, no {DEFAULT_CHROMIUM}); install "
        f"Debian's chromium (apt-get install chromium) or set {CHROMIUM_ENV}"
    )
