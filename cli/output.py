"""What ``vfio-migcheck check`` prints (the control flow is in :mod:`cli.check`).

* One line per spec, as it finishes: its name in full, whether it matched its ``expect``,
  the outcome, TLC's statistics, the time and (for a migration scenario) the tracking
  method.  The columns are sized from every spec's name before the first run, so the
  lines form a table that never truncates a name, on a terminal or in a CI log.
* Counterexamples in text only where the outcome was not the expected one, or for every
  violation with ``--verbose``; they come after the table, each under its spec's name.
* ``MISMATCH`` lines (one each, with the reason) and a closing verdict line.
* On stderr, progress lines of long runs and, for a spec whose states are stored as
  fingerprints (wider than one word), TLC's collision-probability line.

Which stream: the human output goes to stdout unless stdout carries a machine-readable
document (``--json -``, or ITF with ``--trace-format itf``), in which case it goes to stderr
and stdout holds that document and nothing else.  ITF on stdout is one trace per line
(JSON Lines), one for every counterexample found: asking for ITF is asking for the traces.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from checker.itf import to_itf
from checker.lang.layout import Layout
from checker.result import Stats, TraceStep, Violation
from checker.trace import render_text
from checker.verdict import ERROR, LIMIT, Verdict
from cli.limits import stopped_by
from cli.load import Target

# A judged spec: the target (for what the front end shows about it) and its verdict.
Checked = tuple[Target, Verdict]

_NUMERIC = ("distinct", "generated", "depth", "seconds")


def outcome_text(target: Target, c: Verdict) -> str:
    if c.result.violations:
        text = "violation: " + ", ".join(v.name for v in c.result.violations)
        return text + (f" (then {stopped_by(c.result)})" if c.result.limit else "")
    if c.outcome == ERROR:
        return "error"
    if c.outcome == "blocked":
        return "blocked: " + ", ".join(target.blocked_by)
    if c.result.limit:
        return f"limit: {stopped_by(c.result)}"
    return c.outcome


def violations_of(c: Verdict) -> list[Violation]:
    """The counterexamples of a verdict: every violated property's (``--first``: the first)."""
    return [v for v in c.result.violations if v.trace]


def _expected(c: Verdict, v: Violation) -> bool:
    """``v`` is one of the violations the spec expects, and the outcome is the expected one."""
    violated = [x.name for x in c.result.violations]
    return v.name in c.expectation.names and c.expectation.outcome_matches(c.outcome, violated)


def itf_file_name(spec: str, prop: str) -> str:
    """``--itf-out``'s file for one counterexample: ``SPEC.PROPERTY.itf.json``."""
    return f"{spec}.{prop}.itf.json"


@dataclass
class Options:
    quiet: bool = False
    verbose: bool = False
    trace_format: str = "text"
    full_trace: bool = False
    json_to_stdout: bool = False
    itf_out: Path | None = None
    mode: str = ""  # how the states were explored, when not exhaustively: "symmetry", "simulation"

    @property
    def itf_to_stdout(self) -> bool:
        return self.trace_format == "itf" and not self.json_to_stdout


