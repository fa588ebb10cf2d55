"""The ``vfio-migcheck`` command line: the one place where the VFIO model meets the checker.

Each sub-command lives in its own module of ``checker/commands/``.
"""

from __future__ import annotations

import click

from checker.commands.check import check
from checker.commands.fsm import fsm
from checker.commands.graph import graph
from checker.commands.prove import prove
from checker.commands.report import report
from checker.commands.simulate import simulate
from checker.commands.tables import tables


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vfio-migcheck")
def main() -> None:
    """Check VFIO device live migration: the kernel's device-state FSM, QEMU's dirty-page
    tracking rules and the migration protocol, explored exhaustively like TLC.

    Exit codes: 0 all outcomes as expected, 1 violation or mismatch, 2 usage or
    spec-file error, 3 a limit stopped the run, 130 interrupted.
    """


for _command in (check, fsm, simulate, graph, prove, tables, report):
    main.add_command(_command)
