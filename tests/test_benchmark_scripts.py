"""Every benchmark script starts as a plain script (``python benchmarks/x.py --help``).

``benchmarks/`` is a folder of scripts, not an installed package: a script that imports
``benchmarks.<module>`` works from the repository root only by accident, and fails for the user.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "benchlog.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_starts(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository root: siblings must be found beside the script
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
