"""The type check: mypy --strict on checker/ and mypy at its default strictness on model/
and cli/ find no error (pyproject.toml's [tool.mypy] says how each package is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True)


def test_checker_is_clean_under_mypy_strict():
    r = _mypy("--strict", "checker")
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr


def test_model_and_cli_are_clean_under_mypy():
    r = _mypy("model", "cli")
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr


def test_the_type_check_can_fail(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x: int) -> str:\n    return x\n")
    r = _mypy("--strict", str(bad))
    assert r.returncode == 1 and "Incompatible return value" in r.stdout
