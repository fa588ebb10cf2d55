"""The ``vfio-migcheck`` command line: the one place where the VFIO model meets the checker.

Sub-commands live in ``checker/commands/``; a sub-command whose module is not importable
(an optional part missing from an installation) is simply not offered.
"""

from __future__ import annotations

import importlib

import click

from checker.commands.check import check

# (module, attribute) of the other sub-commands, registered when present.
_OPTIONAL = [
    ("checker.commands.fsm", "fsm"),
    ("checker.commands.simulate", "simulate"),
    ("checker.commands.graph", "graph"),
    ("checker.commands.prove", "prove"),
    ("checker.commands.report", "report"),
    ("checker.commands.tables", "tables"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vfio-migcheck")
def main() -> None:
    """Check VFIO device live migration: the kernel's device-state FSM, QEMU's dirty-page
    tracking rules and the migration protocol, explored exhaustively like TLC.

    Exit codes: 0 all outcomes as expected, 1 violation or mismatch, 2 usage or
    spec-file error, 3 a limit stopped the run, 130 interrupted.
    """


main.add_command(check)
for _module, _attr in _OPTIONAL:
    try:
        _cmd = getattr(importlib.import_module(_module), _attr)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise
        continue
    main.add_command(_cmd)
