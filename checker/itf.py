"""Counterexamples for tools: the Informal Trace Format (ITF) that Apalache and Quint
write and read (https://apalache-mc.org/docs/adr/015adr-trace.html).

A trace is ``{"#meta", "vars", "states"[, "loop"]}``; each state an object with one entry
per variable (and its own ``#meta``).  Values follow the format's rules, by the kind the
layout declares for the variable (:class:`~checker.lang.layout.Kind`), so a variable has
the same type in every spec and every state:

=========  ==================================  ==============================
kind       ITF value                           type (:func:`value_type`)
=========  ==================================  ==============================
bool       ``true`` / ``false``                ``bool``
int        ``{"#bigint": "3"}`` (always)       ``int``
enum       the value's name, a string          ``str``
set        ``{"#set": ["p0", "p1"]}`` (sorted) ``set(str)``
=========  ==================================  ==============================

A variable declared per index (one element per device) is a sequence (a JSON array) of
those, also where a configuration has one element.  Values the layout derives for display
(:class:`~checker.lang.layout.Derived`, such as the state a device-state request walks to)
are strings, listed in the trace's ``#meta.derived``; :func:`from_itf` skips them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from checker.lang.layout import Field, Kind, Layout
from checker.result import TraceStep, Violation

FORMAT_URL = "https://apalache-mc.org/docs/adr/015adr-trace.html"
_BIGINT = re.compile(r"-?[0-9]+")


class ItfError(ValueError):
    """A document that breaks the ITF rules, or does not fit the layout it is read with."""


def _scalar(f: Field, value: Any) -> Any:
    if f.kind is Kind.SET:
        return {"#set": sorted(value)}
    if f.kind is Kind.INT:
        return {"#bigint": str(int(value))}
    if f.kind is Kind.BOOL:
        return bool(value)
    return str(value)


def itf_value(f: Field, value: Any) -> Any:
    """One variable's value (as :meth:`Layout.unpack` with ``arrays`` gives it) in ITF."""
    if f.is_array:
        return [_scalar(f, v) for v in value]
    return _scalar(f, value)


def to_itf(violation: Violation, layout: Layout, *, spec_name: str) -> dict[str, Any]:
    """The counterexample as an ITF trace (with the action of each step in ``#meta``)."""
    derived = [d.name for d in layout.derived]
    states = []
    for i, step in enumerate(violation.trace):
        shown = layout.display(step.row, arrays=True)
        st: dict[str, Any] = {f.name: itf_value(f, shown[f.name]) for f in layout.fields}
        st.update((name, shown[name]) for name in derived)
        st["#meta"] = {"index": i, "action": step.action or "Init"}
        states.append(st)
    meta: dict[str, Any] = {
        "format": "ITF",
        "format-description": FORMAT_URL,
        "source": spec_name,
        "description": violation.message,
        "violated": violation.name,
        "reads": list(violation.reads),
    }
    if derived:
        meta["derived"] = derived
    out: dict[str, Any] = {
        "#meta": meta,
        "vars": [f.name for f in layout.fields] + derived,
        "states": states,
    }
    if violation.loop_start is not None:
        out["loop"] = violation.loop_start
    return out


# ------------------------------------------------------------------------------ the rules


