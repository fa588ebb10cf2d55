"""The variables a violated property reads: what a reader of its counterexample looks at
first.

Found by running the property once more, on the states of the counterexample, through a
:class:`~checker.lang.layout.View` that records every variable asked for.  Spec code reads
variables only through views (``s.stale``, ``s["kstate[1]"]``), so what it reads is what it
depends on; no list is written by hand, and a property that changes reads what it reads.
Guards and effects are written without data-dependent Python branches (they run on whole
columns), so one evaluation sees every variable the property can read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from checker.lang.layout import Column, Layout, View
from checker.lang.spec import Eventually, Spec
from checker.result import PropertyKind, TraceStep, Violation


class RecordingView(View):
    """A :class:`View` that notes each variable read (layout keys, in order of first read)."""

    __slots__ = ("reads",)

    def __init__(self, layout: Layout, rows: np.ndarray, reads: dict[str, None] | None = None) -> None:
        super().__init__(layout, rows)
        self.reads: dict[str, None] = {} if reads is None else reads

    def __getitem__(self, key: str) -> Column:
        self.reads.setdefault(key, None)
        return super().__getitem__(key)

    def subset(self, idx: np.ndarray) -> View:
        return RecordingView(self._layout, self.rows[idx], self.reads)


def _rows(steps: Sequence[TraceStep]) -> np.ndarray:
    return np.stack([s.row for s in steps])


def _in_layout_order(layout: Layout, reads: dict[str, None]) -> tuple[str, ...]:
    return tuple(s.key for s in layout.slots if s.key in reads)


def property_reads(spec: Spec, violation: Violation) -> tuple[str, ...]:
    """The layout keys (``x`` or ``x[i]``) the violated property reads, in layout order.

    Invariants and witnesses are evaluated on the last state of the trace (a witness, which
    has no trace, on the initial states), an action invariant on its last step, a liveness
    property (trigger and goal) on the states of its loop.  A deadlock is no property of
    the variables: nothing.
    """
    reads: dict[str, None] = {}
    layout = spec.layout
    trace = violation.trace
    if violation.kind == PropertyKind.INVARIANT and violation.name in spec.invariants and trace:
        spec.invariants[violation.name](RecordingView(layout, _rows(trace[-1:]), reads))
    elif violation.kind == PropertyKind.ACTION_INVARIANT and violation.name in spec.action_invariants:
        if len(trace) >= 2:
            action = next((a for a in spec.actions if a.label == trace[-1].action), None)
            if action is not None:
                before = RecordingView(layout, _rows(trace[-2:-1]), reads)
                after = RecordingView(layout, _rows(trace[-1:]), reads)
                spec.action_invariants[violation.name](before, after, action)
    elif violation.kind == PropertyKind.LIVENESS and violation.name in spec.liveness and trace:
        prop = spec.liveness[violation.name]
        start = violation.loop_start or 0
        view = RecordingView(layout, _rows(trace[start:]), reads)
        if not isinstance(prop, Eventually):
            prop.trigger(view)
        prop.predicate(view)
    elif violation.kind == PropertyKind.WITNESS and violation.name in spec.witnesses:
        spec.witnesses[violation.name](RecordingView(layout, spec.init_rows(), reads))
    return _in_layout_order(layout, reads)


def grouped(layout: Layout, reads: Sequence[str]) -> list[str]:
    """``reads`` for a sentence: an indexed variable read in every element is named once
    (``rmState``, not ``rmState[0], rmState[1], rmState[2]``)."""
    out: list[str] = []
    for f in layout.fields:
        keys = [s.key for s in layout.slots if s.field.name == f.name]
        read = [k for k in keys if k in reads]
        if read:
            out.extend([f.name] if len(read) == len(keys) else read)
    return out


def explain(spec: Spec, violation: Violation | None) -> Violation | None:
    """``violation`` with :attr:`~checker.result.Violation.reads` filled in (None stays)."""
    if violation is not None and not violation.reads:
        violation.reads = property_reads(spec, violation)
    return violation