class CheckOutput:
    """The printing of one ``check`` run: :meth:`finished` after each spec, :meth:`done`
    at the end."""

    def __init__(self, targets: Sequence[Target], options: Options,
                 stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.options = options
        self.stdout = stdout if stdout is not None else sys.stdout
        self.err = stderr if stderr is not None else sys.stderr
        self.human = self.err if options.json_to_stdout or options.itf_to_stdout else self.stdout
        self.name_width = max([len("spec"), *(len(t.name) for t in targets)])
        self.outcome_width = max([len("outcome"), *(len(t.expectation.short()) for t in targets)])
        self._header_done = False

    # ------------------------------------------------------------------ per spec
    def _say(self, text: str = "") -> None:
        print(text, file=self.human, flush=True)

    def _row(self, cells: Sequence[str]) -> str:
        name, ok, outcome, distinct, generated, depth, seconds, method = cells
        return (f"{name:<{self.name_width}}  {ok:<3}  {outcome:<{self.outcome_width}}  "
                f"{distinct:>9}  {generated:>10}  {depth:>5}  {seconds:>7}  {method}").rstrip()

    def finished(self, target: Target, c: Verdict) -> None:
        """The spec's line (not with ``--quiet``), and its counterexample files."""
        if self.options.itf_out is not None:
            self._write_itf_files(c)
        if self.options.quiet:
            return
        if not self._header_done:
            if self.options.mode:
                self._say(f"Exploration: {self.options.mode}")
            self._say(self._row(["spec", "ok", "outcome", "distinct", "generated", "depth", "seconds",
                                 "method"]))
            self._header_done = True
        s = c.result.stats
        self._say(self._row([c.name, "yes" if c.matched else "NO", outcome_text(target, c),
                             f"{s.distinct:,}", f"{s.generated:,}", str(s.depth), f"{s.seconds:.2f}",
                             target.tracking_method or ""]))
        fingerprints = s.fingerprint_report()  # only for states wider than one word
        if fingerprints is not None:
            print(f"{c.name}: {fingerprints}", file=self.err, flush=True)
        if s.compile_note:  # a compile was tried and gave none: numpy ran instead
            note = f"{c.name}: actions not compiled ({s.compile_note}); ran on numpy"
            print(note, file=self.err, flush=True)

    def _write_itf_files(self, c: Verdict) -> None:
        out = self.options.itf_out
        assert out is not None
        out.mkdir(parents=True, exist_ok=True)
        for v in violations_of(c):
            doc = to_itf(v, c.result.layout, spec_name=c.name)
            (out / itf_file_name(c.name, v.name)).write_text(json.dumps(doc, indent=1) + "\n")

    # ------------------------------------------------------------------ at the end
    def done(self, results: Sequence[Checked], *, interrupted: bool) -> None:
        """Counterexamples, ITF on stdout, mismatch lines and the verdict line."""
        if self.options.itf_to_stdout:
            for _, c in results:
                for v in violations_of(c):
                    print(json.dumps(to_itf(v, c.result.layout, spec_name=c.name)), file=self.stdout)
        elif not self.options.quiet:  # --quiet: only the lines of the specs that did not match
            self._traces(results)
        self._mismatches(results)
        if not self.options.quiet:
            self._say(self._verdict(results))

    def _mismatches(self, results: Sequence[Checked]) -> None:
        """Why each complete run did not match, one line each (a stopped run shows its
        limit in its line)."""
        # With --quiet these lines are all there is: a stopped or failed run gets one too.
        quiet = self.options.quiet
        mismatches = [c for _, c in results if not c.matched and (quiet or c.outcome != LIMIT)]
        if mismatches and not quiet:
            self._say()
        words = {LIMIT: "LIMIT", ERROR: "ERROR"}
        for c in mismatches:
            expected = c.expectation.name
            unchecked = expected is not None and c.result.properties.get(expected) == "unchecked"
            note = f" ({expected} was not checked in this mode)" if unchecked else ""
            self._say(f"{words.get(c.outcome, 'MISMATCH')} {c.name} ({c.path}): {c.reason or ''}{note}")

    def _verdict(self, results: Sequence[Checked]) -> str:
        n_bad = sum(not c.matched for _, c in results)
        verdict = "all outcomes match their expectations" if n_bad == 0 else f"{n_bad} spec(s) did not match"
        hidden = sum(1 for _, c in results for v in violations_of(c) if not self._shows_trace(c, v))
        more = (f"; {hidden} expected counterexample(s) not shown (--verbose shows them)"
                if hidden and not self.options.itf_to_stdout else "")
        return f"\n{len(results)} spec(s) checked: {verdict}{more}."

    def _shows_trace(self, c: Verdict, v: Violation | None = None) -> bool:
        # A spec that matched shows no trace (a violation beyond those it expects is in its
        # line and its JSON); one that did not shows every one.
        return self.options.verbose or not c.matched

    def _traces(self, results: Sequence[Checked]) -> None:
        for _, c in results:
            for v in violations_of(c):
                if not self._shows_trace(c, v):
                    continue
                label = "expected" if _expected(c, v) else "additional" if c.matched else "UNEXPECTED"
                self._say(f"\n{c.name} ({c.path}): {label} violation of {v.name}")
                self._say(render_text(v, c.result.layout, full=self.options.full_trace))


def progress_printer(err: TextIO, name: str) -> Any:
    """A progress callback for long runs (stderr, every few seconds)."""
    def show(stats: Stats) -> None:
        rate = stats.distinct / stats.seconds if stats.seconds else 0.0
        print(f"Progress({name}): depth {stats.depth}, {stats.distinct:,} distinct states, "
              f"{stats.generated:,} generated, {stats.frontier:,} on the frontier, {rate:,.0f} states/s",
              file=err, flush=True)

    return show


def _violation_json(v: Violation, layout: Layout, name: str, trace_format: str) -> dict[str, Any]:
    trace = None
    if v.trace:
        trace = [{"action": s.action, "state": _state(layout, s)} for s in v.trace]
    out: dict[str, Any] = {"property": v.name, "kind": v.kind, "message": v.message,
                           "reads": list(v.reads), "trace": trace}
    if v.loop_start is not None:
        out["loop_start"] = v.loop_start
    if trace_format == "itf" and v.trace:
        out["itf"] = to_itf(v, layout, spec_name=name)
    return out


def _state(layout: Layout, step: TraceStep) -> Any:
    """A step's state as JSON shows it; a value its field cannot hold (a TypeOK
    violation's last step) as the action assigned it."""
    shown = layout.display(step.row, arrays=True)
    if step.overflow and isinstance(shown, dict):
        for key, value in step.overflow.items():
            slot = layout.slot(key)
            if slot.index is None:
                shown[slot.field.name] = value
            elif isinstance(shown.get(slot.field.name), list):
                shown[slot.field.name][slot.index] = value
    return shown


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
        "reads": first["reads"] if first else None,
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
    for key in ("loop_start", "itf"):
        if first is not None and key in first:
            out[key] = first[key]
    return out
