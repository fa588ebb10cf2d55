"""Sections built from a :class:`~checker.result.Result`: statistics, properties, coverage
and the counterexample as a step table.

No wall times appear anywhere (reports must be reproducible byte for byte): statistics are
the distinct and generated state counts and the depth, as TLC prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from checker.lang.layout import Field, Layout
from checker.lang.spec import Spec
from checker.reads import grouped
from checker.report.doc import (
    Block,
    Bullets,
    Details,
    Inline,
    Para,
    Rich,
    Section,
    Table,
    badge,
    code,
    mark,
    strong,
)
from checker.result import Result, Violation

STATUS_BADGE = {"ok": ("holds", "ok"), "violated": ("violated", "bad"), "unchecked": ("not checked", "muted")}


def format_value(f: Field, raw: int) -> str:
    """One scalar value as TLA+ would print it: a name, a set of flags, TRUE/FALSE, a number."""
    v = f.render(raw)
    if isinstance(v, list):
        return "{" + ", ".join(str(x) for x in v) + "}"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    return str(v)


def row_values(layout: Layout, row: np.ndarray) -> dict[str, str]:
    """Every scalar slot (``x`` or ``x[i]``) of one packed state, formatted."""
    raw = layout.raw(row)
    return {s.key: format_value(s.field, raw[s.key]) for s in layout.slots}


def outcome_badge(outcome: str, violated: str | None = None) -> Rich:
    if outcome == "violation":
        return badge(f"violation: {violated}" if violated else "violation", "bad")
    if outcome == "pass":
        return badge("pass", "ok")
    if outcome == "blocked":
        return badge("blocked", "warn")
    return badge(outcome, "muted")


def property_kinds(spec: Spec) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for name in spec.invariants:
        kinds[name] = "invariant"
    for name in spec.action_invariants:
        kinds[name] = "action invariant"
    for name in spec.liveness:
        kinds[name] = "liveness"
    for name in spec.witnesses:
        kinds[name] = "witness"
    return kinds


def stats_table(result: Result, stopped_by: str | None = None) -> Table:
    """The TLC statistics; ``stopped_by`` words the limit that stopped the run (the front
    end names its own options), else the bare :class:`~checker.result.Limit` is shown."""
    s = result.stats
    rows: list[list[Rich]] = [
        ["distinct states", f"{s.distinct:,}"],
        ["generated states", f"{s.generated:,}"],
        ["depth (BFS levels)", f"{s.depth:,}"],
    ]
    if result.limit:
        rows.append(["stopped by", stopped_by or str(result.limit)])
    return Table(["statistic", "value"], rows, numeric=frozenset({1}))


def properties_table(spec: Spec, result: Result, expected_violation: str | None) -> Table:
    """Each property with its kind, its result and what the spec author expected."""
    kinds = property_kinds(spec)
    status = dict(result.properties)
    v = result.violation
    if v is not None:
        status[v.name] = "violated"
        kinds.setdefault(v.name, v.kind)
    rows: list[list[Rich]] = []
    for name in sorted(kinds, key=lambda n: (list(kinds).index(n), n)):
        st = status.get(name, "unchecked")
        text, kind = STATUS_BADGE.get(st, (st, "muted"))
        expected = "violated" if name == expected_violation else "holds"
        if st == "unchecked":
            agrees: Rich = badge("-", "muted")
        elif (st == "violated") == (name == expected_violation):
            agrees = badge("as expected", "ok")
        else:
            agrees = badge("unexpected", "bad")
        extra = ""
        if kinds[name] == "witness" and st == "ok" and result.witnesses.get(name) is not None:
            extra = f" (first reached at depth {result.witnesses[name]})"
        rows.append([code(name), kinds[name], (badge(text, kind), extra), expected, agrees])
    return Table(["property", "kind", "result", "expected", ""], rows)


def coverage_blocks(spec: Spec, result: Result) -> list[Block]:
    """Action coverage per family, never-fired actions flagged, per-instance in a fold."""
    families = spec.families()
    instances: dict[str, list[str]] = {f: [] for f in families}
    for a in spec.actions:
        instances[a.family].append(a.label)
    rows: list[list[Rich]] = []
    kinds: list[str] = []
    for f in families:
        labels = instances[f]
        fired = sum(result.coverage.get(label, 0) for label in labels)
        silent = [label for label in labels if result.coverage.get(label, 0) == 0]
        if fired == 0:
            flag: Rich = badge("never fired", "bad")
        elif silent:
            flag = badge(f"{len(silent)} of {len(labels)} instances never fired", "warn")
        else:
            flag = badge("fired", "ok")
        rows.append([code(f), f"{len(labels):,}", f"{fired:,}", flag])
        kinds.append("bad" if fired == 0 else "")
    blocks: list[Block] = []
    v = result.violation
    # Liveness and witness verdicts come after a complete exploration; a safety violation
    # or a limit stops it early.
    stopped = result.limit is not None or (v is not None and v.kind not in ("liveness", "witness"))
    if stopped:
        blocks.append(
            Para(
                "The exploration stopped early (violation or limit), so these counts cover only "
                "the states explored before it stopped.",
                "note",
            )
        )
    blocks.append(
        Table(
            ["action family", "instances", "times fired", "coverage"],
            rows,
            numeric=frozenset({1, 2}),
            row_kinds=kinds,
        )
    )
    never = result.never_fired
    if never:
        blocks.append(Para((strong("Never fired: "), ", ".join(never))))
    per: list[list[Rich]] = [
        [code(label), f"{result.coverage.get(label, 0):,}"] for label in (a.label for a in spec.actions)
    ]
    if any(len(v) > 1 for v in instances.values()):
        blocks.append(
            Details(
                "Coverage of every action instance",
                [Table(["action", "times fired"], per, numeric=frozenset({1}))],
            )
        )
    return blocks


def _trace_values(layout: Layout, violation: Violation) -> list[dict[str, str]]:
    """Every scalar slot and derived value of each state of the trace, formatted."""
    out = []
    for step in violation.trace:
        vals = row_values(layout, step.row)
        derived = layout.display(step.row)
        for d in layout.derived:
            vals[d.name] = str(derived[d.name])
        out.append(vals)
    return out


def _trace_keys(
    layout: Layout, values: list[dict[str, str]], reads: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The columns (the keys the property reads first, then the others that change) and the
    keys that keep their initial value throughout."""
    changing: list[str] = []
    constant: list[str] = []
    keys = [s.key for s in layout.slots]
    for d in layout.derived:  # each derived value after the variable it explains
        at = keys.index(d.after) + 1 if d.after in keys else len(keys)
        keys.insert(at, d.name)
    for key in keys:
        if key in reads:
            continue
        col = {v[key] for v in values}
        (changing if len(col) > 1 else constant).append(key)
    return [k for k in keys if k in reads] + changing, constant


