"""The layering rules of docs/design.md ("Folder rules"), the size rules, and lint, as tests.

* ``model/`` says what VFIO and the VMMs do: from the project it imports only the
  specification language ``checker.lang`` (layout, spec, ops), never the search machinery.
* ``checker/`` is a general checker: it imports neither ``model`` nor ``cli``.
* ``cli/`` is the front end, the only package that imports both.
* No two modules import each other, directly or through others (lazy imports included:
  a cycle hidden in a function is still a cycle).
* No function above cyclomatic complexity 20 or longer than 100 lines, no module above
  700 lines (data tables are not exempt today: none is that large).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import networkx as nx
import pytest
from radon.complexity import cc_visit
from radon.visitors import Function

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("checker", "model", "cli")
SOURCE_DIRS = (*PACKAGES, "tests", "bench")
MAX_COMPLEXITY = 20
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = 700


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(path: Path, known: dict[str, Path] | None = None) -> set[str]:
    """Every module ``path`` imports, at any depth of the file; ``from a import b`` counts as
    importing ``a.b`` when that is a module of the project."""
    known = known if known is not None else {}
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
    return out


def _top(mod: str) -> str:
    return mod.split(".", 1)[0]


def _violations(package: str, allowed: Callable[[str], bool]) -> list[str]:
    known = project_modules()
    bad = []
    for mod, path in known.items():
        if _top(mod) != package:
            continue
        for imp in sorted(imports(path, known)):
            if _top(imp) in PACKAGES and _top(imp) != package and not allowed(imp):
                bad.append(f"{path.relative_to(ROOT)} imports {imp}")
    return bad


def test_model_imports_only_the_specification_language():
    assert _violations("model", lambda imp: imp == "checker.lang" or imp.startswith("checker.lang.")) == []


def test_checker_imports_neither_model_nor_cli():
    assert _violations("checker", lambda imp: False) == []


def test_only_cli_imports_both():
    """Model and checker machinery meet only in the front end (checker.lang is the model's)."""
    both = []
    known = project_modules()
    for mod, path in known.items():
        imps = imports(path, known)
        machinery = any(_top(i) == "checker" and not i.startswith("checker.lang") for i in imps)
        if machinery and any(_top(i) == "model" for i in imps) and _top(mod) != "cli":
            both.append(mod)
    assert both == []


def test_no_import_cycles():
    known = project_modules()
    g = nx.DiGraph()
    for mod, path in known.items():
        g.add_node(mod)
        for imp in imports(path, known):
            if imp in known and imp != mod:
                g.add_edge(mod, imp)
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert cycles == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path):
    """The cycle test can fail: two modules importing each other are caught."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from checker import b\n")
    b.write_text("import checker.a\n")
    known = {"checker.a": a, "checker.b": b}
    g = nx.DiGraph((m, i) for m, p in known.items() for i in imports(p, known) if i in known)
    assert [sorted(c) for c in nx.simple_cycles(g)] == [["checker.a", "checker.b"]]


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(), str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _sources() -> list[Path]:
    return [p for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]


def test_no_function_longer_than_100_lines():
    long = [
        f"{p.relative_to(ROOT)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for p in _sources()
        for f in _functions(p)
        if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_no_module_longer_than_700_lines():
    big = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert big == []


def _blocks(source: str) -> Iterator[Function]:
    """Every function and method radon sees (a class's own figure is not a function's)."""
    seen: set[tuple[int, str]] = set()
    for block in cc_visit(source):
        for f in [block] if isinstance(block, Function) else block.methods:
            if (f.lineno, f.fullname) not in seen:
                seen.add((f.lineno, f.fullname))
                yield f


def test_no_function_above_complexity_20():
    high = [
        f"{p.relative_to(ROOT)}:{b.lineno} {b.fullname} ({b.complexity})"
        for p in _sources()
        for b in _blocks(p.read_text())
        if b.complexity > MAX_COMPLEXITY
    ]
    assert high == []


def test_the_complexity_rule_can_fail():
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(25))
    assert max(b.complexity for b in _blocks(f"def f(x):\n{branches}    return -1\n")) > MAX_COMPLEXITY


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_clean():
    r = subprocess.run(["ruff", "check", "--quiet", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
