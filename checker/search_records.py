"""What the explorer keeps while it searches one level: a violation met before its trace is
read (:class:`Found`), one chunk expanded (:class:`Candidates`), one action fired on a chunk
(:class:`Fired`) and the level's bookkeeping (:class:`Level`)."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

import numpy as np

from checker.lang.layout import Overflow, View
from checker.lang.spec import Spec, as_mask
from checker.result import PropertyKind, Stats


@dataclass
class Found:
    """A violation met during the search, before its counterexample is read from the store:
    the trace ends in state ``state`` or, for a step (``succ`` given), goes from it by
    action ``action`` to ``succ``, which is not stored."""

    name: str
    kind: PropertyKind
    message: str
    order: tuple[int, ...]  # (level, STEP|DEADLOCK|STATE, ...): the order the search meets it
    state: int
    action: int = -1
    succ: np.ndarray | None = None
    overflow: dict[str, int] | None = None


@dataclass
class Candidates:
    """One chunk of a level, expanded: its successors in the order a whole-level expansion
    computes them (by action, then by frontier row), with their parents' store indices,
    action ids, and what was met on the way (action invariants, values that do not fit,
    deadlocks).  The frontier is ``store[lo:lo + size]``."""

    rows: np.ndarray
    parents: np.ndarray
    actions: np.ndarray
    lo: int
    size: int
    coverage: np.ndarray  # per action: rows of the chunk enabling it
    generated: np.ndarray  # per action: successors kept
    found: list[Found] = field(default_factory=list)

    def keys(self, which: np.ndarray | None = None) -> np.ndarray:
        """The place of candidates (all, or a mask or indices of them) in whole-level
        order, as a number: action x frontier size + frontier row.  Computed when asked,
        for the few candidates that reach a new state, not kept for every candidate."""
        actions, parents = (self.actions, self.parents) if which is None else (
            self.actions[which], self.parents[which])
        keys: np.ndarray = actions.astype(np.int64) * self.size + (parents - self.lo)
        return keys


@dataclass
class Fired:
    """What one action did on one chunk."""

    enabled: np.ndarray  # guard, per chunk row
    succ: np.ndarray
    parents: np.ndarray
    found: list[Found]


@dataclass
class Level:
    """The bookkeeping of the level being expanded."""

    index: int  # BFS depth of the frontier (0 while the initial states are checked)
    lo: int  # the frontier is store[lo:hi]; its new states start at hi
    hi: int
    start: Stats
    start_coverage: np.ndarray
    generated: np.ndarray  # per action, this level
    coverage: np.ndarray  # per action, this level
    minkey: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # (source, target, action, whole-level key) of every candidate, for the kept graph
    edges: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    # (source, target, action) int32 of the state-changing edges, chunk by chunk, for liveness
    live_edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    bad_states: list[tuple[int, str, np.ndarray]] = field(default_factory=list)  # (prop index, name, idx)
    chunks: int = 0

    @property
    def size(self) -> int:
        return self.hi - self.lo


def type_error(
    spec: Spec, k: int, parents: np.ndarray, succ: np.ndarray, overflow: Overflow,
    where: tuple[int, ...], lo: int,
) -> Found:
    """The first successor of action ``k`` that assigns a value its field cannot hold, as
    a violation of the spec's type invariant (``where``: its place in the search order, to
    which the parent's row in the frontier ``lo..`` is added)."""
    bad_any = np.logical_or.reduce([bad for bad, _ in overflow.values()])
    j = int(np.flatnonzero(bad_any)[0])
    values = {key: int(vals[j]) for key, (bad, vals) in overflow.items() if bad[j]}
    key, value = next(iter(values.items()))
    slot = spec.layout.slot(key)
    name, label = spec.type_invariant, spec.actions[k].label
    message = f"invariant {name} is violated: {label} assigns {value} to {key}, which holds 0..{slot.mask}"
    p = int(parents[j])
    return Found(name, PropertyKind.INVARIANT, message, (*where, p - lo), p, k, succ[j].copy(), values)


def step_violations(
    spec: Spec, k: int, before: View, succ: np.ndarray, parents: np.ndarray, where: tuple[int, ...],
    lo: int, skip: Container[str],
) -> list[Found]:
    """Action ``k``'s first step violating each action invariant not in ``skip`` (``where``:
    the level and the step's place in the search order, as for :func:`type_error`)."""
    a, after = spec.actions[k], View(spec.layout, succ)
    found = []
    for i, (name, pred) in enumerate(spec.action_invariants.items()):
        if name in skip:
            continue
        ok = as_mask(pred(before, after, a), len(parents))
        if not ok.all():
            j = int(np.flatnonzero(~ok)[0])
            p = int(parents[j])
            message = f"action invariant {name} is violated by {a.label}"
            found.append(Found(name, PropertyKind.ACTION_INVARIANT, message, (*where, k, i, p - lo), p, k,
                               succ[j].copy()))
    return found
