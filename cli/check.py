"""``vfio-migcheck check``: explore each spec, compare with its ``expect``, report.

Control flow (what is printed, and how, is in the printing helpers at the end):

* Output paths (``--json``, ``--junit``) are checked before any spec is explored, and every
  spec file is validated before any is explored (exit 2, one line).
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
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from checker.explore import Explorer, Limits
from checker.junit import junit_tree
from checker.lang.layout import Layout
from checker.result import Outcome, Result, Stats, Violation
from checker.trace import render_text, to_itf
from checker.verdict import ERROR, LIMIT, Verdict, exit_code
from cli.errors import UserError
from cli.limits import stopped_by
from cli.load import Target, load_targets
from cli.options import FiniteFloat, writable_file, write_text
from cli.progress import SearchProgress

# A judged spec: the target (for what the front end shows about it) and its verdict.
Checked = tuple[Target, Verdict]


def explore_target(t: Target, limits: Limits, *, first: bool = False, quiet: bool = False,
                   keep_graph: bool = False, workers: int | None = None) -> Result:
    """Explore one spec; an exception is this spec's ``error`` outcome, not the run's end."""
    explorer: Explorer | None = None
    try:
        with SearchProgress(t.name) as show:
            explorer = Explorer(t.spec, limits=limits, progress=None if quiet else show, first=first,
                                keep_graph=keep_graph, workers=workers)
            return explorer.run()
    except Exception as exc:  # noqa: BLE001 - one spec's failure never ends a multi-spec run
        if explorer is not None:
            return explorer.failed(exc)
        result = Result(t.name, Layout(), Outcome.ERROR, Stats())
        result.error = f"{type(exc).__name__}: {exc}"
        return result


def _violation_json(v: Violation, layout: Layout, name: str, trace_format: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "property": v.name,
        "kind": v.kind,
        "message": v.message,
        "trace": [{"action": s.action, "state": s.state(layout)} for s in v.trace] if v.trace else None,
    }
    if v.loop_start is not None:
        out["loop_start"] = v.loop_start
    if trace_format == "itf" and v.trace:
        out["itf"] = to_itf(v, layout, spec_name=name)
    return out


def result_json(target: Target, c: Verdict, trace_format: str) -> dict[str, Any]:
    """One spec's entry of ``check --json`` (docs/design.md#json); ``violated``, ``trace`` and
    friends describe the first violation, ``violations`` every one."""
    r = c.result
    violations = [_violation_json(v, r.layout, c.name, trace_format) for v in r.violations]
    first = violations[0] if violations else None
    message = first["message"] if first else r.error if r.error else (
        f"stopped by {stopped_by(r)}" if r.limit else None)
    out: dict[str, Any] = {
        "spec": c.name,
        "file": str(c.path),
        "outcome": c.outcome,
        "expected": c.expectation.as_json(),
        "matched": c.matched,
        "reason": c.reason,
        "violated": first["property"] if first else None,
        "violation_kind": first["kind"] if first else None,
        "message": message,
        "violations": violations,
        "stopped_by": stopped_by(r),
        "blocked_by": target.blocked_by,
        "tracking_method": target.tracking_method,
        "stats": r.stats.as_dict(),
        "properties": r.properties,
        "coverage": r.family_coverage,
        "never_fired": r.never_fired,
        "trace": first["trace"] if first else None,
    }
    if first is not None and "loop_start" in first:
        out["loop_start"] = first["loop_start"]
    if first is not None and "itf" in first:
        out["itf"] = first["itf"]
    return out


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
    "--quiet", "-q", is_flag=True,
    help="No progress, no table, no traces: one line per spec that did not match, with the reason.",
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
    quiet: bool,
) -> None:
    """Check SPEC files or directories (default: specs/) and compare each with its expect."""
    writable_file(json_out, "--json")
    writable_file(junit_out, "--junit")
    if json_out is not None and junit_out is not None and json_out == junit_out:
        raise UserError(f"--json and --junit name the same file {json_out}")
    targets = load_targets(paths)  # every file validated before any run
    limits = Limits(states=max_states, seconds=max_seconds, memory_mb=max_memory)
    results: list[Checked] = []
    interrupted = False
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    try:
        for t in targets:
            if not quiet:
                err.print(f"[dim]Checking {escape(t.name)} ({escape(str(t.path))}) ...[/dim]")
            r = explore_target(t, limits, first=first, quiet=quiet, workers=workers)
            fingerprints = r.stats.fingerprint_report()
            if fingerprints is not None and not quiet:
                err.print(f"[dim]{escape(t.name)}: {fingerprints}[/dim]")
            results.append((t, t.judge(r)))
            if r.outcome == Outcome.INTERRUPTED:
                interrupted = True
                break
    except KeyboardInterrupt:  # between explorations (building a spec, judging)
        interrupted = True
    if json_out != "-":  # printed first: a file that cannot be written loses nothing
        out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        if not out.is_terminal:
            out.width = 160
        if quiet:
            for line in quiet_lines(results):
                out.print(line, markup=False)
        else:
            _print_results(out, results, trace_format=trace_format, full_trace=full_trace)
    _write_outputs(results, json_out=json_out, junit_out=junit_out, trace_format=trace_format)
    if interrupted:
        err.print(f"Interrupted: partial results of {len(results)} of {len(targets)} spec(s) above.")
    sys.exit(exit_code([c for _, c in results], interrupted))


def _write_outputs(results: Sequence[Checked], *, json_out: str | None, junit_out: str | None,
                   trace_format: str) -> None:
    if json_out is not None:
        doc = {"version": 1, "results": [result_json(t, c, trace_format) for t, c in results]}
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


# --- printing ---------------------------------------------------------------------------------


def quiet_lines(results: Sequence[Checked]) -> list[str]:
    """``--quiet``: one line per spec that did not match, with the reason."""
    words = {LIMIT: "LIMIT", ERROR: "ERROR"}
    return [f"{words.get(c.outcome, 'MISMATCH')} {c.name} ({c.path}): {c.reason or ''}"
            for _, c in results if not c.matched]


_COLUMNS = ("spec", "outcome", "expected", "ok", "distinct", "generated", "depth", "seconds", "method")
_NUMERIC = ("distinct", "generated", "depth", "seconds")


def _outcome_cell(target: Target, c: Verdict) -> str:
    if c.result.violations:
        cell = "violation: " + ", ".join(v.name for v in c.result.violations)
        return cell + (f" (then {stopped_by(c.result)})" if c.result.limit else "")
    if c.outcome == ERROR:
        return "error"
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
            escape(c.name),
            escape(_outcome_cell(t, c)),
            escape(c.expectation.short()),
            "[green]yes[/green]" if c.matched else "[red]NO[/red]",
            f"{s.distinct:,}",
            f"{s.generated:,}",
            str(s.depth),
            f"{s.seconds:.2f}",
            t.tracking_method or "",
        )
    return table


def _print_traces(out: Console, results: Sequence[Checked], *, trace_format: str, full_trace: bool) -> None:
    """Each counterexample of each spec, the expected ones marked so."""
    for _, c in results:
        for v in c.result.violations:
            expected = v.name in c.expectation.names
            out.print(f"\n[bold]{escape(c.name)}[/bold] ({escape(str(c.path))}): {escape(v.name)} "
                      f"{'expected' if expected else 'UNEXPECTED'}")
            if trace_format == "itf" and v.trace:
                out.print_json(json.dumps(to_itf(v, c.result.layout, spec_name=c.name)))
            else:
                out.print(render_text(v, c.result.layout, full=full_trace), markup=False)


def _print_results(out: Console, results: Sequence[Checked], *, trace_format: str, full_trace: bool) -> None:
    out.print(_summary_table(results))
    _print_traces(out, results, trace_format=trace_format, full_trace=full_trace)
    # why each complete run did not match, one line each (a stopped run shows its limit above)
    lines = [line for line in quiet_lines(results) if not line.startswith("LIMIT ")]
    if lines:
        out.print()
    for line in lines:
        word, rest = line.split(" ", 1)
        out.print(f"[red]{word}[/red] {escape(rest)}")
    n_bad = sum(not c.matched for _, c in results)
    verdict = "all outcomes match their expectations" if n_bad == 0 else f"{n_bad} spec(s) did not match"
    out.print(f"\n{len(results)} spec(s) checked: {verdict}.")
