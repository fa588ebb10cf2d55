"""Counterexamples for people (text: only what changed per step) and for tools (ITF JSON).

ITF is the Informal Trace Format that Apalache and Quint write
(https://apalache-mc.org/docs/adr/015adr-trace.html): ``{"#meta", "vars", "states"}``,
each state an object of variable values; integers as ``{"#bigint": "..."}``, sets as
``{"#set": [...]}``, sequences as JSON arrays, records as objects.
"""

from __future__ import annotations

from typing import Any

from checker.lang.layout import Field, Layout
from checker.result import Violation


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


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """The variables (or indexed elements, as ``name[i]``) whose value differs."""
    if before is None:
        return dict(after)
    out: dict[str, Any] = {}
    for name, value in after.items():
        old = before.get(name)
        if value == old:
            continue
        is_indexed = isinstance(value, list) and isinstance(old, list) and len(value) == len(old)
        if is_indexed:
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
            f, element = _field_of(layout, name)
            lines.append(f"       {name} = {_fmt(f, value, element)}")
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
