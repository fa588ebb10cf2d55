"""Symmetry reduction: one state per class of states that differ only by a permutation of
interchangeable indices (:class:`~checker.lang.spec.Symmetry`), as TLC's SYMMETRY does.

:class:`Canonical` maps a batch of packed states to their representatives, vectorised: the
parts of the indices of each group are read as an ``(n, k, m)`` array (states, indices,
parts), sorted per state lexicographically (one ``lexsort`` for the whole batch) and
written back in sorted order.  :func:`explore_symmetric` explores with it and turns a
counterexample of representatives back into a behaviour of the spec (:func:`lift_trace`):
a run of representatives need not be one, since consecutive representatives may have
their indices permuted differently.

Soundness is the declaration's claim (see :class:`~checker.lang.spec.Symmetry`); what can be
checked here is checked: the declared variables exist and have an element (or bit) for
every index, and weak fairness names action families (a fairness group naming one action
instance, ``KernelStep(dev=0)``, tells indices apart, so a spec that has one is refused).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from checker.explore import Limits, explore
from checker.lang.layout import Layout, Next, Slot, View, apply
from checker.lang.spec import Spec, Symmetry, as_mask
from checker.reads import explain
from checker.result import Result, TraceStep, Violation


class SymmetryError(ValueError):
    """A symmetry that cannot be used with this spec (one line)."""


@dataclass(frozen=True)
class _Part:
    """One field of an index's part of a state: ``width`` bits at ``offset`` of a slot."""

    slot: Slot
    offset: int
    width: int
    fixed: bool = False  # stays with its index (see Symmetry.fixed)

    @property
    def shift(self) -> int:
        return self.slot.shift + self.offset

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


def _parts(layout: Layout, sym: Symmetry, index: int) -> list[_Part]:
    out: list[_Part] = []
    unknown = [n for n in sym.fixed if n not in sym.elements]
    if unknown:
        raise SymmetryError(f"symmetry: fixed variable {unknown[0]} is not one of the elements")
    for name in sym.elements:
        f = layout.field(name)
        if not index < f.count:
            raise SymmetryError(f"symmetry: {name} has {f.count} element(s), no element {index}")
        slot = layout.slot(name if f.count == 1 else f"{name}[{index}]")
        out.append(_Part(slot, 0, f.bits, name in sym.fixed))
    for name, n in sorted(sym.blocks.items()):
        f = layout.field(name)
        if not (index + 1) * n <= f.count:
            raise SymmetryError(f"symmetry: {name} has {f.count} element(s), not {n} for index {index}")
        for j in range(n):
            slot = layout.slot(name if f.count == 1 else f"{name}[{index * n + j}]")
            out.append(_Part(slot, 0, f.bits))
    for name, bits in sorted(sym.bits.items()):
        f = layout.field(name)
        if f.count != 1 or not index < len(bits) or not 0 <= bits[index] < f.bits:
            raise SymmetryError(f"symmetry: {name} has no bit for index {index}")
        out.append(_Part(layout.slot(name), bits[index], 1))
    return out


class Canonical:
    """The representative of each state's class (``everywhere``: also outside ``when``,
    which compares classes of any two states, as :func:`lift_trace` does)."""

    def __init__(self, layout: Layout, sym: Symmetry, *, everywhere: bool = False) -> None:
        self.layout = layout
        self.sym = sym
        self.everywhere = everywhere
        self.groups = [tuple(g) for g in sym.groups if len(g) > 1]
        if any(len(set(g)) != len(g) for g in self.groups):
            raise SymmetryError("symmetry: a group names an index twice")
        self.parts = {i: _parts(layout, sym, i) for g in self.groups for i in g}
        if self.groups and not any(not p.fixed for parts in self.parts.values() for p in parts):
            raise SymmetryError("symmetry: no variable holds a part of an index that may move")

    def _read(self, rows: np.ndarray, index: int, fixed: bool) -> np.ndarray:
        cols = [(rows[:, p.slot.word] >> np.uint64(p.shift)) & np.uint64(p.mask)
                for p in self.parts[index] if p.fixed == fixed]
        if not cols:
            return np.zeros((len(rows), 0), dtype=np.int64)
        return np.stack(cols, axis=1).astype(np.int64)

    def _write(self, rows: np.ndarray, index: int, values: np.ndarray) -> None:
        for j, p in enumerate(q for q in self.parts[index] if not q.fixed):
            word = rows[:, p.slot.word]
            word &= np.uint64(~(p.mask << p.shift) & 0xFFFFFFFFFFFFFFFF)
            word |= values[:, j].astype(np.uint64) << np.uint64(p.shift)

    def _sort_group(self, sub: np.ndarray, group: tuple[int, ...]) -> bool:
        """Sort the free parts of ``group``'s indices in every row of ``sub`` (in place),
        each among the indices whose fixed parts are equal; whether anything moved.

        Two sorts of the ``n * k`` parts, both by (row, fixed parts): one then by the free
        parts, one by position.  Their runs coincide, so the ``i``-th of the first goes to
        the place of the ``i``-th of the second: in each run the smallest free part lands
        on the lowest position."""
        k, n = len(group), len(sub)
        fixed = np.stack([self._read(sub, i, True) for i in group], axis=1).reshape(n * k, -1)
        free = np.stack([self._read(sub, i, False) for i in group], axis=1).reshape(n * k, -1)
        owner = np.repeat(np.arange(n), k)
        position = np.tile(np.arange(k), n)
        runs = [fixed[:, j] for j in reversed(range(fixed.shape[1]))] + [owner]
        by_value = np.lexsort([free[:, j] for j in reversed(range(free.shape[1]))] + runs)
        by_place = np.lexsort([position, *runs])
        if np.array_equal(by_value, by_place):
            return False
        ranked = np.empty_like(free)
        ranked[by_place] = free[by_value]
        ranked = ranked.reshape(n, k, -1)
        for p, index in enumerate(group):
            self._write(sub, index, ranked[:, p, :])
        return True

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if not self.groups or not len(rows):
            return rows
        if self.everywhere or self.sym.when is None:
            sel = np.arange(len(rows))
        else:
            sel = np.flatnonzero(as_mask(self.sym.holds(View(self.layout, rows)), len(rows)))
            if not len(sel):
                return rows
        sub = rows[sel]
        changed = False
        for group in self.groups:
            changed |= self._sort_group(sub, group)
        if not changed:
            return rows
        out = rows.copy()
        out[sel] = sub
        return out