def trace_table(violation: Violation, layout: Layout) -> list[Block]:
    """The counterexample as a table: one row per state; first the variables the violated
    property reads (shaded), then every other variable that changes somewhere in the trace;
    the values a step changed are highlighted."""
    values = _trace_values(layout, violation)
    reads = violation.reads
    columns, constant = _trace_keys(layout, values, reads)
    rows: list[list[Rich]] = []
    kinds: list[str] = []
    for i, (step, vals) in enumerate(zip(violation.trace, values, strict=True)):
        prev = values[i - 1] if i else None
        action: Rich = "Initial state" if step.action is None else code(step.action)
        cells: list[Rich] = [str(i + 1), action]
        for key in columns:
            changed = prev is not None and prev[key] != vals[key]
            cells.append(mark(vals[key]) if changed else vals[key])
        rows.append(cells)
        kind = ""
        if violation.loop_start is not None and i == violation.loop_start:
            kind = "loop"
        if i == len(violation.trace) - 1 and violation.kind in ("invariant", "action-invariant", "deadlock"):
            kind = "bad"
        kinds.append(kind)
    explained: list[Inline] = []
    if reads:
        names = grouped(layout, reads)
        explained = [f" {violation.name} reads "]
        for j, name in enumerate(names):
            explained += [", " if j else "", code(name)]
        explained.append(": their columns come first, marked.")
    blocks: list[Block] = [
        Para(
            (
                strong(violation.message),
                f". Shortest counterexample: {violation.length} states.",
                *explained,
                " Highlighted values are the ones the step's action changed.",
            )
        ),
        Table(["#", "action", *columns], rows, row_kinds=kinds,
              marked=frozenset(range(2, 2 + sum(1 for k in columns if k in reads))),
              nowrap=frozenset(range(2 + len(columns)))),
    ]
    if violation.loop_start is not None:
        if violation.stutter:
            blocks.append(
                Para(f"From state {violation.loop_start + 1} the behaviour stutters forever.", "warn")
            )
        else:
            blocks.append(
                Para(
                    f"After the last state the behaviour returns to state {violation.loop_start + 1} "
                    f"(marked by the thick line) and repeats the cycle forever.",
                    "warn",
                )
            )
    if constant:
        first = values[0]
        blocks.append(
            Details(
                f"Variables that keep their initial value throughout ({len(constant)})",
                [Bullets([(code(k), f" = {first[k]}") for k in constant])],
            )
        )
    return blocks


def results_sections(
    spec: Spec, result: Result, expected_violation: str | None, *, stopped_by: str | None = None
) -> list[Section]:
    """Statistics, property results, coverage and (if any) the counterexample."""
    out = [
        Section("Statistics", [stats_table(result, stopped_by)], "statistics"),
        Section("Properties", [properties_table(spec, result, expected_violation)], "properties"),
        Section("Action coverage", coverage_blocks(spec, result), "coverage"),
    ]
    v = result.violation
    if v is not None:
        if v.trace:
            out.append(Section(f"Counterexample: {v.name}", trace_table(v, result.layout), "counterexample"))
        else:
            out.append(Section(f"Violation: {v.name}", [Para(v.message)], "counterexample"))
    return out


def json_safe_stats(result: Result) -> dict[str, Any]:
    """Statistics without wall time nor whether the actions ran compiled (the machine's
    compiler decides), for reproducible machine-readable output."""
    d = result.stats.as_dict()
    d.pop("seconds", None)
    d.pop("compiled", None)
    return d
