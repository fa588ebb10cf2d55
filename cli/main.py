"""The ``vfio-migcheck`` command line: the one place where the VFIO model meets the checker.

Each sub-command lives in its own module of ``cli/``, registered here by name.  A module is
imported only when its command runs (or shows its own help): the commands need numpy,
scipy, networkx, z3 and matplotlib between them, and ``vfio-migcheck --help`` needs none
of them (bench/startup.py measures it).  The one-line summaries ``--help`` lists are kept
here for that reason; tests/test_startup.py checks that they are the commands' own
summaries.
"""

from __future__ import annotations

import importlib

import click
from click.utils import make_default_short_help

# name -> (module, attribute, the summary `vfio-migcheck --help` shows)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("cli.check", "check",
              "Check SPEC files or directories (default: specs/) and compare each with its expect."),
    "fsm": ("cli.fsm", "fsm",
            "The kernel's device-state FSM: walks, an audit against the uAPI, the arc graph."),
    "simulate": ("cli.simulate", "simulate", "Run a concrete migration of SPEC's VM on packed page bitmaps."),
    "graph": ("cli.graph", "graph", "Draw the reachable state graph of SPEC."),
    "prove": ("cli.prove", "prove",
              "Prove NoPageLost (through DirtyTrackingSound) for guests of ANY size by induction with "
              "z3, one page at a time, or print the counterexample to induction."),
    "tables": ("cli.tables", "tables",
               "Decision tables of QEMU's dirty-tracking method and migration blockers, enumerated "
               "with z3 over every configuration of up to --devices devices (--vmm cloud-hypervisor: "
               "cloud-hypervisor's refusals, every configuration evaluated)."),
    "report": ("cli.report", "report",
               "Write HTML and Markdown reports for SPEC files or directories (default: specs/)."),
    "findings": ("cli.findings", "findings",
                 "Re-run QEMU's findings on every release (run from the repository: specs/)."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists commands, from the summaries above (no command is imported)."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, make_default_short_help(summary, limit)) for name, (_, _, summary) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vfio-migcheck")
def main() -> None:
    """Check VFIO device live migration: the kernel's device-state FSM, QEMU's dirty-page
    tracking rules and the migration protocol, explored exhaustively like TLC.

    Exit codes: 0 all outcomes as expected, 1 violation or mismatch, 2 usage or
    spec-file error, 3 a limit stopped the run, 130 interrupted.
    """
