"""Counterexamples for people (text: only what changed per step) and for tools (ITF JSON),
and :func:`replay`, which turns a list of action labels back into the states they visit.

ITF is the Informal Trace Format that Apalache and Quint write
(https://apalache-mc.org/docs/adr/015adr-trace.html): ``{"#meta", "vars", "states"}``,
each state an object of variable values; integers as ``{"#bigint": "..."}``, sets as
``{"#set": [...]}``, sequences as JSON arrays, records as objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from checker.lang.layout import Field, Layout, Next, View, apply
from checker.lang.spec import Action, Spec, as_mask
from checker.result import TraceStep, Violation


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


def render_text(violation: Violation, layout: Layout, *, full: bool = False) -> str:
    """A step-by-step trace: the action with its parameters, then what it changed."""
    lines = [f"{violation.message}", f"Counterexample: {violation.length} states"]
    prev: dict[str, Any] | None = None
    for i, step in enumerate(violation.trace):
        state = step.state(layout)
        shown = state if (full or prev is None) else changes(prev, state)
        marker = ""
        if violation.loop_start is not None and i == violation.loop_start:
            marker = "  <- the behaviour stutters here forever" if violation.stutter else "  <- loop starts"
        head = "Initial state" if step.action is None else step.action
        lines.append(f"{i + 1:>3}: {head}{marker}")
        if not shown:
            lines.append("       (no variable changed)")
        for name, value in shown.items():
            lines.append(f"       {name} = {format_value(layout, name, value)}")
        prev = state
    if violation.loop_start is not None and not violation.stutter:
        lines.append(f"     back to state {violation.loop_start + 1}")
    return "\n".join(lines)


def _itf_scalar(f: Field, value: Any) -> Any:
    if f.flags is not None:
        return {"#set": list(value)}
    if isinstance(value, bool | str):
        return value
    return {"#bigint": str(int(value))}


def _itf_value(f: Field, value: Any) -> Any:
    if f.count > 1:
        return [_itf_scalar(f, v) for v in value]
    return _itf_scalar(f, value)


def to_itf(violation: Violation, layout: Layout, *, spec_name: str) -> dict[str, Any]:
    """The counterexample as an ITF trace (with the action of each step in ``#meta``)."""
    states = []
    for i, step in enumerate(violation.trace):
        raw = step.state(layout)
        st: dict[str, Any] = {f.name: _itf_value(f, raw[f.name]) for f in layout.fields}
        st["#meta"] = {"index": i, "action": step.action or "Init"}
        states.append(st)
    meta: dict[str, Any] = {
        "format": "ITF",
        "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
        "source": spec_name,
        "description": violation.message,
        "violated": violation.name,
    }
    out: dict[str, Any] = {"#meta": meta, "vars": [f.name for f in layout.fields], "states": states}
    if violation.loop_start is not None:
        out["loop"] = violation.loop_start
    return out


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
