"""Breadth-first explicit-state exploration, one whole BFS level at a time.

For every level the explorer evaluates each action's guard on the whole frontier, applies
its effect to the enabled rows, checks action invariants on those transitions, applies
the state constraint and the symmetry reduction, deduplicates against the visited set and
checks invariants and witnesses on the new states.  Because levels are explored in order
and every new state records its parent, the first violation found has a shortest
counterexample.

Statistics follow TLC: *distinct* states are the states stored; *generated* states count
the initial states plus every successor computed (duplicates and self-loops included;
successors discarded by the constraint are not counted); *depth* is the number of BFS
levels, the initial states being level 1.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from checker.lang.layout import Next, View, apply
from checker.lang.spec import Action, Spec, as_mask
from checker.liveness import LiveGraph
from checker.liveness import check_liveness as liveness_violation
from checker.parallel import Workers, available_cores, power_of_two_at_most
from checker.reads import explain
from checker.result import (
    Limit,
    Outcome,
    PropertyKind,
    Result,
    StateGraph,
    Stats,
    TraceStep,
    Violation,
)
from checker.store import StateStore

Progress = Callable[[Stats], None]


@dataclass(frozen=True)
class Limits:
    """Bounds on one exploration (None: unbounded), checked before each BFS level; the
    first one reached stops the search with :attr:`Outcome.LIMIT`."""

    states: int | None = None
    seconds: float | None = None
    memory_mb: float | None = None

    def reached(self, distinct: int, seconds: float) -> tuple[Limit, int | float] | None:
        if self.states is not None and distinct >= self.states:
            return Limit.STATES, self.states
        if self.seconds is not None and seconds > self.seconds:
            return Limit.SECONDS, self.seconds
        if self.memory_mb is not None and _rss_mb() > self.memory_mb:
            return Limit.MEMORY, self.memory_mb
        return None


NO_LIMITS = Limits()


class _Stop(Exception):
    def __init__(self, violation: Violation) -> None:
        self.violation = violation


class _OverMemory(Exception):
    """The memory limit was reached after the search (building the graph, liveness)."""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """The process's resident set now (not its peak), in MB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return _rss_mb()


@dataclass
class _Fired:
    """What one action did on one level: its guard, the rows enabling it, their
    successors and parents, or the violation of an action invariant it found."""

    guard: np.ndarray
    idx: np.ndarray
    succ: np.ndarray | None = None
    parents: np.ndarray | None = None
    stop: _Stop | None = None


@dataclass
class _Level:
    """The successors of one BFS level, before deduplication."""

    rows: list[np.ndarray]
    parents: list[np.ndarray]
    actions: list[np.ndarray]

    def arrays(self, words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.rows:
            return (
                np.zeros((0, words), dtype=np.uint64),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int32),
            )
        return np.concatenate(self.rows), np.concatenate(self.parents), np.concatenate(self.actions)


