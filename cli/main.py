"""The ``vfio-migcheck`` command line: the one place where the VFIO model meets the checker.

Each sub-command lives in its own module of ``cli/``, imported when it is run (so that
start-up, and Ctrl-C during it, stay cheap).  Every command runs through one wrapper,
:meth:`Migcheck.main`, which gives the exit codes of docs/design.md#exit-codes:

* 0 as expected, 1 a violation or mismatch (the command's own verdict);
* 2 a usage or input error: one line on stderr, never a traceback;
* 3 a limit, or a solver that could not decide, before a verdict (the command's own);
* 4 an internal error: one line naming it, and the traceback only with ``--debug``;
* 130 interrupted (Ctrl-C), at start-up and in every phase of every command.

A module is imported only when its command runs (or shows its own help): the commands
need numpy, scipy, networkx, z3 and matplotlib between them, and ``vfio-migcheck --help`` needs none
of them (bench/startup.py measures it).  The one-line summaries ``--help`` lists are kept
here for that reason; tests/test_startup.py checks that they are the commands' own
summaries.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from cli.errors import one_line

EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 4, 130  # as checker.verdict (not imported: start-up)

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


DEBUG_ENV = "VFIO_MIGCHECK_DEBUG"


class _Debug:
    on = False


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _Debug.on = True


def debug_option() -> click.Option:
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                        help=f"Show the traceback of an internal error (also {DEBUG_ENV}=1).")


def _add_debug(cmd: click.Command) -> click.Command:
    """Every command (and every sub-command of a group) takes ``--debug``."""
    if not any(p.name == "debug" for p in cmd.params):
        cmd.params.append(debug_option())
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _add_debug(sub)
    return cmd


class Migcheck(click.Group):
    """The top-level group: commands imported when they are used, and the one wrapper for
    exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return _add_debug(cmd)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists commands, from the summaries above (no command is imported)."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        # click's own shortening of a help text (public API: a command with that help; click
        # 8.5 made the helper behind it private)
        rows = [(name, click.Command(name, help=summary).get_short_help_str(limit))
                for name, (_, _, summary) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        def command() -> Any:
            # Inside run(): a Ctrl-C that lands as soon as install() takes SIGINT over
            # (CI saw one inside it) is an interruption like any other, not a traceback.
            if args is None:  # a real process (the console script), not a test runner
                from cli.interrupts import install

                install()
            _Debug.on = os.environ.get(DEBUG_ENV, "") not in ("", "0")
            return super(Migcheck, self).main(args, prog_name, complete_var, standalone_mode=False, **extra)

        sys.exit(run(command))


def run(command: Any) -> int:
    """Run a click command (``standalone_mode=False``) and give its exit code."""
    try:
        rv = command()
    except SystemExit as exc:
        return _exit_status(exc.code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        click.echo("error: aborted (end of input)", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        return EXIT_INTERRUPTED
    except click.UsageError as exc:  # a bad flag or argument: one line, not click's usage block
        cmd = exc.ctx.command_path if exc.ctx is not None else "vfio-migcheck"
        click.echo(one_line(f"error: {cmd}: {exc.format_message()} (see '{cmd} --help')"), err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()  # one line: "error: ..." (cli.errors.UserError) or "Error: ..." (click)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit code 4
        from checker.interrupt import INTERRUPT  # not at start-up: --help imports no checker/

        if INTERRUPT.requested:  # what Ctrl-C broke on its way out (a z3 query, a pipe)
            click.echo("\ninterrupted", err=True)
            return EXIT_INTERRUPTED
        return internal_error(exc)
    finally:
        _done()
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _done() -> None:
    """The command is over and its output written: a Ctrl-C from here on changes nothing.
    Without this, one landing while the interpreter shuts down (which first puts a
    handled SIGINT back to its default) killed the process by the signal instead of
    ending it with the command's exit code (seen in CI, on ``--help``)."""
    interrupts = sys.modules.get("cli.interrupts")  # imported only by a real process
    if interrupts is not None:
        interrupts.ignore_from_now_on()


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    click.echo(str(code), err=True)
    return 1


def internal_error(exc: BaseException) -> int:
    """One line (and with --debug the traceback) for an exception that is a bug."""
    if _Debug.on:
        traceback.print_exception(exc, file=sys.stderr)
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        last = tb[-1]
        where = f" at {os.path.basename(last.filename)}:{last.lineno}"
    text = " ".join(str(exc).split()) or "(no message)"
    hint = "" if _Debug.on else f" (run with --debug or {DEBUG_ENV}=1 for the traceback)"
    click.echo(f"internal error: {type(exc).__name__}: {text}{where}{hint}", err=True)
    return EXIT_INTERNAL


def debug_enabled() -> bool:
    return _Debug.on


@click.group("vfio-migcheck", cls=Migcheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help=f"Show the traceback of an internal error (also {DEBUG_ENV}=1).")
@click.version_option(package_name="vfio-migcheck")
def main() -> None:
    """Check VFIO device live migration: the kernel's device-state FSM, QEMU's dirty-page
    tracking rules and the migration protocol, explored exhaustively like TLC.

    Exit codes: 0 all outcomes as expected, 1 violation or mismatch, 2 usage or input
    error, 3 a limit (or an undecided z3 query) stopped a run before a verdict, 4 internal
    error, 130 interrupted.
    """
