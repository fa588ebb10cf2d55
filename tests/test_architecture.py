"""The layering rules of DESIGN.md section 1, and lint, as tests.

* ``model/`` says what VFIO and QEMU do: it may use the specification language
  (``checker.lang.layout``, ``checker.lang.spec``, ``checker.lang.ops``) but never the search machinery.
* ``checker/`` is a general checker: apart from the command-line front end
  (``cli/main.py``, ``cli/``) it never imports ``model``.
"""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC_LANGUAGE = {"checker.lang.layout", "checker.lang.spec", "checker.lang.ops"}


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_model_uses_only_the_specification_language_of_the_checker():
    bad = []
    for path in sorted((ROOT / "model").rglob("*.py")):
        for mod in imports(path):
            if (mod == "checker" or mod.startswith("checker.")) and mod not in SPEC_LANGUAGE:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert bad == []


def test_checker_core_knows_nothing_of_vfio():
    bad = []
    for path in sorted((ROOT / "checker").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "commands" or rel.name == "cli.py":
            continue
        for mod in imports(path):
            if mod == "model" or mod.startswith("model."):
                bad.append(f"{rel} imports {mod}")
    assert bad == []


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_clean():
    r = subprocess.run(["ruff", "check", "--quiet", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
