"""Start-up: ``vfio-migcheck --help`` and ``fsm path`` import no heavy library they do not
use (bench/startup.py measures the time), and the command list ``--help`` shows without
importing the commands is theirs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import COMMANDS, main

HEAVY = ("numpy", "scipy", "networkx", "z3", "matplotlib", "rich")


def _imported_by(*args: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running the command."""
    code = "\n".join([
        "import sys, json",
        "from cli.main import main",
        "try:",
        f"    main({list(args)!r})",
        "except SystemExit:",
        "    pass",
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_help_imports_no_heavy_library():
    loaded = _imported_by("--help")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not {m for m in loaded if m in ("checker", "model")}


def test_fsm_path_imports_neither_scipy_networkx_z3_nor_matplotlib():
    loaded = _imported_by("fsm", "path", "RUNNING", "STOP")
    assert "numpy" in loaded  # the kernel's tables
    assert not loaded & {"scipy", "networkx", "z3", "matplotlib"}, sorted(loaded)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_summary_is_the_commands_own(name):
    module, attr, summary = COMMANDS[name]
    command = getattr(importlib.import_module(module), attr)
    assert command.name == name
    assert summary == command.get_short_help_str(limit=10_000)


def test_help_lists_every_command_and_runs_one():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in r.output
    assert CliRunner().invoke(main, ["nope"]).exit_code == 2
    assert "Usage: vfio-migcheck check" in CliRunner().invoke(main, ["check", "--help"]).output
