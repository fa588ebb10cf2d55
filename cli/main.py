"""The ``vfio-migcheck`` command line: the one place where the VFIO model meets the checker.

Each sub-command lives in its own module of ``cli/``.
"""

from __future__ import annotations

import importlib

import click

# Each sub-command's module, imported only when that command runs (or for --help): the
# commands pull in heavy libraries (networkx for fsm, z3 for prove, scipy and jinja for
# report) that a ``check`` never uses, and importing them all cost about a second of every
# run, more than the search on most shipped specs.
COMMANDS = {
    "check": "cli.check",
    "fsm": "cli.fsm",
    "graph": "cli.graph",
    "prove": "cli.prove",
    "report": "cli.report",
    "simulate": "cli.simulate",
    "tables": "cli.tables",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = getattr(importlib.import_module(COMMANDS[cmd_name]), cmd_name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vfio-migcheck")
def main() -> None:
    """Check VFIO device live migration: the kernel's device-state FSM, QEMU's dirty-page
    tracking rules and the migration protocol, explored exhaustively like TLC.

    Exit codes: 0 all outcomes as expected, 1 violation or mismatch, 2 usage or
    spec-file error, 3 a limit stopped the run, 130 interrupted.
    """