def with_symmetry(spec: Spec) -> Spec:
    """``spec`` exploring one state per class of its declared symmetry."""
    sym = spec.symmetry
    if sym is None:
        raise SymmetryError(f"{spec.name}: the spec declares no symmetry")
    if spec.canonical is not None:
        raise SymmetryError(f"{spec.name}: the spec already has a canonical form")
    families = set(spec.families())
    for name, prop in spec.liveness.items():
        instances = [g for g in prop.fair if g not in families]
        if instances:
            raise SymmetryError(f"{spec.name}: liveness {name} assumes fairness of the action instance "
                                f"{instances[0]}, which tells interchangeable indices apart")
    return dataclasses.replace(spec, canonical=Canonical(spec.layout, sym))


def _successors(spec: Spec, rows: np.ndarray) -> list[tuple[int, str, np.ndarray]]:
    """``(row of rows, action label, successor)`` for every enabled action of every row,
    within the state constraint, as the explorer computes them."""
    out: list[tuple[int, str, np.ndarray]] = []
    view = View(spec.layout, rows)
    for a in spec.actions:
        idx = np.flatnonzero(as_mask(a.guard(view), len(rows)))
        if not len(idx):
            continue
        sub = view.subset(idx)
        t = Next(sub)
        a.effect(sub, t)
        succ = apply(spec.layout, sub.rows, t.assigned, a.label)
        if spec.constraint is not None:
            keep = as_mask(spec.constraint(View(spec.layout, succ)), len(succ))
            idx, succ = idx[keep], succ[keep]
        out.extend((int(i), a.label, s) for i, s in zip(idx, succ, strict=True))
    return out


def lift_trace(spec: Spec, sym: Symmetry, trace: Sequence[TraceStep]) -> list[TraceStep] | None:
    """A behaviour of ``spec`` (without the reduction) whose ``k``-th state is in the class
    of ``trace[k]``, for every ``k``; None if the search finds none.

    A search one step at a time over the states of the right class (at most the size of a
    class per step): every state of a class violates a property that does not tell the
    indices apart, so the last state violates what ``trace`` violates."""
    whole = Canonical(spec.layout, sym, everywhere=True)
    want = [whole(step.row.reshape(1, -1))[0] for step in trace]
    init = spec.init_rows()
    if spec.constraint is not None:
        init = init[as_mask(spec.constraint(View(spec.layout, init)), len(init))]
    keep = np.all(whole(init) == want[0], axis=1)
    layers: list[list[tuple[np.ndarray, int, str | None]]] = [[(r, -1, None) for r in init[keep]]]
    for k in range(1, len(trace)):
        if not layers[-1]:
            return None
        rows = np.stack([r for r, _, _ in layers[-1]])
        found: dict[bytes, tuple[np.ndarray, int, str | None]] = {}
        for parent, label, succ in _successors(spec, rows):
            if np.array_equal(whole(succ.reshape(1, -1))[0], want[k]):
                found.setdefault(succ.tobytes(), (succ, parent, label))
        layers.append(list(found.values()))
    if not layers[-1]:
        return None
    steps: list[TraceStep] = []
    j = 0
    for layer in reversed(layers):
        row, parent, label = layer[j]
        steps.append(TraceStep(label, row.copy()))
        j = parent
    steps.reverse()
    return steps


def explore_symmetric(spec: Spec, *, limits: Limits | None = None, progress: Any = None,
                      workers: int | None = None, first: bool = False,
                      compile: str = "auto") -> Result:
    """Explore ``spec`` with its symmetry reduction; a counterexample is lifted back to a
    behaviour of ``spec`` (its message says so when that fails and the representatives
    are shown instead)."""
    reduced = with_symmetry(spec)
    r = explore(reduced, limits=limits or Limits(), progress=progress, workers=workers, first=first,
                compile=compile)
    r.violations = [_lifted(spec, v) for v in r.violations]
    return r


def _lifted(spec: Spec, v: Violation) -> Violation:
    if v.trace:
        assert spec.symmetry is not None
        lifted = lift_trace(spec, spec.symmetry, v.trace)
        if lifted is not None:
            v = dataclasses.replace(v, trace=lifted, reads=())
        else:
            v = dataclasses.replace(v, message=v.message + " (states shown up to a permutation of "
                                    "interchangeable indices: no behaviour through them was found)")
    explained = explain(spec, v)
    assert explained is not None
    return explained
