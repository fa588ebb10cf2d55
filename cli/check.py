"""``vfio-migcheck check``: explore each spec, compare with its ``expect``, report.

The control flow is here; what is printed, and where, is :mod:`cli.output`.  Exit codes
(a contract, defined in :mod:`checker.verdict`): 0 every outcome matched its expectation;
1 a violation or a mismatch; 2 a usage or spec-file error; 3 a limit stopped a run before
a verdict; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from checker.explore import Limits, Progress, explore
from checker.junit import write_junit
from checker.result import Result
from checker.simulation import DEFAULT_DEPTH, simulate
from checker.symmetry import SymmetryError, explore_symmetric
from checker.verdict import exit_code
from cli.errors import UserError
from cli.load import Target, load_targets
from cli.output import Checked, CheckOutput, Options, progress_printer, result_json


@dataclass(frozen=True)
class Mode:
    """How ``check`` explores: every state (the default), one per symmetry class, or random
    behaviours."""

    symmetry: bool = False
    walks: int | None = None
    seed: int = 0
    depth: int = DEFAULT_DEPTH

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

    def run(self, t: Target, limits: Limits, progress: Progress | None, workers: int | None = None) -> Result:
        if self.walks is not None:
            return simulate(t.spec, walks=self.walks, seed=self.seed, depth=self.depth, limits=limits,
                            progress=progress)
        if self.symmetry and t.spec.symmetry is not None and t.spec.symmetry.reduces:
            try:
                return explore_symmetric(t.spec, limits=limits, progress=progress, workers=workers)
            except SymmetryError as exc:
                raise UserError(f"{t.path}: --symmetry: {exc}") from None
        return explore(t.spec, limits=limits, progress=progress, workers=workers)


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
    "--max-states", type=click.IntRange(min=1), help="Stop a spec after this many distinct states (exit 3)."
)
@click.option(
    "--max-seconds", type=click.FloatRange(min=0, min_open=True), help="Stop a spec after this long (exit 3)."
)
@click.option(
    "--max-memory", type=click.FloatRange(min=1), metavar="MB", help="Stop when the process exceeds this RSS."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Threads for the search (default: one per core); the result is the same for any N.",
)
@click.option(
    "--quiet", "-q", is_flag=True,
    help="No progress lines and no per-spec lines; only errors, mismatches and unexpected traces.",
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
    max_states: int | None,
    max_seconds: float | None,
    max_memory: float | None,
    workers: int | None,
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
    targets = load_targets(paths)  # every file validated before any run
    mode = Mode(symmetry, walks, seed, depth)
    options = Options(quiet=quiet, verbose=verbose, trace_format=trace_format, full_trace=full_trace,
                      json_to_stdout=json_out == "-", itf_out=itf_out, mode=mode.describe())
    output = CheckOutput(targets, options)
    results: list[Checked] = []
    interrupted = False
    limits = Limits(states=max_states, seconds=max_seconds, memory_mb=max_memory)
    for t in targets:
        r = mode.run(t, limits, None if quiet else progress_printer(sys.stderr, t.name), workers)
        c = t.judge(r, pins=mode.pins)
        results.append((t, c))
        output.finished(t, c)
        if r.outcome == "interrupted":
            interrupted = True
            break
    output.done(results, interrupted=interrupted)
    if json_out is not None:
        doc = {"version": 1, "results": [{**result_json(t, c, trace_format), "exploration": mode.name}
                                         for t, c in results]}
        text = json.dumps(doc, indent=2, default=str)
        if options.json_to_stdout:
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
    if junit_out is not None:
        write_junit(Path(junit_out), [c for _, c in results])
    sys.exit(exit_code([c for _, c in results], interrupted))
