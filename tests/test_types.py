"""The type check: mypy --strict on checker/ finds no error (model/ and cli/ are not yet
held to it; pyproject.toml's [tool.mypy] says how each package is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_checker_is_clean_under_mypy_strict():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "checker"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr
