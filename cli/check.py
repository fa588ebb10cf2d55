"""``vfio-migcheck check``: explore each spec, compare with its ``expect``, report.

The control flow is here; what is printed, and where, is :mod:`cli.output`.

* Output paths (``--json``, ``--junit``, ``--itf-out``) are checked before any spec is
  explored, and every spec file is validated before any is explored (exit 2, one line).
* Each spec is explored for every violated property (``--first``: only up to the first,
  as TLC does without ``-continue``) and judged (:mod:`checker.verdict`).  A spec whose
  exploration raises is reported with outcome ``error`` and its message; the others go on.
* Ctrl-C stops the run: the spec being explored reports its partial statistics and what
  it found, the JSON and JUnit files hold the specs checked so far, exit code 130.

Exit codes (a contract, :mod:`checker.verdict`): 0 every outcome matched its expectation;
1 a violation or a mismatch; 2 a usage or spec-file error; 3 a limit stopped a run before
a verdict; 4 a spec's exploration raised (an internal error); 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from checker.compiled import Uncompiled
from checker.explore import COMPILE_MODES, COMPILE_ROWS, Explorer, Limits, Progress
from checker.interrupt import INTERRUPT
from checker.junit import junit_tree
from checker.lang.layout import Layout
from checker.result import Outcome, Result, Stats
from checker.simulation import DEFAULT_DEPTH, simulate
from checker.symmetry import SymmetryError, explore_symmetric
from checker.verdict import exit_code
from cli.errors import UserError
from cli.load import Target, load_targets
from cli.options import FiniteFloat, writable_dir, writable_file, write_text
from cli.output import Checked, CheckOutput, Options, result_json
from cli.progress import SearchProgress


@dataclass(frozen=True)
class Mode:
    """How ``check`` explores: every state (the default), one per symmetry class, or random
    behaviours."""

    symmetry: bool = False
    walks: int | None = None
    seed: int = 0
    depth: int = DEFAULT_DEPTH
    first: bool = False

    @property
    def name(self) -> str:
        return "simulation" if self.walks is not None else "symmetry" if self.symmetry else "exhaustive"

    def describe(self) -> str:
        if self.walks is not None:
            return f"simulation: {self.walks:,} behaviours, seed {self.seed}, depth {self.depth}"
        return "symmetry reduction" if self.symmetry else ""

    @property
    def pins(self) -> tuple[str, ...] | None:
        """The pins a run in this mode can be held to: a reduced exploration has the same
        depth and shortest counterexamples, fewer states; random behaviours have neither."""
        if self.walks is not None:
            return ()
        return ("depth", "trace_length") if self.symmetry else None

    def run(self, t: Target, limits: Limits, progress: Progress | None, workers: int | None = None,
            compile: str = "auto") -> Result:
        if self.walks is not None:
            return simulate(t.spec, walks=self.walks, seed=self.seed, depth=self.depth, limits=limits,
                            progress=progress)
        if self.symmetry and t.spec.symmetry is not None and t.spec.symmetry.reduces:
            try:
                return explore_symmetric(t.spec, limits=limits, progress=progress, workers=workers,
                                         first=self.first, compile=compile)
            except SymmetryError as exc:
                raise UserError(f"{t.path}: --symmetry: {exc}") from None
        return explore_target(t, limits, progress=progress, first=self.first, workers=workers,
                              compile=compile)


def explore_target(t: Target, limits: Limits, *, progress: Progress | None = None, first: bool = False,
                   keep_graph: bool = False, workers: int | None = None, compile: str = "auto") -> Result:
    """Explore one spec; an exception is this spec's ``error`` outcome, not the run's end."""
    explorer: Explorer | None = None
    try:
        explorer = Explorer(t.spec, limits=limits, progress=progress, first=first, keep_graph=keep_graph,
                            workers=workers, compile=compile)
        return explorer.run()
    except Uncompiled as exc:  # asked for with --compile on: the user's to mend
        raise UserError(f"{t.path}: --compile on: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - one spec's failure never ends a multi-spec run
        if explorer is not None:
            return explorer.failed(exc)
        result = Result(t.name, Layout(), Outcome.ERROR, Stats())
        result.error = f"{type(exc).__name__}: {exc}"
        return result


def _explore_one(mode: Mode, t: Target, limits: Limits, *, quiet: bool, workers: int | None,
                 compile: str = "auto") -> Result:
    """One spec, with progress (rich on a terminal, plain lines otherwise) unless ``quiet``;
    a spec that raised is its own ``error`` outcome."""
    if quiet:
        return _guarded(lambda: mode.run(t, limits, None, workers, compile), t)
    with SearchProgress(t.name) as show:
        return _guarded(lambda: mode.run(t, limits, show, workers, compile), t)


def _guarded(run: Any, t: Target) -> Result:
    try:
        result: Result = run()
        return result
    except UserError:
        raise
    except Uncompiled as exc:  # asked for with --compile on: the user's to mend
        raise UserError(f"{t.path}: --compile on: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - one spec's failure never ends a multi-spec run
        result = Result(t.name, Layout(), Outcome.ERROR, Stats())
        result.error = f"{type(exc).__name__}: {exc}"
        return result


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "json_out", metavar="FILE|-", help="Write the results as JSON (contract version 1).")
@click.option(
    "--junit", "junit_out", metavar="FILE", help="Write JUnit XML: one test case per spec and property."
)
@click.option(
    "--trace-format",
    type=click.Choice(["text", "itf"]),
    default="text",
    show_default=True,
    help="Counterexamples as readable text or as ITF JSON (Apalache/Quint's trace format).",
)
@click.option(
    "--full-trace", is_flag=True, help="Show every variable in each step, not only the changed ones."
)
@click.option(
    "--first", is_flag=True,
    help="Stop each spec at its first violation (TLC without -continue); default: report every "
    "violated property, each with its own shortest counterexample.",
)
@click.option(
    "--max-states", type=click.IntRange(min=1), help="Stop a spec after this many distinct states (exit 3)."
)
@click.option(
    "--max-seconds", type=FiniteFloat(min=0, min_open=True), help="Stop a spec after this long (exit 3)."
)
@click.option(
    "--max-memory", type=FiniteFloat(min=1), metavar="MB",
    help="Stop a spec when the process's memory grew by this much while exploring it (exit 3).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Threads for the search (default: one per core); the result is the same for any N.",
)
@click.option(
    "--compile", "compile_mode", type=click.Choice(COMPILE_MODES), default="auto", show_default=True,
    help="Run the actions as C compiled from the spec (cached; needs a C compiler): auto does "
    f"once a BFS level reaches {COMPILE_ROWS:,} states, on from the start (exit 2 if it cannot), "
    "off never.  The result is the same.",
)
@click.option(
    "--quiet", "-q", is_flag=True,
    help="No progress, no table, no traces: one line per spec that did not match, with the reason.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show every counterexample, also the expected ones.")
@click.option(
    "--symmetry", is_flag=True,
    help="Explore one state per class of interchangeable devices (processes) the spec declares "
    "(TLC's SYMMETRY); distinct/generated pins are not compared.",
)
@click.option(
    "--simulate", "walks", type=click.IntRange(min=1), metavar="N",
    help="Check N random behaviours instead of every state (TLC's -simulate); no pins are "
    "compared and liveness is not checked.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of --simulate.")
@click.option(
    "--depth", type=click.IntRange(min=1), default=DEFAULT_DEPTH, show_default=True,
    help="Most states in one --simulate behaviour.",
)
@click.option(
    "--itf-out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
    help="Write each counterexample as ITF JSON to DIR/SPEC.PROPERTY.itf.json.",
)
def check(
    paths: tuple[str, ...],
    json_out: str | None,
    junit_out: str | None,
    trace_format: str,
    full_trace: bool,
    first: bool,
    max_states: int | None,
    max_seconds: float | None,
    max_memory: float | None,
    workers: int | None,
    compile_mode: str,
    quiet: bool,
    verbose: bool,
    symmetry: bool,
    walks: int | None,
    seed: int,
    depth: int,
    itf_out: Path | None,
) -> None:
    """Check SPEC files or directories (default: specs/) and compare each with its expect.

    Prints one line per spec; counterexamples of unexpected outcomes (every one with
    --verbose).  With --json - or --trace-format itf, stdout holds only that document (ITF:
    one trace per line, every counterexample) and the lines go to stderr.
    """
    if symmetry and walks is not None:
        raise UserError("--symmetry and --simulate do not combine; choose one")
    writable_file(json_out, "--json")
    writable_file(junit_out, "--junit")
    if json_out is not None and junit_out is not None and json_out == junit_out:
        raise UserError(f"--json and --junit name the same file {json_out}")
    if itf_out is not None:
        writable_dir(itf_out, "--itf-out")
    targets = load_targets(paths)  # every file validated before any run
    mode = Mode(symmetry, walks, seed, depth, first)
    options = Options(quiet=quiet, verbose=verbose, trace_format=trace_format, full_trace=full_trace,
                      json_to_stdout=json_out == "-", itf_out=itf_out, mode=mode.describe())
    output = CheckOutput(targets, options)
    results: list[Checked] = []
    interrupted = False
    limits = Limits(states=max_states, seconds=max_seconds, memory_mb=max_memory)
    try:
        for t in targets:
            r = _explore_one(mode, t, limits, quiet=quiet, workers=workers, compile=compile_mode)
            with INTERRUPT.polling():  # a result in hand is judged and kept, Ctrl-C or not
                c = t.judge(r, pins=mode.pins)
                results.append((t, c))
                output.finished(t, c)
            if r.outcome == Outcome.INTERRUPTED or INTERRUPT.requested:
                interrupted = True
                break
    except KeyboardInterrupt:  # between explorations (building a spec, judging)
        interrupted = True
    # printed first: a file that cannot be written loses nothing
    output.done(results, interrupted=interrupted)
    if interrupted:
        click.echo(f"Interrupted: partial results of {len(results)} of {len(targets)} spec(s) above.",
                   err=True)
    _write_outputs(results, json_out=json_out, junit_out=junit_out, trace_format=trace_format, mode=mode)
    sys.exit(exit_code([c for _, c in results], interrupted))


def _write_outputs(results: list[Checked], *, json_out: str | None, junit_out: str | None,
                   trace_format: str, mode: Mode) -> None:
    if json_out is not None:
        doc = {"version": 1, "results": [{**result_json(t, c, trace_format), "exploration": mode.name}
                                         for t, c in results]}
        text = json.dumps(doc, indent=2, default=str)
        if json_out == "-":
            click.echo(text)
        else:
            write_text(json_out, text + "\n", "--json")
    if junit_out is not None:
        try:
            junit_tree([c for _, c in results]).write(junit_out, encoding="utf-8", xml_declaration=True)
        except OSError as exc:
            raise UserError(f"--junit {junit_out}: cannot write: {exc.strerror or exc}") from None
