"""``vfio-migcheck check``: explore each spec, compare with its ``expect``, report.

Exit codes (a contract, defined in :mod:`checker.verdict`): 0 every outcome matched its
expectation; 1 a violation or a mismatch; 2 a usage or spec-file error; 3 a limit stopped a
run before a verdict; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from checker.explore import Limits, explore
from checker.junit import write_junit
from checker.result import Stats
from checker.trace import render_text, to_itf
from checker.verdict import LIMIT, Verdict, exit_code
from cli.limits import stopped_by
from cli.load import Target, load_targets

# A judged spec: the target (for what the front end shows about it) and its verdict.
Checked = tuple[Target, Verdict]


def result_json(target: Target, c: Verdict, trace_format: str) -> dict[str, Any]:
    r = c.result
    v = r.violation
    trace = None
    if v is not None and v.trace:
        trace = [{"action": s.action, "state": s.state(r.layout)} for s in v.trace]
    out: dict[str, Any] = {
        "spec": c.name,
        "file": str(c.path),
        "outcome": c.outcome,
        "expected": c.expectation.as_json(),
        "matched": c.matched,
        "reason": c.reason,
        "violated": v.name if v is not None else None,
        "violation_kind": v.kind if v is not None else None,
        "message": v.message if v is not None else (f"stopped by {stopped_by(r)}" if r.limit else None),
        "blocked_by": target.blocked_by,
        "tracking_method": target.tracking_method,
        "stats": r.stats.as_dict(),
        "properties": r.properties,
        "coverage": r.family_coverage,
        "never_fired": r.never_fired,
        "trace": trace,
    }
    if v is not None and v.loop_start is not None:
        out["loop_start"] = v.loop_start
    if trace_format == "itf" and v is not None and v.trace:
        out["itf"] = to_itf(v, r.layout, spec_name=c.name)
    return out


def _progress_printer(err: Console, name: str):
    def show(stats: Stats) -> None:
        rate = stats.distinct / stats.seconds if stats.seconds else 0.0
        err.print(
            f"[dim]Progress({name}): depth {stats.depth}, {stats.distinct:,} distinct states, "
            f"{stats.generated:,} generated, {stats.frontier:,} on the frontier, {rate:,.0f} states/s[/dim]"
        )

    return show


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
    "--quiet", "-q", is_flag=True, help="No progress lines and no summary table; only errors and traces."
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
) -> None:
    """Check SPEC files or directories (default: specs/) and compare each with its expect."""
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = 160
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    targets = load_targets(paths)  # every file validated before any run
    results: list[Checked] = []
    interrupted = False
    for t in targets:
        if not quiet:
            err.print(f"[dim]Checking {t.name} ({t.path}) ...[/dim]")
        r = explore(
            t.spec,
            limits=Limits(states=max_states, seconds=max_seconds, memory_mb=max_memory),
            progress=None if quiet else _progress_printer(err, t.name),
            workers=workers,
        )
        results.append((t, t.judge(r)))
        fingerprints = r.stats.fingerprint_report()
        if fingerprints is not None and not quiet:
            err.print(f"[dim]{t.name}: {fingerprints}[/dim]")
        if r.outcome == "interrupted":
            interrupted = True
            break
    json_to_stdout = json_out == "-"
    if not json_to_stdout:
        _print_results(out, results, quiet=quiet, trace_format=trace_format, full_trace=full_trace)
    if json_out is not None:
        doc = {"version": 1, "results": [result_json(t, c, trace_format) for t, c in results]}
        text = json.dumps(doc, indent=2, default=str)
        if json_to_stdout:
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
    if junit_out is not None:
        write_junit(Path(junit_out), [c for _, c in results])
    if interrupted:
        err.print("Interrupted: partial statistics above.")
    sys.exit(exit_code([c for _, c in results], interrupted))


_COLUMNS = ("spec", "outcome", "expected", "ok", "distinct", "generated", "depth", "seconds", "method")
_NUMERIC = ("distinct", "generated", "depth", "seconds")


def _outcome_cell(target: Target, c: Verdict) -> str:
    if c.result.violation is not None:
        return f"violation: {c.result.violation.name}"
    if c.outcome == "blocked":
        return "blocked: " + ", ".join(target.blocked_by)
    if c.result.limit:
        return f"limit: {stopped_by(c.result)}"
    return c.outcome


def _summary_table(results: Sequence[Checked]) -> Table:
    table = Table(title="vfio-migcheck results", show_lines=False)
    for col in _COLUMNS:
        table.add_column(col, justify="right" if col in _NUMERIC else "left")
    for t, c in results:
        s = c.result.stats
        table.add_row(
            c.name,
            _outcome_cell(t, c),
            c.expectation.short(),
            "[green]yes[/green]" if c.matched else "[red]NO[/red]",
            f"{s.distinct:,}",
            f"{s.generated:,}",
            str(s.depth),
            f"{s.seconds:.2f}",
            t.tracking_method or "",
        )
    return table


def _print_traces(out: Console, results: Sequence[Checked], *, quiet: bool, trace_format: str,
                  full_trace: bool) -> None:
    """Each counterexample; with --quiet only those of unexpected outcomes."""
    for _, c in results:
        v = c.result.violation
        if v is None:
            continue
        outcome_ok = c.expectation.outcome_matches(c.outcome, v.name)
        if quiet and outcome_ok:
            continue
        out.print(f"\n[bold]{escape(c.name)}[/bold] ({escape(str(c.path))}): "
                  f"{'expected' if outcome_ok else 'UNEXPECTED'}")
        if trace_format == "itf" and v.trace:
            out.print_json(json.dumps(to_itf(v, c.result.layout, spec_name=c.name)))
        else:
            out.print(render_text(v, c.result.layout, full=full_trace), markup=False)


def _print_results(
    out: Console, results: Sequence[Checked], *, quiet: bool, trace_format: str, full_trace: bool
) -> None:
    if not quiet:
        out.print(_summary_table(results))
    _print_traces(out, results, quiet=quiet, trace_format=trace_format, full_trace=full_trace)
    # why each complete run did not match, one line each (a stopped run shows its limit above)
    mismatches = [c for _, c in results if not c.matched and c.outcome != LIMIT]
    if mismatches:
        out.print()
    for c in mismatches:
        out.print(f"[red]MISMATCH[/red] {escape(c.name)} ({escape(str(c.path))}): {escape(c.reason or '')}")
    n_bad = sum(not c.matched for _, c in results)
    if not quiet:
        verdict = "all outcomes match their expectations" if n_bad == 0 else f"{n_bad} spec(s) did not match"
        out.print(f"\n{len(results)} spec(s) checked: {verdict}.")
