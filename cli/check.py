"""``vfio-migcheck check``: explore each spec, compare with its ``expect``, report.

The control flow is here; what is printed, and where, is :mod:`cli.output`.  Exit codes
(a contract, defined in :mod:`checker.verdict`): 0 every outcome matched its expectation;
1 a violation or a mismatch; 2 a usage or spec-file error; 3 a limit stopped a run before
a verdict; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from checker.explore import Limits, explore
from checker.junit import write_junit
from checker.verdict import exit_code
from cli.load import load_targets
from cli.output import Checked, CheckOutput, Options, progress_printer, result_json


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
    "--quiet", "-q", is_flag=True,
    help="No progress lines and no per-spec lines; only errors, mismatches and unexpected traces.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show every counterexample, also the expected ones.")
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
    quiet: bool,
    verbose: bool,
    itf_out: Path | None,
) -> None:
    """Check SPEC files or directories (default: specs/) and compare each with its expect.

    Prints one line per spec; counterexamples of unexpected outcomes (every one with
    --verbose).  With --json - or --trace-format itf, stdout holds only that document (ITF:
    one trace per line, every counterexample) and the lines go to stderr.
    """
    targets = load_targets(paths)  # every file validated before any run
    options = Options(quiet=quiet, verbose=verbose, trace_format=trace_format, full_trace=full_trace,
                      json_to_stdout=json_out == "-", itf_out=itf_out)
    output = CheckOutput(targets, options)
    results: list[Checked] = []
    interrupted = False
    for t in targets:
        r = explore(
            t.spec,
            limits=Limits(states=max_states, seconds=max_seconds, memory_mb=max_memory),
            progress=None if quiet else progress_printer(sys.stderr, t.name),
        )
        c = t.judge(r)
        results.append((t, c))
        output.finished(t, c)
        if r.outcome == "interrupted":
            interrupted = True
            break
    output.done(results, interrupted=interrupted)
    if json_out is not None:
        doc = {"version": 1, "results": [result_json(t, c, trace_format) for t, c in results]}
        text = json.dumps(doc, indent=2, default=str)
        if options.json_to_stdout:
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
    if junit_out is not None:
        write_junit(Path(junit_out), [c for _, c in results])
    sys.exit(exit_code([c for _, c in results], interrupted))
