"""``vfio-migcheck check``: explore each spec, compare with its ``expect``, report.

Exit codes (DESIGN.md section 5, a contract): 0 every outcome matched its expectation;
1 a violation or a mismatch; 2 a usage or spec-file error; 3 a limit stopped a run before
a verdict; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from checker.examples.loader import ExampleError, Expectation, load_example
from checker.explore import explore
from checker.junit import write_junit
from checker.lang.spec import Spec
from checker.result import Result, Stats
from checker.trace import render_text, to_itf
from cli.errors import UserError

DEFAULT_SPECS = Path("specs")


@dataclass
class Target:
    """One spec file, loaded: the spec to explore and what its author expects."""

    path: Path
    name: str
    spec: Spec
    expect: Expectation
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Checked:
    target: Target
    result: Result
    outcome: str  # pass | blocked | violation | limit | error
    matched: bool
    error: str | None = None


def collect_paths(paths: tuple[str, ...]) -> list[Path]:
    if not paths:
        if not DEFAULT_SPECS.is_dir():
            raise UserError(
                f"no spec given and no {DEFAULT_SPECS}/ directory here; pass SPEC files or directories"
            )
        paths = (str(DEFAULT_SPECS),)
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(path.rglob("*.toml"))
            if not found:
                raise UserError(f"{path}: directory holds no *.toml spec files")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise UserError(f"{path}: no such spec file or directory")
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None


def load_target(path: Path) -> Target:
    """A spec file: an engine-validation example or a VFIO migration scenario."""
    data = _read_toml(path)
    if "example" in data:
        try:
            spec, expect, name = load_example(path, data)
        except ExampleError as exc:
            raise UserError(str(exc)) from None
        return Target(path, name, spec, expect)
    from model.migration.spec import build_spec
    from model.scenario import SpecError, load_scenario

    try:
        scenario = load_scenario(path)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    spec = build_spec(scenario)
    exp = scenario.check.expect
    expect = Expectation("no-violation") if exp is None else Expectation(exp.kind, exp.invariant)
    return Target(path, scenario.name, spec, expect, dict(spec.info))


def judge(target: Target, result: Result) -> Checked:
    outcome = result.outcome
    if outcome == "interrupted":
        outcome = "limit"
    if outcome == "pass" and target.info.get("blocked"):
        outcome = "blocked"
    exp = target.expect
    if outcome == "limit":
        matched = False
    elif exp.kind == "no-violation":
        matched = outcome in ("pass", "blocked")
    elif exp.kind == "violation":
        matched = (
            outcome == "violation" and result.violation is not None and result.violation.name == exp.name
        )
    else:
        matched = outcome == exp.kind
    return Checked(target, result, outcome, matched)


def result_json(c: Checked, trace_format: str) -> dict[str, Any]:
    r = c.result
    v = r.violation
    trace = None
    if v is not None and v.trace:
        trace = [{"action": s.action, "state": s.state(r.layout)} for s in v.trace]
    out: dict[str, Any] = {
        "spec": c.target.name,
        "file": str(c.target.path),
        "outcome": c.outcome,
        "expected": c.target.expect.as_json(),
        "matched": c.matched,
        "violated": v.name if v is not None else None,
        "violation_kind": v.kind if v is not None else None,
        "message": v.message if v is not None else (f"stopped by {r.limit}" if r.limit else None),
        "blocked_by": list(c.target.info.get("blocked_by", [])),
        "tracking_method": c.target.info.get("tracking_method"),
        "stats": r.stats.as_dict(),
        "properties": r.properties,
        "coverage": r.family_coverage,
        "never_fired": r.never_fired,
        "trace": trace,
    }
    if v is not None and v.loop_start is not None:
        out["loop_start"] = v.loop_start
    if trace_format == "itf" and v is not None and v.trace:
        out["itf"] = to_itf(v, r.layout, spec_name=c.target.name)
    return out


def exit_code(results: list[Checked], interrupted: bool) -> int:
    if interrupted:
        return 130
    if any(c.outcome != "limit" and not c.matched for c in results):
        return 1
    if any(c.outcome == "limit" for c in results):
        return 3
    return 0


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
    quiet: bool,
) -> None:
    """Check SPEC files or directories (default: specs/) and compare each with its expect."""
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = 160
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    files = collect_paths(paths)
    targets = [load_target(p) for p in files]  # every file validated before any run
    names = [t.name for t in targets]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UserError(f"two spec files share the name {sorted(dup)[0]!r}; names must be unique")
    results: list[Checked] = []
    interrupted = False
    for t in targets:
        if not quiet:
            err.print(f"[dim]Checking {t.name} ({t.path}) ...[/dim]")
        r = explore(
            t.spec,
            max_states=max_states,
            max_seconds=max_seconds,
            max_memory_mb=max_memory,
            progress=None if quiet else _progress_printer(err, t.name),
        )
        results.append(judge(t, r))
        if r.outcome == "interrupted":
            interrupted = True
            break
    json_to_stdout = json_out == "-"
    if not json_to_stdout:
        _print_results(out, results, quiet=quiet, trace_format=trace_format, full_trace=full_trace)
    if json_out is not None:
        doc = {"version": 1, "results": [result_json(c, trace_format) for c in results]}
        text = json.dumps(doc, indent=2, default=str)
        if json_to_stdout:
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
    if junit_out is not None:
        write_junit(Path(junit_out), results)
    if interrupted:
        err.print("Interrupted: partial statistics above.")
    sys.exit(exit_code(results, interrupted))


def _print_results(
    out: Console, results: list[Checked], *, quiet: bool, trace_format: str, full_trace: bool
) -> None:
    if not quiet:
        table = Table(title="vfio-migcheck results", show_lines=False)
        for col in (
            "spec",
            "outcome",
            "expected",
            "ok",
            "distinct",
            "generated",
            "depth",
            "seconds",
            "method",
        ):
            table.add_column(
                col, justify="right" if col in ("distinct", "generated", "depth", "seconds") else "left"
            )
        for c in results:
            s = c.result.stats
            outcome = c.outcome
            if c.result.violation is not None:
                outcome = f"violation: {c.result.violation.name}"
            elif c.outcome == "blocked":
                outcome = "blocked: " + ", ".join(c.target.info.get("blocked_by", []))
            elif c.result.limit:
                outcome = f"limit: {c.result.limit}"
            table.add_row(
                c.target.name,
                outcome,
                c.target.expect.short(),
                "[green]yes[/green]" if c.matched else "[red]NO[/red]",
                f"{s.distinct:,}",
                f"{s.generated:,}",
                str(s.depth),
                f"{s.seconds:.2f}",
                str(c.target.info.get("tracking_method", "")),
            )
        out.print(table)
    for c in results:
        v = c.result.violation
        if v is None:
            continue
        if quiet and c.matched:
            continue
        out.print(
            f"\n[bold]{c.target.name}[/bold] ({c.target.path}): {'expected' if c.matched else 'UNEXPECTED'}"
        )
        if trace_format == "itf" and v.trace:
            out.print_json(json.dumps(to_itf(v, c.result.layout, spec_name=c.target.name)))
        else:
            out.print(render_text(v, c.result.layout, full=full_trace), markup=False)
    n_bad = sum(not c.matched for c in results)
    if not quiet:
        verdict = "all outcomes match their expectations" if n_bad == 0 else f"{n_bad} spec(s) did not match"
        out.print(f"\n{len(results)} spec(s) checked: {verdict}.")
