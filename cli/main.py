"""The ``vfio-migcheck`` command line: the one place where the VFIO model meets the checker.

Each sub-command lives in its own module of ``cli/``.
"""

from __future__ import annotations

import click

from cli.check import check
from cli.findings import findings
from cli.fsm import fsm
from cli.graph import graph
from cli.prove import prove
from cli.report import report
from cli.simulate import simulate
from cli.tables import tables


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vfio-migcheck")
def main() -> None:
    """Check VFIO device live migration: the kernel's device-state FSM, QEMU's dirty-page
    tracking rules and the migration protocol, explored exhaustively like TLC.

    Exit codes: 0 all outcomes as expected, 1 violation or mismatch, 2 usage or
    spec-file error, 3 a limit stopped the run, 130 interrupted.
    """


for _command in (check, fsm, simulate, graph, prove, tables, report, findings):
    main.add_command(_command)