def value_type(value: Any, where: str) -> str:
    """The type of an ITF value (``int``, ``str``, ``bool``, ``seq(T)``, ``set(T)``,
    ``tup(T, ...)``, ``map(K, V)``, ``rec{f: T, ...}``); ``?`` for the element of an empty
    collection.  Raises :class:`ItfError` for what the format does not allow, which here
    includes a bare JSON number: an integer is ``{"#bigint": "N"}``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, int | float):
        raise ItfError(f"{where}: a bare JSON number {value!r}; integers are {{\"#bigint\": \"N\"}}")
    if isinstance(value, list):
        return f"seq({_join(value, where)})"
    if not isinstance(value, dict):
        raise ItfError(f"{where}: {type(value).__name__} is no ITF value")
    tags = [k for k in value if k.startswith("#")]
    if not tags:
        fields = ", ".join(f"{k}: {value_type(v, f'{where}.{k}')}" for k, v in sorted(value.items()))
        return "rec{" + fields + "}"
    if len(value) != 1 or tags[0] not in _TAGS:
        raise ItfError(f"{where}: unknown tag {tags[0]!r}, or a tag that is not the only key")
    return _TAGS[tags[0]](value[tags[0]], where)


def _bigint(n: Any, where: str) -> str:
    if not isinstance(n, str) or not _BIGINT.fullmatch(n):
        raise ItfError(f"{where}: #bigint must be a string of decimal digits")
    return "int"


def _items(items: Any, where: str, tag: str) -> list[Any]:
    if not isinstance(items, list):
        raise ItfError(f"{where}: {tag} holds a JSON array")
    return items


def _set(items: Any, where: str) -> str:
    return f"set({_join(_items(items, where, '#set'), where)})"


def _tup(items: Any, where: str) -> str:
    types = [value_type(v, f"{where}[{i}]") for i, v in enumerate(_items(items, where, "#tup"))]
    return "tup(" + ", ".join(types) + ")"


def _map(items: Any, where: str) -> str:
    pairs = _items(items, where, "#map")
    if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ItfError(f"{where}: #map holds [key, value] pairs")
    return f"map({_join([p[0] for p in pairs], where)}, {_join([p[1] for p in pairs], where)})"


_TAGS: dict[str, Callable[[Any, str], str]] = {
    "#bigint": _bigint, "#set": _set, "#tup": _tup, "#map": _map,
    "#unserializable": lambda _value, _where: "unserializable",
}


def _join(items: Iterable[Any], where: str) -> str:
    """The one element type of a collection (``?`` when empty)."""
    found = "?"
    for i, v in enumerate(items):
        found = unify(found, value_type(v, f"{where}[{i}]"), f"{where}[{i}]")
    return found


def unify(a: str, b: str, where: str) -> str:
    """The type two values share (``?`` stands for any element type), or :class:`ItfError`."""
    if a == b or b == "?":
        return a
    if a == "?":
        return b
    pa, pb = _split(a), _split(b)
    if pa is None or pb is None or pa[0] != pb[0] or len(pa[1]) != len(pb[1]):
        raise ItfError(f"{where}: type {b} where {a} was found before")
    args = [unify(x, y, where) for x, y in zip(pa[1], pb[1], strict=True)]
    return f"{pa[0]}({', '.join(args)})"


def _split(t: str) -> tuple[str, list[str]] | None:
    """``seq(set(str))`` -> ``("seq", ["set(str)"])``; None for a type without arguments."""
    if "(" not in t or not t.endswith(")"):
        return None
    head, body = t.split("(", 1)
    args, depth, cur = [], 0, ""
    for ch in body[:-1]:
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        depth += (ch in "({") - (ch in ")}")
        cur += ch
    args.append(cur.strip())
    return head, args


def check_itf(doc: Any) -> dict[str, str]:
    """Check a trace against the ITF rules; return the type of each variable.

    The rules: an object with ``vars`` (distinct strings) and ``states`` (a non-empty
    array); every state an object with exactly those variables (and optionally
    ``#meta``); ``#meta`` an object where present; ``loop``, if any, an index into
    ``states``; every value an ITF value (:func:`value_type`); a variable of one type in
    every state."""
    names, states = _top_level(doc)
    types: dict[str, str] = {v: "?" for v in names}
    for i, st in enumerate(states):
        if not isinstance(st, dict):
            raise ItfError(f"states[{i}] is not an object")
        keys = set(st) - {"#meta"}
        if keys != set(names):
            missing, extra = sorted(set(names) - keys), sorted(keys - set(names))
            raise ItfError(f"states[{i}]: variables differ from vars (missing {missing}, extra {extra})")
        if "#meta" in st and not isinstance(st["#meta"], dict):
            raise ItfError(f"states[{i}].#meta must be an object")
        for v in names:
            where = f"states[{i}].{v}"
            types[v] = unify(types[v], value_type(st[v], where), where)
    return types


def _top_level(doc: Any) -> tuple[list[str], list[Any]]:
    """The variables and states of a trace whose top level follows the rules."""
    if not isinstance(doc, dict):
        raise ItfError("an ITF trace is a JSON object")
    unknown = set(doc) - {"#meta", "params", "vars", "states", "loop"}
    if unknown:
        raise ItfError(f"unknown top-level key {sorted(unknown)[0]!r}")
    if "#meta" in doc and not isinstance(doc["#meta"], dict):
        raise ItfError("#meta must be an object")
    found = doc.get("vars")
    if not isinstance(found, list) or not all(isinstance(v, str) for v in found):
        raise ItfError("vars must be an array of distinct strings")
    names: list[str] = found
    if len(set(names)) != len(names):
        raise ItfError("vars must be an array of distinct strings")
    states = doc.get("states")
    if not isinstance(states, list) or not states:
        raise ItfError("states must be a non-empty array")
    loop = doc.get("loop", 0)
    if isinstance(loop, bool) or not isinstance(loop, int) or not 0 <= loop < len(states):
        raise ItfError(f"loop must index states (0..{len(states) - 1}), got {loop!r}")
    return names, states


# ------------------------------------------------------------------------------ reading


def _decode_scalar(f: Field, value: Any, where: str) -> int:
    t = value_type(value, where)
    want = {Kind.BOOL: "bool", Kind.INT: "int", Kind.ENUM: "str", Kind.SET: "set(str)"}[f.kind]
    if t != want and not (f.kind is Kind.SET and t == "set(?)"):
        raise ItfError(f"{where}: {t} where the layout declares {f.kind} ({want})")
    if f.kind is Kind.SET:
        return f.encode(value["#set"])
    if f.kind is Kind.INT:
        return int(value["#bigint"])
    return f.encode(value)


def from_itf(doc: Mapping[str, Any], layout: Layout) -> list[TraceStep]:
    """The states of an ITF trace, packed with ``layout`` (the inverse of :func:`to_itf`;
    derived values are skipped, each step's action is read from its ``#meta``)."""
    check_itf(doc)
    derived = set(doc.get("#meta", {}).get("derived", []))
    declared = [f.name for f in layout.fields]
    if [v for v in doc["vars"] if v not in derived] != declared:
        raise ItfError(f"vars {doc['vars']} are not the layout's variables {declared}")
    steps = []
    for i, st in enumerate(doc["states"]):
        assignment: dict[str, Any] = {}
        for f in layout.fields:
            where = f"states[{i}].{f.name}"
            value = st[f.name]
            if f.is_array:
                if not isinstance(value, list) or len(value) != f.count:
                    raise ItfError(f"{where}: a sequence of {f.count} values")
                codes = [_decode_scalar(f, v, f"{where}[{j}]") for j, v in enumerate(value)]
                assignment[f.name] = codes if f.count > 1 else codes[0]
            else:
                assignment[f.name] = _decode_scalar(f, value, where)
        action = st.get("#meta", {}).get("action")
        row = layout.pack([assignment])[0]
        steps.append(TraceStep(None if i == 0 or action == "Init" else action, np.asarray(row)))
    return steps
