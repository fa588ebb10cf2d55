"""Counterexamples for people (text: only what changed per step, the variables the
violated property reads first) and :func:`replay`, which turns a list of action labels
back into the states they visit.  The same counterexample for tools is ITF JSON
(:mod:`checker.itf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from checker.lang.layout import Field, Layout, Next, View, apply
from checker.lang.spec import Action, Spec, as_mask
from checker.reads import grouped
from checker.result import TraceStep, Violation

READ_MARK = "*"  # marks, in a text trace, a variable the violated property reads


def _fmt(f: Field | None, value: Any, element: bool = False) -> str:
    """TLA+-like rendering: flag sets as {a, b}, indexed variables as <<x, y>>, booleans TRUE/FALSE."""
    if f is not None and f.count > 1 and not element:
        return "<<" + ", ".join(_fmt(f, v, element=True) for v in value) + ">>"
    if isinstance(value, list):
        return "{" + ", ".join(str(v) for v in value) + "}"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _field_of(layout: Layout, key: str) -> tuple[Field | None, bool]:
    name, _, rest = key.partition("[")
    try:
        return layout.field(name), bool(rest)
    except ValueError:
        return None, False


def format_value(layout: Layout | None, key: str, value: Any) -> str:
    """A variable (or an indexed element, ``name[i]``) as the traces show it; without a
    layout, sets and booleans only."""
    f, element = _field_of(layout, key) if layout is not None else (None, False)
    return _fmt(f, value, element)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """The variables (or indexed elements, as ``name[i]``) whose value differs."""
    if before is None:
        return dict(after)
    out: dict[str, Any] = {}
    for name, value in after.items():
        old = before.get(name)
        if value == old:
            continue
        if isinstance(value, list) and isinstance(old, list) and len(value) == len(old):  # indexed
            for i, (a, b) in enumerate(zip(old, value, strict=True)):
                if a != b:
                    out[f"{name}[{i}]"] = b
        else:
            out[name] = value
    return out


def _read_first(shown: dict[str, Any], reads: Sequence[str]) -> list[tuple[str, Any, bool]]:
    """``(key, value, read)`` for each shown variable: those the property reads first.  An
    indexed variable shown whole counts as read when one of its elements is."""
    def read(key: str) -> bool:
        return key in reads or any(r.startswith(key + "[") for r in reads)

    items = [(k, v, read(k)) for k, v in shown.items()]
    return [i for i in items if i[2]] + [i for i in items if not i[2]]


def _values_at(layout: Layout, state: dict[str, Any], reads: Sequence[str]) -> str:
    """``k = v`` for each variable the property reads, in the given state."""
    parts = []
    for key in reads:
        name, _, index = key.partition("[")
        value = state[name] if not index else state[name][int(index.rstrip("]"))]
        parts.append(f"{key} = {format_value(layout, key, value)}")
    return ", ".join(parts)


def render_text(violation: Violation, layout: Layout, *, full: bool = False) -> str:
    """A step-by-step trace: the action with its parameters, then what it changed, the
    variables the violated property reads first (marked); the last line gives their
    values where the property fails."""
    reads = violation.reads
    lines = [f"{violation.message}"]
    head = f"Counterexample: {violation.length} states"
    if reads:
        head += f"; {violation.name} reads {', '.join(grouped(layout, reads))} (marked {READ_MARK})"
    lines.append(head)
    prev: dict[str, Any] | None = None
    state: dict[str, Any] = {}
    for i, step in enumerate(violation.trace):
        state = layout.display(step.row)
        shown = state if (full or prev is None) else changes(prev, state)
        marker = ""
        if violation.loop_start is not None and i == violation.loop_start:
            marker = "  <- the behaviour stutters here forever" if violation.stutter else "  <- loop starts"
        head = "Initial state" if step.action is None else step.action
        lines.append(f"{i + 1:>3}: {head}{marker}")
        if not shown:
            lines.append("       (no variable changed)")
        for name, value, read in _read_first(shown, reads):
            lines.append(f"     {READ_MARK if read else ' '} {name} = {format_value(layout, name, value)}")
        prev = state
    if violation.loop_start is not None and not violation.stutter:
        lines.append(f"     back to state {violation.loop_start + 1}")
    if reads and violation.trace:
        where = "in the last state" if violation.loop_start is None else "in the last state of the loop"
        lines.append(f"     {violation.name} reads, {where}: {_values_at(layout, state, reads)}")
    return "\n".join(lines)


class ReplayError(ValueError):
    """A sequence of action labels that is no behaviour of the spec."""


def replay(spec: Spec, labels: Sequence[str]) -> list[TraceStep]:
    """The behaviour that takes the actions ``labels`` in turn, as the explorer records it:
    the initial state (action None), then one :class:`TraceStep` per label.

    An action instance has one successor per state, so the labels fix the behaviour once
    the initial state is chosen: the initial states are tried in the explorer's order
    (canonical, within the constraint) and the first from which every label is enabled
    is taken.  As in the explorer, successors are mapped by the symmetry reduction and
    must satisfy the state constraint.  A label that names no action, or is not enabled
    where the behaviour has arrived, raises :class:`ReplayError` naming the step
    (numbered as the text traces number states: the initial state is 1).
    """
    by_label = {a.label: a for a in spec.actions}
    for i, label in enumerate(labels):
        if label not in by_label:
            raise ReplayError(f"{spec.name}: step {i + 2} of the trace: no action is labelled {label!r}")
    actions = [by_label[label] for label in labels]
    init = spec.init_rows()
    if spec.canonical is not None:
        init = spec.canonical(init)
    if spec.constraint is not None:
        init = init[as_mask(spec.constraint(View(spec.layout, init)), len(init))]
    best: tuple[int, str] = (-1, f"{spec.name}: no initial state (within the constraint)")
    for row in init:
        trace, error = _replay_from(spec, row, actions)
        if error is None:
            return trace
        best = max(best, (len(trace), error), key=lambda b: b[0])
    raise ReplayError(best[1])


def _replay_from(spec: Spec, row: np.ndarray, actions: list[Action]) -> tuple[list[TraceStep], str | None]:
    """The steps replayed from ``row`` and, if one is refused, why."""
    layout = spec.layout
    trace = [TraceStep(None, row.copy())]
    for a in actions:
        rows = trace[-1].row.reshape(1, -1)
        v = View(layout, rows)
        where = f"{spec.name}: step {len(trace) + 1} of the trace, {a.label},"
        if not as_mask(a.guard(v), 1)[0]:
            return trace, f"{where} is not enabled in state {len(trace)}"
        t = Next(v)
        a.effect(v, t)
        succ = apply(layout, rows, t.assigned, a.label)
        if spec.constraint is not None and not as_mask(spec.constraint(View(layout, succ)), 1)[0]:
            return trace, f"{where} leads out of the state constraint"
        if spec.canonical is not None:
            succ = spec.canonical(succ)
        trace.append(TraceStep(a.label, succ[0].copy()))
    return trace, None
