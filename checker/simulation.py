"""Random simulation (TLC's ``-simulate``): behaviours drawn at random from the initial
states, each state and step checked against the same invariants and action invariants as
an exhaustive run, for configurations too large to explore.

``walks`` behaviours are drawn, at most ``depth`` states long (TLC's default: 100), in
batches run side by side as one numpy batch: at each step every action's guard is
evaluated on the batch, each behaviour takes one enabled action uniformly at random and
the effects are applied per action to the behaviours that chose it.  A behaviour ends in a
state that enables no action (a deadlock unless it is an end state), in a state outside
the state constraint, or at ``depth``.  The same ``seed`` draws the same behaviours.

A violation is reported as the explorer reports one, with the behaviour that reached it
as its trace (not a shortest one: that takes an exhaustive run).  Witnesses are reported
as reached or not checked; liveness is not checked (a finite random behaviour says
nothing about what happens forever).  Statistics: *generated* counts every state drawn,
*distinct* the different states among them, *depth* the longest behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from checker.explore import Limits
from checker.lang.layout import Next, View, apply
from checker.lang.spec import Spec, as_mask
from checker.reads import explain
from checker.result import Limit, Outcome, PropertyKind, Result, Stats, TraceStep, Violation
from checker.store import fingerprint

DEFAULT_DEPTH = 100
BATCH = 256  # behaviours drawn side by side


@dataclass
class _Batch:
    """The behaviours of one batch: the states and actions of every step so far."""

    rows: list[np.ndarray]  # per step: (walks, words)
    actions: list[np.ndarray] = field(default_factory=list)  # per step after the first: action id, -1 ended
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def trace(self, walk: int, labels: list[str]) -> list[TraceStep]:
        steps = [TraceStep(None, self.rows[0][walk].copy())]
        for k, acts in enumerate(self.actions):
            if acts[walk] < 0:
                break
            steps.append(TraceStep(labels[acts[walk]], self.rows[k + 1][walk].copy()))
        return steps


class _Found(Exception):
    def __init__(self, violation: Violation) -> None:
        self.violation = violation


class Simulation:
    """One simulation of one spec (see the module docstring); :meth:`run` gives a Result."""

    def __init__(self, spec: Spec, *, walks: int, seed: int, depth: int = DEFAULT_DEPTH,
                 limits: Limits | None = None, progress: Callable[[Stats], None] | None = None,
                 progress_every: float = 3.0) -> None:
        if walks < 1 or depth < 1:
            raise ValueError("walks and depth must be at least 1")
        self.spec = spec
        self.layout = spec.layout
        self.walks, self.depth = walks, depth
        self.rng = np.random.default_rng(seed)
        self.limits = limits or Limits()
        self.progress, self.progress_every = progress, progress_every
        self.actions = list(spec.actions)
        self.labels = [a.label for a in self.actions]
        self.coverage = np.zeros(len(self.actions), dtype=np.int64)
        self.witnessed: dict[str, int | None] = {name: None for name in spec.witnesses}
        self.stats = Stats()
        self._keys: list[np.ndarray] = []
        self._t0 = time.perf_counter()

    # ------------------------------------------------------------------ one batch
    def _initial(self, n: int) -> np.ndarray:
        init = self.spec.init_rows()
        if self.spec.constraint is not None:
            init = init[as_mask(self.spec.constraint(View(self.layout, init)), len(init))]
        if not len(init):
            raise ValueError(f"{self.spec.name}: no initial state (within the constraint)")
        return init[self.rng.integers(len(init), size=n)]

    def _check(self, batch: _Batch, rows: np.ndarray, walks: np.ndarray, step: int) -> None:
        """Invariants and witnesses on the states the behaviours ``walks`` reached."""
        self._keys.append(fingerprint(rows))
        self.stats.generated += len(rows)
        view = View(self.layout, rows)
        for name, pred in self.spec.invariants.items():
            ok = as_mask(pred(view), len(rows))
            if not ok.all():
                w = int(walks[np.flatnonzero(~ok)[0]])
                raise _Found(Violation(name, PropertyKind.INVARIANT, f"invariant {name} is violated",
                                       batch.trace(w, self.labels)))
        for name, pred in self.spec.witnesses.items():
            if self.witnessed[name] is None and as_mask(pred(view), len(rows)).any():
                self.witnessed[name] = step + 1

    def _step(self, batch: _Batch, step: int) -> None:
        """Every live behaviour takes one enabled action (or ends)."""
        spec, layout = self.spec, self.layout
        cur = batch.rows[-1]
        live = np.flatnonzero(batch.alive)
        view = View(layout, cur[live])
        enabled = np.stack([as_mask(a.guard(view), len(live)) for a in self.actions], axis=1)
        stuck = ~enabled.any(axis=1)
        if stuck.any() and spec.check_deadlock:
            dead = stuck.copy()
            if spec.end_states is not None:
                dead &= ~as_mask(spec.end_states(view), len(live))
            if dead.any():
                w = int(live[np.flatnonzero(dead)[0]])
                raise _Found(Violation("Deadlock", PropertyKind.DEADLOCK, "deadlock: no action is enabled",
                                       batch.trace(w, self.labels)))
        draw = np.where(enabled, self.rng.random(enabled.shape), -1.0)
        choice = np.where(stuck, -1, draw.argmax(axis=1))
        nxt, acts = cur.copy(), np.full(len(cur), -1, dtype=np.int64)
        for k in np.unique(choice[choice >= 0]).tolist():
            idx = np.flatnonzero(choice == k)
            sub = view.subset(idx)
            t = Next(sub)
            a = self.actions[k]
            a.effect(sub, t)
            succ = apply(layout, sub.rows, t.assigned, a.label)
            self.coverage[k] += len(idx)
            nxt[live[idx]], acts[live[idx]] = succ, k
            for name, pred in spec.action_invariants.items():
                ok = as_mask(pred(sub, View(layout, succ), a), len(idx))
                if not ok.all():
                    w = int(live[idx[np.flatnonzero(~ok)[0]]])
                    batch.rows.append(nxt)
                    batch.actions.append(acts)
                    raise _Found(Violation(name, PropertyKind.ACTION_INVARIANT,
                                           f"action invariant {name} is violated by {a.label}",
                                           batch.trace(w, self.labels)))
        batch.rows.append(nxt)
        batch.actions.append(acts)
        moved = np.flatnonzero(acts >= 0)
        if spec.constraint is not None and len(moved):
            inside = as_mask(spec.constraint(View(layout, nxt[moved])), len(moved))
            batch.alive[moved[~inside]] = False  # the behaviour leaves the constraint: it ends there
            moved = moved[inside]
        batch.alive &= acts >= 0
        if len(moved):
            self.stats.depth = max(self.stats.depth, step + 2)  # states in the longest behaviour
            self._check(batch, nxt[moved], moved, step + 1)

    def _batch(self, n: int) -> None:
        rows = self._initial(n)
        batch = _Batch([rows], alive=np.ones(n, dtype=bool))
        self.stats.depth = max(self.stats.depth, 1)
        self._check(batch, rows, np.arange(n), 0)
        for step in range(self.depth - 1):
            if not batch.alive.any():
                return
            self._step(batch, step)

    # ------------------------------------------------------------------ the run
    def run(self) -> Result:
        outcome, violation = Outcome.PASS, None
        limit: tuple[Limit, int | float | None] | None = None
        last = self._t0
        try:
            for start in range(0, self.walks, BATCH):
                reached = self.limits.reached(self._distinct(), time.perf_counter() - self._t0)
                if reached is not None:
                    outcome, limit = Outcome.LIMIT, reached
                    break
                self._batch(min(BATCH, self.walks - start))
                if self.progress is not None and time.perf_counter() - last >= self.progress_every:
                    self.stats.distinct, self.stats.seconds = self._distinct(), time.perf_counter() - self._t0
                    self.progress(self.stats)
                    last = time.perf_counter()
        except _Found as found:
            outcome, violation = Outcome.VIOLATION, explain(self.spec, found.violation)
        except KeyboardInterrupt:
            outcome, limit = Outcome.INTERRUPTED, (Limit.INTERRUPTED, None)
        return self._result(outcome, violation, limit)

    def _distinct(self) -> int:
        if len(self._keys) > 1:
            self._keys = [np.unique(np.concatenate(self._keys))]
        return len(np.unique(self._keys[0])) if self._keys else 0

    def _result(self, outcome: Outcome, violation: Violation | None,
                limit: tuple[Limit, int | float | None] | None) -> Result:
        spec = self.spec
        self.stats.distinct = self._distinct()
        self.stats.seconds = time.perf_counter() - self._t0
        held = "ok" if outcome == Outcome.PASS else "unchecked"
        properties = {name: held for name in [*spec.invariants, *spec.action_invariants]}
        properties.update({name: "unchecked" for name in spec.liveness})
        properties.update({name: "unchecked" if d is None else "ok" for name, d in self.witnessed.items()})
        if violation is not None:
            properties[violation.name] = "violated"
        fam: dict[str, int] = {}
        for k, a in enumerate(self.actions):
            fam[a.family] = fam.get(a.family, 0) + int(self.coverage[k])
        return Result(
            spec_name=spec.name, layout=self.layout, outcome=outcome, stats=self.stats,
            violations=[] if violation is None else [violation],
            coverage={label: int(self.coverage[k]) for k, label in enumerate(self.labels)},
            family_coverage=fam, witnesses=self.witnessed,
            limit=None if limit is None else limit[0], limit_bound=None if limit is None else limit[1],
            properties=properties,
        )


def simulate(spec: Spec, *, walks: int, seed: int, depth: int = DEFAULT_DEPTH, limits: Limits | None = None,
             progress: Callable[[Stats], None] | None = None) -> Result:
    """Draw ``walks`` random behaviours of ``spec`` (see the module docstring)."""
    return Simulation(spec, walks=walks, seed=seed, depth=depth, limits=limits, progress=progress).run()
