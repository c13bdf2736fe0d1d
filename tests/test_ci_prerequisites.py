"""Browser-test prerequisites: on CI (``CI=true``) a missing one fails, elsewhere it skips.

Walks the gate itself (the conftest helpers and ``.ci/install-chromium``) without touching the
machine's Chromium, Playwright or npm.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, on_ci, require_chromium, require_playwright, skip_unless_ci

INSTALL_CHROMIUM = ROOT / ".ci" / "install-chromium"


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("1", True), ("TRUE", True), ("", False), ("0", False)]
)
def test_ci_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert on_ci() is expected


def test_missing_prerequisite_skips_on_a_developer_machine(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no registry here"):
        skip_unless_ci("no registry here")


def test_missing_prerequisite_fails_on_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no registry here \(CI=true"):
        skip_unless_ci("no registry here")


def test_missing_chromium_and_playwright_fail_on_ci_and_skip_elsewhere(monkeypatch):
    import benchmarks.bench_web

    monkeypatch.setattr(benchmarks.bench_web, "find_chromium", lambda: None)
    monkeypatch.setitem(sys.modules, "playwright", None)  # importing it raises ImportError
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        require_chromium()
    with pytest.raises(pytest.fail.Exception, match="playwright is not installed"):
        require_playwright()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        require_chromium()
    with pytest.raises(pytest.skip.Exception, match="playwright is not installed"):
        require_playwright()


def test_present_chromium_is_returned(monkeypatch):
    import benchmarks.bench_web

    monkeypatch.setattr(benchmarks.bench_web, "find_chromium", lambda: "/opt/chromium")
    monkeypatch.setenv("CI", "true")
    assert require_chromium() == "/opt/chromium"


def run_install_chromium(tmp_path, **env) -> subprocess.CompletedProcess:
    """The script with an empty PATH (no apt-get, so it never installs) and ``env``."""
    bash = shutil.which("bash")
    assert bash
    env = {"PATH": str(tmp_path), "CHROMIUM_PATH": str(tmp_path / "chromium"), **env}
    return subprocess.run(
        [bash, str(INSTALL_CHROMIUM)], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("ci", "returncode"), [("true", 1), ("TRUE", 1), ("1", 1), ("", 0), ("0", 0)]
)
def test_install_chromium_fails_on_ci_when_it_cannot_install(tmp_path, ci, returncode):
    result = run_install_chromium(tmp_path, CI=ci)
    assert result.returncode == returncode
    assert "apt-get not found" in result.stdout + result.stderr


def test_install_chromium_passes_on_ci_when_chromium_is_there(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    result = run_install_chromium(tmp_path, CI="true")
    assert result.returncode == 0 and result.stderr == ""