class Explorer:
    """One exploration of one spec: :meth:`init` stores the initial states, :meth:`expand`
    explores one BFS level (successors, action invariants, deadlocks, deduplication,
    :meth:`check` of the new states), :meth:`finish` turns what was found into a
    :class:`Result` (witnesses and liveness need the whole graph).  :meth:`run` does it all.
    """

    def __init__(
        self,
        spec: Spec,
        *,
        limits: Limits = NO_LIMITS,
        keep_graph: bool = False,
        check_liveness: bool = True,
        progress: Progress | None = None,
        progress_every: float = 3.0,
        workers: int | None = None,
    ) -> None:
        self.spec = spec
        self.layout = spec.layout
        self.actions = list(spec.actions)
        self.labels = [a.label for a in self.actions]
        self.families = [a.family for a in self.actions]
        self.limits = limits
        self.keep_graph = keep_graph
        self.check_liveness = check_liveness
        self.want_edges = keep_graph or (check_liveness and bool(spec.liveness))
        self.progress = progress
        self.progress_every = progress_every
        # Threads: the level's actions in parallel (checker/parallel.py) and the hash
        # table in shards; the result is the same for any number (see parallel.py).
        self.workers = Workers(workers if workers is not None else available_cores())
        shards = power_of_two_at_most(self.workers.count)
        self.store = StateStore(self.layout.words, self.layout.bits, threads=shards)
        self.stats = Stats()
        self.coverage = np.zeros(len(self.actions), dtype=np.int64)
        self.witnessed: dict[str, int | None] = {name: None for name in spec.witnesses}
        self.init_idx = np.zeros(0, dtype=np.int64)
        self._edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (src, dst, action)
        self._t0 = time.perf_counter()
        self._last_progress = self._t0
        # Where the time and memory went, for benchmarks (bench/explore.py): seconds per
        # phase and the process's peak RSS in MB at the end of each.
        self.phase_seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def trace_to(self, idx: int) -> list[TraceStep]:
        """The stored (shortest) path from an initial state to state ``idx``."""
        store = self.store
        return [
            TraceStep(None if a < 0 else self.labels[a], store.rows[i].copy()) for i, a in store.path(idx)
        ]

    # ------------------------------------------------------------------ the search
    def run(self) -> Result:
        self._t0 = self._last_progress = time.perf_counter()
        outcome, violation = Outcome.PASS, None
        limit: tuple[Limit, int | float | None] | None = None
        try:
            frontier = self.init()
            while len(frontier):
                limit = self.limits.reached(self.stats.distinct, self.elapsed())
                if limit is not None:
                    outcome = Outcome.LIMIT
                    break
                frontier = self.expand(frontier)
                self._report_progress()
        except _Stop as stop:
            outcome, violation = Outcome.VIOLATION, stop.violation
        except KeyboardInterrupt:
            outcome, limit = Outcome.INTERRUPTED, (Limit.INTERRUPTED, None)
        finally:
            self.workers.close()
        self.phase_seconds["search"] = self.elapsed()
        self.peak_mb["search"] = _rss_mb()
        return self.finish(outcome, violation, limit)

    def init(self) -> np.ndarray:
        """Store the initial states (canonical, within the constraint) as level 1 and
        check them; return their indices (the first frontier)."""
        spec = self.spec
        init = spec.init_rows()
        if spec.canonical is not None:
            init = spec.canonical(init)
        if spec.constraint is not None:
            init = init[as_mask(spec.constraint(View(self.layout, init)), len(init))]
        self.stats.generated = len(init)
        new_idx, _ = self.store.add(init, np.full(len(init), -1), np.full(len(init), -1, dtype=np.int32))
        self.init_idx = new_idx.copy()
        self.stats.distinct = self.store.n
        self.stats.depth = 1 if len(new_idx) else 0
        self.check(new_idx, 1)
        return new_idx

    def expand(self, frontier: np.ndarray) -> np.ndarray:
        """Explore one level (a contiguous block of the store); return the next one."""
        lo, hi = int(frontier[0]), int(frontier[-1]) + 1
        view = View(self.layout, self.store.rows[lo:hi])
        n = hi - lo
        enabled = np.zeros(n, dtype=bool)
        level = _Level([], [], [])
        fire = self.workers.in_order(lambda k: self._fire(k, view, lo), len(self.actions), n)
        for k, fired in enumerate(fire):
            if len(fired.idx) == 0:
                continue
            enabled |= fired.guard
            self.coverage[k] += len(fired.idx)
            if fired.stop is not None:
                raise fired.stop
            assert fired.succ is not None and fired.parents is not None
            self.stats.generated += len(fired.succ)
            level.rows.append(fired.succ)
            level.parents.append(fired.parents)
            level.actions.append(np.full(len(fired.succ), k, dtype=np.int32))
        if self.spec.check_deadlock:
            self.deadlocks(view, enabled, lo)
        rows, parents, acts = level.arrays(self.layout.words)
        new_idx, targets = self.store.add(rows, parents, acts, want_targets=self.want_edges)
        if self.want_edges and targets is not None:
            self._log_edges(parents, targets, acts)
        stats = self.stats
        stats.distinct = self.store.n
        if len(new_idx):
            stats.depth += 1
        stats.frontier = len(new_idx)
        stats.seconds = self.elapsed()
        self.check(new_idx, stats.depth)
        return new_idx

    def _log_edges(self, src: np.ndarray, dst: np.ndarray, act: np.ndarray) -> None:
        """Keep one level's edges as int32 (12 bytes an edge); self-loops only when the
        graph itself is wanted (liveness ignores them)."""
        if not self.keep_graph:
            moves = src != dst
            src, dst, act = src[moves], dst[moves], act[moves]
        self._edges.append((src.astype(np.int32), dst.astype(np.int32), act.astype(np.int32)))

    def _fire(self, k: int, view: View, lo: int) -> _Fired:
        """Action ``k`` on the level ``view`` (may run on a worker thread: it changes
        nothing; the caller counts coverage and generated states in action order)."""
        a = self.actions[k]
        g = as_mask(a.guard(view), len(view))
        idx = np.flatnonzero(g)
        if len(idx) == 0:
            return _Fired(g, idx)
        try:
            succ, parents = self._successors(a, view, idx, lo)
        except _Stop as stop:
            return _Fired(g, idx, stop=stop)
        return _Fired(g, idx, succ, parents)

    def _successors(self, a: Action, view: View, idx: np.ndarray, lo: int) -> tuple[np.ndarray, np.ndarray]:
        """The successors by action ``a`` of the level's rows ``idx`` (those enabling it),
        after its action invariants, the constraint and the symmetry reduction, with their
        parents' store indices."""
        spec = self.spec
        sub = view if len(idx) == len(view) else view.subset(idx)
        t = Next(sub)
        a.effect(sub, t)
        succ = apply(self.layout, sub.rows, t.assigned, a.label)
        if spec.action_invariants:
            self._check_step(a, sub, succ, lo + idx)
        parents = lo + idx
        if spec.constraint is not None:
            keep = as_mask(spec.constraint(View(self.layout, succ)), len(succ))
            succ, parents = succ[keep], parents[keep]
        if spec.canonical is not None:
            succ = spec.canonical(succ)
        return succ, parents

    def _check_step(self, a: Action, before: View, succ: np.ndarray, parents: np.ndarray) -> None:
        after = View(self.layout, succ)
        for name, pred in self.spec.action_invariants.items():
            ok = as_mask(pred(before, after, a), len(parents))
            if not ok.all():
                j = int(np.flatnonzero(~ok)[0])
                tr = self.trace_to(int(parents[j]))
                tr.append(TraceStep(a.label, succ[j].copy()))
                raise _Stop(
                    Violation(
                        name,
                        PropertyKind.ACTION_INVARIANT,
                        f"action invariant {name} is violated by {a.label}",
                        tr,
                    )
                )

    def deadlocks(self, view: View, enabled: np.ndarray, lo: int) -> None:
        """Stop at the first state of the level that enables no action and is no end state."""
        dead = ~enabled
        if dead.any() and self.spec.end_states is not None:
            dead &= ~as_mask(self.spec.end_states(view), len(view))
        if dead.any():
            bad = lo + int(np.flatnonzero(dead)[0])
            trace = self.trace_to(bad)
            raise _Stop(Violation("Deadlock", PropertyKind.DEADLOCK, "deadlock: no action is enabled", trace))

    def check(self, new_idx: np.ndarray, depth: int) -> None:
        """Invariants and witnesses on the states just added (a contiguous block)."""
        if len(new_idx) == 0:
            return
        rows = self.store.rows[new_idx[0] : new_idx[-1] + 1]
        v = View(self.layout, rows)
        for name, pred in self.spec.invariants.items():
            ok = as_mask(pred(v), len(rows))
            if not ok.all():
                bad = int(new_idx[0] + np.flatnonzero(~ok)[0])
                trace = self.trace_to(bad)
                raise _Stop(Violation(name, PropertyKind.INVARIANT, f"invariant {name} is violated", trace))
        for name, pred in self.spec.witnesses.items():
            if self.witnessed[name] is None and as_mask(pred(v), len(rows)).any():
                self.witnessed[name] = depth

    def _report_progress(self) -> None:
        if self.progress is not None and time.perf_counter() - self._last_progress >= self.progress_every:
            self.progress(self.stats)
            self._last_progress = time.perf_counter()

    # ------------------------------------------------------------------ the result
    def graph(self) -> StateGraph:
        def cat(part: int, dtype: type) -> np.ndarray:
            arrays = [e[part] for e in self._edges]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)

        return StateGraph(
            rows=self.store.rows[: self.store.n],
            src=cat(0, np.int64),
            dst=cat(1, np.int64),
            act=cat(2, np.int32),
            labels=self.labels,
            families=self.families,
            init=self.init_idx,
        )

    def finish(
        self, outcome: Outcome, violation: Violation | None, limit: tuple[Limit, int | float | None] | None
    ) -> Result:
        """The result: on a complete search also the witnesses' and liveness verdicts."""
        spec = self.spec
        self.stats.distinct = self.store.n
        self.stats.seconds = self.elapsed()
        self.stats.fingerprints = self.store.fingerprints
        self.stats.fingerprint_collisions = self.store.collisions
        self.store.drop_table()
        graph = self.graph() if self.keep_graph and outcome == Outcome.PASS else None
        properties = {
            name: "ok" if outcome == Outcome.PASS else "unchecked"
            for name in list(spec.invariants) + list(spec.action_invariants)
        }
        if outcome == Outcome.PASS:
            violation = self._witness_verdicts(properties)
            if violation is None and self.check_liveness and spec.liveness:
                t = time.perf_counter()
                try:
                    violation = self._liveness_verdicts(graph, properties)
                except _OverMemory:
                    outcome, limit = Outcome.LIMIT, (Limit.MEMORY, self.limits.memory_mb)
                    for name in spec.liveness:
                        properties.setdefault(name, "unchecked")
                self.phase_seconds["liveness"] = time.perf_counter() - t
                self.peak_mb["liveness"] = _rss_mb()
        if violation is not None:
            outcome = Outcome.VIOLATION
            properties[violation.name] = "violated"
            explain(spec, violation)
        fam: dict[str, int] = {}
        for k, f in enumerate(self.families):
            fam[f] = fam.get(f, 0) + int(self.coverage[k])
        return Result(
            spec_name=spec.name,
            layout=self.layout,
            outcome=outcome,
            stats=self.stats,
            violation=violation,
            coverage={label: int(self.coverage[k]) for k, label in enumerate(self.labels)},
            family_coverage=fam,
            witnesses=self.witnessed,
            limit=None if limit is None else limit[0],
            limit_bound=None if limit is None else limit[1],
            properties=properties,
            graph_data=graph if self.keep_graph else None,
        )

    def _witness_verdicts(self, properties: dict[str, str]) -> Violation | None:
        violation = None
        for name, depth in self.witnessed.items():
            if depth is None:
                properties[name] = "violated"
                violation = violation or Violation(
                    name,
                    PropertyKind.WITNESS,
                    f"witness {name}: no reachable state satisfies it (the check would pass vacuously)",
                )
            else:
                properties[name] = "ok"
        return violation

    def _memory(self, phase: str) -> None:
        """Raise :class:`_OverMemory` when the process is over ``--max-memory`` now."""
        if self.limits.memory_mb is not None and current_rss_mb() > self.limits.memory_mb:
            raise _OverMemory(phase)

    def _liveness_verdicts(self, graph: StateGraph | None, properties: dict[str, str]) -> Violation | None:
        self._memory("liveness")
        if graph is not None:
            live = LiveGraph.of(graph)
        else:
            rows = self.store.rows[: self.store.n]
            live = LiveGraph.build(rows, self._edges, self.labels, self.families, self.init_idx, release=True)
        self._memory("liveness")
        violation = None
        for name, prop in self.spec.liveness.items():
            lv = liveness_violation(self.spec, live, name, prop, self._memory)
            properties[name] = "ok" if lv is None else "violated"
            if lv is not None and violation is None:
                violation = lv
        return violation


def explore(
    spec: Spec,
    *,
    limits: Limits = NO_LIMITS,
    keep_graph: bool = False,
    check_liveness: bool = True,
    progress: Progress | None = None,
    progress_every: float = 3.0,
    workers: int | None = None,
) -> Result:
    """Explore every reachable state of ``spec`` and check its properties (``workers``
    threads, default one per core; the result does not depend on it)."""
    return Explorer(
        spec,
        limits=limits,
        keep_graph=keep_graph,
        check_liveness=check_liveness,
        progress=progress,
        progress_every=progress_every,
        workers=workers,
    ).run()
