"""Breadth-first explicit-state exploration, one BFS level at a time, in chunks.

Each level (the frontier: a contiguous block of the visited set) is cut into chunks of
rows.  :meth:`Explorer.expand` turns one chunk into :class:`Candidates`: every action's
guard evaluated on the whole chunk, its effect applied to the enabled rows, its action
invariants checked on those transitions, the state constraint and the symmetry reduction
applied, and the chunk's deadlocks found; it reads the visited set but never changes it, so
chunks can be expanded on worker threads.  :meth:`Explorer.merge` deduplicates the
candidates against the visited set and checks invariants and witnesses on the new states.
Within a chunk the actions run on a pool of threads (``workers``, checker/parallel.py),
their results taken in action order, so the candidates are those of one thread.
Limits (states, seconds, memory), Ctrl-C and progress are looked at between chunks; chunks
are sized to take a fraction of a second.

However a level is cut, the result is the one a whole-level expansion gives: candidates are
ordered by (action, frontier row), each new state keeps the first candidate in that order
as its parent, and at the end of the level its new states are put in that order
(:meth:`~checker.store.StateStore.renumber`).  So states, parents, edges and traces do not
depend on the chunk sizes (which depend on the machine's speed), and every counterexample
is a shortest one.

Every violated property is reported, each with its own shortest counterexample: the
search goes on past a violation (TLC's ``-continue``, Apalache's ``--max-error``) and keeps,
per property, the first violation in the order a level-at-a-time search meets them:
within a level, action invariants (action, then row), then deadlocks (row), then invariants
of the new states (property, then state).  With ``first=True`` the search stops at the end
of the level holding the first violation and reports only it, with the figures a search
that stops right there has: for an action invariant the states of the level being
expanded are not stored yet and only the successors of the actions before the violating
one are counted, for a deadlock every successor of the level is counted but none is
stored, for an invariant the level holding the state is complete.

A successor that assigns a variable a value its field cannot hold is not stored; it is a
violation of the spec's type invariant (``Spec.type_invariant``, TLA+'s ``TypeOK``), with
the value shown in the counterexample's last step.

Statistics follow TLC: *distinct* states are the states stored; *generated* states count
the initial states plus every successor computed (duplicates and self-loops included;
successors discarded by the constraint are not counted); *depth* is the number of BFS
levels, the initial states being level 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import numpy as np

from checker.compiled import Built, Kernel, Successors, Uncompiled, build
from checker.interrupt import INTERRUPT
from checker.lang.layout import Next, View, apply_checked
from checker.lang.spec import Predicate, Spec, as_mask
from checker.limits import NO_LIMITS as NO_LIMITS
from checker.limits import Limits as Limits
from checker.limits import current_rss_mb as current_rss_mb
from checker.limits import peak_rss_mb
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
from checker.search_records import Candidates as Candidates
from checker.search_records import Fired as _Fired
from checker.search_records import Found as _Found
from checker.search_records import Level as _Level
from checker.search_records import step_violations, type_error
from checker.store import StateStore

Progress = Callable[[Stats], None]

#: ``compile``: "auto" compiles the actions once a level has this many states.
COMPILE_ROWS = 1 << 14
COMPILE_MODES = ("auto", "on", "off")

#: Wall time one chunk should take: limits, Ctrl-C and progress are seen between chunks.
CHUNK_SECONDS = 0.2
MIN_CHUNK_ROWS = 16
MAX_CHUNK_ROWS = 1 << 20
FIRST_CHUNK_ROWS = 256

# Where in a level a violation is met (the second element of _Found.order).
STEP, DEADLOCK, STATE = 0, 1, 2
AFTER_SEARCH = 1 << 62  # the "level" of witnesses and liveness: met once the graph is complete
_NO_KEY = np.iinfo(np.int64).max


class _OverMemory(Exception):
    """The memory limit was reached after the search (building the graph, liveness)."""


class Explorer:
    """One exploration of one spec: :meth:`init` stores and checks the initial states,
    :meth:`level` explores one BFS level chunk by chunk (:meth:`expand`, then
    :meth:`merge`), :meth:`finish` turns what was found into a :class:`Result` (witnesses
    and liveness need the whole graph).  :meth:`run` does it all; :meth:`failed` gives the
    result of a run that raised.
    """

    def __init__(
        self,
        spec: Spec,
        *,
        limits: Limits = NO_LIMITS,
        keep_graph: bool = False,
        check_liveness: bool = True,
        progress: Progress | None = None,
        progress_every: float = 1.5,
        first: bool = False,
        workers: int | None = None,
        compile: str = "auto",
    ) -> None:
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {compile!r}")
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
        self.first = first
        # Threads: a chunk's actions in parallel (checker/parallel.py) and the hash table
        # in shards; the result is the same for any number (see parallel.py).
        self.workers = Workers(workers if workers is not None else available_cores())
        shards = power_of_two_at_most(self.workers.count)
        self.store = StateStore(self.layout.words, self.layout.bits, threads=shards)
        self.stats = Stats()
        self.coverage = np.zeros(len(self.actions), dtype=np.int64)
        self.witnessed: dict[str, int | None] = {name: None for name in spec.witnesses}
        self.init_idx = np.zeros(0, dtype=np.int64)
        self.violations: dict[str, tuple[tuple[int, ...], Violation]] = {}
        self.stopped: tuple[Limit, int | float | None] | None = None  # a limit or Ctrl-C
        self.complete = False  # every reachable state was explored
        self.decided = False  # stopped early: every property was violated already
        self._figures_fixed = False  # first=True set the figures of where the search stopped
        self._rows_expanded = 0
        self._inv_names = list(spec.invariants)
        self._edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (src, dst, action)
        self._chunk_rows = FIRST_CHUNK_ROWS
        self._t0 = time.perf_counter()
        self._last_progress = self._t0
        self._rss0 = current_rss_mb()
        # Where the time and memory went, for benchmarks (bench/explore.py): seconds per
        # phase and the process's peak RSS in MB at the end of each.
        self.phase_seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        # Compiled actions (checker/compiled.py): "on" now, "auto" once a level reaches
        # COMPILE_ROWS states (a smaller search does not repay a compile), "off" never.
        self.compile = compile
        self.built: Built | None = None
        self._kernel: Kernel | None = None
        if compile == "on":
            self._build_kernel()

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
        self._rss0 = current_rss_mb()
        with INTERRUPT.polling():  # from here to the result, a Ctrl-C loses nothing found
            try:
                frontier: np.ndarray | None = self.init()
                while frontier is not None and len(frontier):
                    frontier = self.level(frontier)
                self.complete = frontier is not None and self.stopped is None
            except KeyboardInterrupt:
                self.stopped = (Limit.INTERRUPTED, None)
            finally:
                self.workers.close()
            self.phase_seconds["search"] = self.elapsed()
            self.peak_mb["search"] = peak_rss_mb()
            return self.finish()

    def failed(self, exc: BaseException) -> Result:
        """The result of a run that raised ``exc``: :attr:`Outcome.ERROR`, the figures so far."""
        result = self._result(Outcome.ERROR, {})
        result.error = f"{type(exc).__name__}: {exc}"
        return result

    def init(self) -> np.ndarray | None:
        """Store the initial states (canonical, within the constraint) as level 1 and
        check them; return their indices (the first frontier), or None when the search
        stops there (``first``: a violation)."""
        spec = self.spec
        init = spec.init_rows()
        if spec.canonical is not None:
            init = spec.canonical(init)
        if spec.constraint is not None:
            init = init[as_mask(spec.constraint(View(self.layout, init)), len(init))]
        self.stats.generated = len(init)
        level = self._open_level(0, 0, 0)
        new_idx, _ = self.store.add(init, np.full(len(init), -1), np.full(len(init), -1, dtype=np.int32))
        self.init_idx = new_idx.copy()
        self.stats.distinct = self.store.n
        self.stats.depth = 1 if len(new_idx) else 0
        self.check(new_idx, level)
        return self._close_checks(level, new_idx)

    def _open_level(self, index: int, lo: int, hi: int) -> _Level:
        s = self.stats
        n = len(self.actions)
        return _Level(
            index, lo, hi, Stats(s.distinct, s.generated, s.depth), self.coverage.copy(),
            np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
        )

    def level(self, frontier: np.ndarray) -> np.ndarray | None:
        """Explore one level (a contiguous block of the store), chunk by chunk; return the
        next one, or None when the search stops (a limit, Ctrl-C, ``first``)."""
        lo, hi = int(frontier[0]), int(frontier[-1]) + 1
        if self.compile == "auto" and self.built is None and hi - lo >= COMPILE_ROWS:
            self._build_kernel()
        level = self._open_level(self.stats.depth, lo, hi)
        self.store.begin_block()
        c = lo
        while c < hi:
            if self._should_stop():
                self._close_partial(level)
                return None
            c1 = min(hi, c + self._chunk_size())
            t = time.perf_counter()
            self.merge(self.expand(c, c1, lo, hi), level, whole=c == lo and c1 == hi)
            self._tune(c1 - c, time.perf_counter() - t)
            self._rows_expanded += c1 - c
            self.stats.frontier = (hi - c1) + (self.store.n - hi)
            c = c1
            self._report_progress()
        return self._close_level(level)

    def _should_stop(self) -> bool:
        if INTERRUPT.requested:
            raise KeyboardInterrupt
        self.stats.seconds = self.elapsed()
        growth = current_rss_mb() - self._rss0 if self.limits.memory_mb is not None else 0.0
        reached = self.limits.reached(self.stats.distinct, self.stats.seconds, growth)
        if reached is not None:
            self.stopped = reached
        return reached is not None

    def _chunk_size(self) -> int:
        size = self._chunk_rows
        if self.limits.states is not None and self._rows_expanded:
            # Close to a --max-states bound take fewer rows, so that the search stops near it.
            per_row = max(self.stats.distinct / self._rows_expanded, 1e-3)  # new states a row gives
            left = self.limits.states - self.stats.distinct
            size = min(size, max(MIN_CHUNK_ROWS, math.ceil(left / per_row)))
        return size

    def _tune(self, rows: int, seconds: float) -> None:
        """Size the next chunk to take about CHUNK_SECONDS (growing at most 4x a chunk)."""
        if rows <= 0:
            return
        want = int(rows * CHUNK_SECONDS / max(seconds, 1e-6))
        self._chunk_rows = max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, want, 4 * self._chunk_rows))

    # ------------------------------------------------------------------ one chunk
    def expand(self, c0: int, c1: int, lo: int, hi: int) -> Candidates:
        """The successors of the frontier rows ``store[c0:c1]`` (the frontier is
        ``store[lo:hi]``), with what was met on the way; reads the store, changes nothing."""
        view = View(self.layout, self.store.rows[c0:c1])
        n, n_actions = c1 - c0, len(self.actions)
        enabled = np.zeros(n, dtype=bool)
        parts: list[tuple[np.ndarray, np.ndarray, int]] = []
        cand = Candidates(
            np.zeros((0, self.layout.words), dtype=np.uint64), np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int32), lo, hi - lo,
            np.zeros(n_actions, dtype=np.int64), np.zeros(n_actions, dtype=np.int64),
        )
        each: Iterable[_Fired]
        whole = None  # the kernel's successors, when every one of them is kept as it came
        if self._kernel is not None:
            each, whole = self._fire_compiled(view, c0, lo)
        else:
            each = self.workers.in_order(lambda k: self._fire(k, view, c0, lo), n_actions, n)
        for k, fired in enumerate(each):
            enabled |= fired.enabled
            cand.coverage[k] = int(np.count_nonzero(fired.enabled))
            cand.generated[k] = len(fired.succ)
            cand.found += fired.found
            if len(fired.succ) and whole is None:
                parts.append((fired.succ, fired.parents, k))
        if whole is not None:  # already in (action, row) order: no copy
            counts = np.diff(whole.offsets)
            cand.rows, cand.parents = whole.rows, whole.parents
            cand.actions = np.repeat(np.arange(n_actions, dtype=np.int32), counts)
        elif parts:
            cand.rows = np.concatenate([p[0] for p in parts])
            cand.parents = np.concatenate([p[1] for p in parts])
            ids = np.array([p[2] for p in parts], dtype=np.int32)
            cand.actions = np.repeat(ids, [len(p[0]) for p in parts])
        if self.spec.check_deadlock:
            cand.found += self._deadlocks(view, enabled, c0, lo)
        return cand

    def _fire(self, k: int, view: View, c0: int, lo: int) -> _Fired:
        """Action ``k`` on one chunk (``view`` = store rows from ``c0``): its guard, the
        successors kept and what was met (a value that does not fit its field, an action
        invariant)."""
        a = self.actions[k]
        g = as_mask(a.guard(view), len(view))
        idx = np.flatnonzero(g)
        none = np.zeros(0, dtype=np.int64)
        if len(idx) == 0:
            return _Fired(g, np.zeros((0, self.layout.words), dtype=np.uint64), none, [])
        sub = view if len(idx) == len(view) else view.subset(idx)
        t = Next(sub)
        a.effect(sub, t)
        succ, overflow = apply_checked(self.layout, sub.rows, t.assigned, a.label)
        parents = c0 + idx
        found: list[_Found] = []
        if overflow:
            where = (self.stats.depth, STEP, k, -1)
            found.append(type_error(self.spec, k, parents, succ, overflow, where, lo))
            fits = ~np.logical_or.reduce([bad for bad, _ in overflow.values()])
            sub, succ, parents = sub.subset(np.flatnonzero(fits)), succ[fits], parents[fits]
        return self._kept(k, g, sub, succ, parents, found, lo)

    def _build_kernel(self) -> None:
        self.built = build(self.spec)
        self._kernel = self.built.kernel
        self.phase_seconds["compile"] = self.built.seconds
        if self._kernel is None and self.compile == "on":
            raise Uncompiled(self.built.reason)

    def _fire_compiled(self, view: View, c0: int, lo: int) -> tuple[list[_Fired], Successors | None]:
        """Every action on one chunk by the compiled kernel, and its successors when all are
        kept unchanged; an action that assigned a value its field cannot hold is done again
        by :meth:`_fire`, which reports it."""
        assert self._kernel is not None
        succ = self._kernel.successors(view.rows, self.workers)
        succ.parents += c0
        fired, en = [], succ.enabled.view(bool)
        for k in range(self._kernel.actions):
            a, b = int(succ.offsets[k]), int(succ.offsets[k + 1])
            fired.append(self._fire(k, view, c0, lo) if succ.overflow[k] else
                         self._kept(k, en[k], None, succ.rows[a:b], succ.parents[a:b], [], lo))
        spec = self.spec
        intact = not succ.overflow.any() and spec.constraint is None and spec.canonical is None
        return fired, (succ if intact else None)

    def _kept(
        self, k: int, g: np.ndarray, sub: View | None, succ: np.ndarray, parents: np.ndarray,
        found: list[_Found], lo: int,
    ) -> _Fired:
        """An action's successors on a chunk after its action invariants, the constraint
        and the symmetry reduction (``sub``: the states they come from, None to read them
        from the store by ``parents``)."""
        spec = self.spec
        if spec.action_invariants and len(succ):
            if sub is None:
                sub = View(self.layout, self.store.rows[parents])
            found += step_violations(self.spec, k, sub, succ, parents, (self.stats.depth, STEP), lo,
                                     skip=self.violations)
        if spec.constraint is not None:
            keep = as_mask(spec.constraint(View(self.layout, succ)), len(succ))
            succ, parents = succ[keep], parents[keep]
        if spec.canonical is not None:
            succ = spec.canonical(succ)
        return _Fired(g, succ, parents, found)

    def _deadlocks(self, view: View, enabled: np.ndarray, c0: int, lo: int) -> list[_Found]:
        """The chunk's first state that enables no action and is no end state."""
        if "Deadlock" in self.violations:
            return []
        dead = ~enabled
        if dead.any() and self.spec.end_states is not None:
            dead &= ~as_mask(self.spec.end_states(view), len(view))
        if not dead.any():
            return []
        bad = c0 + int(np.flatnonzero(dead)[0])
        return [_Found("Deadlock", PropertyKind.DEADLOCK, "deadlock: no action is enabled",
                       (self.stats.depth, DEADLOCK, bad - lo), bad)]

    def merge(self, cand: Candidates, level: _Level, whole: bool = False) -> np.ndarray:
        """Store a chunk's candidates, keep for each new state of the level the first
        candidate (in whole-level order) that reaches it, check the new states.  ``whole``:
        the chunk is the whole level, so the store's own order (candidate order) is the
        level's and no first candidates need be kept."""
        store = self.store
        new_idx, targets = store.add(cand.rows, cand.parents, cand.actions, want_targets=True)
        assert targets is not None
        level.chunks += 1
        if not whole:
            level.minkey = np.concatenate([level.minkey, np.full(len(new_idx), _NO_KEY, dtype=np.int64)])
            mine = np.flatnonzero(targets >= level.hi)
            np.minimum.at(level.minkey, targets[mine] - level.hi, cand.keys(mine))
        if self.keep_graph:
            level.edges.append((cand.parents, targets, cand.actions, cand.keys()))
        elif self.want_edges:
            # Liveness reads each state's row of state-changing edges in action order.  A
            # chunk holds every edge of its sources, in that order, so its edges are kept as
            # they come (int32, self-loops dropped), never sorted across the level: the
            # rows are the same and no level-wide copies are made.
            moves = cand.parents != targets
            level.live_edges.append(
                (cand.parents[moves].astype(np.int32), targets[moves].astype(np.int32), cand.actions[moves])
            )
        level.found += cand.found
        level.generated += cand.generated
        level.coverage += cand.coverage
        self.coverage += cand.coverage
        self.stats.generated += int(cand.generated.sum())
        self.stats.distinct = store.n
        self.check(new_idx, level)
        return new_idx

    def check(self, new_idx: np.ndarray, level: _Level) -> None:
        """Invariants and witnesses on states just added (a contiguous block)."""
        if len(new_idx) == 0:
            return
        rows = self.store.rows[new_idx[0] : new_idx[-1] + 1]
        v = View(self.layout, rows)
        for i, (name, pred) in enumerate(self.spec.invariants.items()):
            if name in self.violations:
                continue
            ok = self._holds(pred, v)
            if not ok.all():
                level.bad_states.append((i, name, new_idx[0] + np.flatnonzero(~ok)))
        depth = level.index + 1
        for name, pred in self.spec.witnesses.items():
            if self.witnessed[name] is None and self._holds(pred, v).any():
                self.witnessed[name] = depth

    def _holds(self, pred: Predicate, v: View) -> np.ndarray:
        """A state predicate on a batch, compiled when the kernel has it."""
        if self._kernel is not None and self._kernel.has(pred):
            return self._kernel.holds(pred, v.rows)
        return as_mask(pred(v), len(v))

    # ------------------------------------------------------------------ end of a level
    def _close_level(self, level: _Level) -> np.ndarray | None:
        """Put the level's new states in whole-level order, keep its edges, record what it
        found; return the next frontier, or None when the search stops here."""
        store, base = self.store, level.hi
        k_new = store.n - base
        moved = None
        if level.chunks > 1 and k_new:
            order = np.argsort(level.minkey, kind="stable")
            key = level.minkey[order]
            if np.any(order[1:] < order[:-1]):
                moved = store.renumber(base, order)
            store.parent[base : store.n] = level.lo + key % level.size
            store.action[base : store.n] = (key // level.size).astype(store.action.dtype)
        if level.edges or level.live_edges:
            self._keep_edges(level, moved)
        self.stats.distinct = store.n
        if k_new:
            self.stats.depth += 1
        new_idx = np.arange(base, store.n, dtype=np.int64)
        self.stats.frontier = k_new
        return self._close_checks(level, new_idx, moved)

    def _keep_edges(self, level: _Level, moved: np.ndarray | None) -> None:
        for src, dst, act in level.live_edges:
            if moved is not None:
                new = dst >= level.hi
                dst[new] = level.hi + moved[dst[new] - level.hi]
            self._edges.append((src, dst, act))
        if not level.edges:
            return
        src = np.concatenate([e[0] for e in level.edges])
        dst = np.concatenate([e[1] for e in level.edges])
        act = np.concatenate([e[2] for e in level.edges])
        if moved is not None:
            new = dst >= level.hi
            dst[new] = level.hi + moved[dst[new] - level.hi]
        if level.chunks > 1:
            order = np.argsort(np.concatenate([e[3] for e in level.edges]), kind="stable")
            src, dst, act = src[order], dst[order], act[order]
        self._edges.append((src.astype(np.int32), dst.astype(np.int32), act.astype(np.int32)))

    def _close_checks(
        self, level: _Level, new_idx: np.ndarray, moved: np.ndarray | None = None
    ) -> np.ndarray | None:
        found = list(level.found)
        for i, name, idx in level.bad_states:
            pos = idx - level.hi if moved is None else moved[idx - level.hi]
            found.append(_Found(name, PropertyKind.INVARIANT, f"invariant {name} is violated",
                                (level.index, STATE, i, int(pos.min())), level.hi + int(pos.min())))
        if not found:
            return new_idx
        found.sort(key=lambda f: f.order)
        if self.first and self.stopped is None:
            self._record(found[0])
            self._first_figures(level, found[0])
            return None
        for f in found:
            self._record(f)
        if self._all_decided():
            self.decided = True
            return None
        return new_idx

    def _close_partial(self, level: _Level) -> None:
        """A level cut short by a limit: keep what it found (each a shortest counterexample
        of its property, though not necessarily the first of the level), its states as
        they are."""
        self._close_checks(level, np.zeros(0, dtype=np.int64))

    def _record(self, f: _Found) -> None:
        if f.name in self.violations and self.violations[f.name][0] <= f.order:
            return
        trace = self.trace_to(f.state)
        if f.succ is not None:
            trace.append(TraceStep(self.labels[f.action], f.succ, f.overflow))
        self.violations[f.name] = (f.order, Violation(f.name, f.kind, f.message, trace))

    def _first_figures(self, level: _Level, f: _Found) -> None:
        """The figures of a search that stops where ``f`` is met (see the module's doc)."""
        self._figures_fixed = True
        if f.order[1] == STATE:
            return
        start, s = level.start, self.stats
        s.distinct, s.depth = start.distinct, start.depth
        if f.order[1] == STEP:
            k = f.order[2]
            s.generated = start.generated + int(level.generated[:k].sum())
            upto_k = np.arange(len(self.actions)) <= k
            self.coverage = level.start_coverage + np.where(upto_k, level.coverage, 0)

    def _all_decided(self) -> bool:
        """Every property is violated already, so nothing is left to search for."""
        spec = self.spec
        names = [*spec.invariants, *spec.action_invariants, *(["Deadlock"] if spec.check_deadlock else [])]
        undecided = bool(spec.witnesses) or (self.check_liveness and bool(spec.liveness))
        return not undecided and all(n in self.violations for n in names)

    def _report_progress(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.progress is not None and (force or now - self._last_progress >= self.progress_every):
            self.stats.seconds = self.elapsed()
            self.progress(self.stats)
            self._last_progress = now

    # ------------------------------------------------------------------ the result
    def graph(self) -> StateGraph:
        return StateGraph.of_chunks(self.store.rows[: self.store.n], self._edges, self.labels,
                                    self.families, self.init_idx)

    def finish(self) -> Result:
        """The result: on a complete search also the witnesses' and liveness verdicts.

        A Ctrl-C here never loses the search: :meth:`run` calls this inside its polled
        region (the request is only noted), except the liveness checks, which may be cut
        anywhere and then stay unchecked; a request noted elsewhere leaves a complete
        result, and the front end stops after it."""
        spec = self.spec
        if not self._figures_fixed:
            self.stats.distinct = self.store.n
        self.stats.seconds = self.elapsed()
        self.stats.fingerprints = self.store.fingerprints
        self.stats.fingerprint_collisions = self.store.collisions
        self.stats.compiled = self._kernel is not None
        self.stats.compile_note = self.built.reason if self.built is not None else ""
        self.store.drop_table()
        properties = {name: "ok" if self.complete else "unchecked"
                      for name in [*spec.invariants, *spec.action_invariants]}
        graph = self.graph() if self.keep_graph and self.complete else None
        if self.complete:
            self._witness_verdicts(properties)
            if self.check_liveness and spec.liveness and not (self.first and self.violations):
                t = time.perf_counter()
                for name in spec.liveness:
                    properties[name] = "unchecked"  # until decided; a Ctrl-C may come first
                try:
                    with INTERRUPT.raising():
                        self._liveness_verdicts(graph, properties)
                except KeyboardInterrupt:
                    self.stopped = (Limit.INTERRUPTED, None)
                except _OverMemory:
                    self.stopped = (Limit.MEMORY, self.limits.memory_mb)
                self.phase_seconds["liveness"] = time.perf_counter() - t
                self.peak_mb["liveness"] = peak_rss_mb()
        self.stats.seconds = self.elapsed()
        outcome = self._outcome()
        result = self._result(outcome, properties)
        result.graph_data = graph if self.keep_graph else None
        return result

    def _outcome(self) -> Outcome:
        if self.stopped is not None and self.stopped[0] is Limit.INTERRUPTED:
            return Outcome.INTERRUPTED
        if self.violations:
            return Outcome.VIOLATION
        return Outcome.PASS if self.stopped is None else Outcome.LIMIT

    def _result(self, outcome: Outcome, properties: dict[str, str]) -> Result:
        violations = [v for _, v in sorted(self.violations.values(), key=lambda ov: ov[0])]
        if self.first:
            violations = violations[:1]
        for v in violations:
            properties[v.name] = "violated"
            explain(self.spec, v)
        fam: dict[str, int] = {}
        for k, f in enumerate(self.families):
            fam[f] = fam.get(f, 0) + int(self.coverage[k])
        return Result(
            spec_name=self.spec.name,
            layout=self.layout,
            outcome=outcome,
            stats=self.stats,
            violations=violations,
            coverage={label: int(self.coverage[k]) for k, label in enumerate(self.labels)},
            family_coverage=fam,
            witnesses=self.witnessed,
            limit=None if self.stopped is None else self.stopped[0],
            limit_bound=None if self.stopped is None else self.stopped[1],
            properties=properties,
        )

    def _witness_verdicts(self, properties: dict[str, str]) -> None:
        """Once the whole graph is known: a witness no reachable state satisfies is
        violated (met after every safety property)."""
        for i, (name, depth) in enumerate(self.witnessed.items()):
            if depth is not None:
                properties[name] = "ok"
                continue
            message = f"witness {name}: no reachable state satisfies it (the check would pass vacuously)"
            self.violations[name] = ((AFTER_SEARCH, 0, i), Violation(name, PropertyKind.WITNESS, message))

    def _memory(self, phase: str) -> None:
        """Raise :class:`_OverMemory` when this exploration's memory grew over
        ``--max-memory`` (current RSS, as during the search)."""
        limit = self.limits.memory_mb
        if limit is not None and current_rss_mb() - self._rss0 > limit:
            raise _OverMemory(phase)

    def _liveness_verdicts(self, graph: StateGraph | None, properties: dict[str, str]) -> None:
        """Each liveness property on the whole graph, unless a limit or Ctrl-C comes first
        (then they stay unchecked)."""
        self.stats.phase = "liveness"
        self._report_progress(force=True)
        try:
            self._memory("liveness")
            if graph is not None:
                live = LiveGraph.of(graph)
            else:
                rows = self.store.rows[: self.store.n]
                live = LiveGraph.build(rows, self._edges, self.labels, self.families, self.init_idx,
                                       release=True)
            self._memory("liveness")
            for i, (name, prop) in enumerate(self.spec.liveness.items()):
                if self._should_stop():
                    return
                lv = liveness_violation(self.spec, live, name, prop, self._memory)
                properties[name] = "ok" if lv is None else "violated"
                if lv is not None:
                    self.violations[name] = ((AFTER_SEARCH, 1, i), lv)
        except KeyboardInterrupt:
            self.stopped = (Limit.INTERRUPTED, None)


def explore(
    spec: Spec,
    *,
    limits: Limits = NO_LIMITS,
    keep_graph: bool = False,
    check_liveness: bool = True,
    progress: Progress | None = None,
    progress_every: float = 1.5,
    first: bool = False,
    workers: int | None = None,
    compile: str = "auto",
) -> Result:
    """Explore every reachable state of ``spec`` and check its properties: every violated
    property with its own shortest counterexample, or (``first``) only the first
    (``workers`` threads, default one per core; ``compile``: whether the actions run as
    compiled C, "auto", "on" or "off"; the result depends on neither)."""
    return Explorer(spec, limits=limits, keep_graph=keep_graph, check_liveness=check_liveness,
                    progress=progress, progress_every=progress_every, first=first, workers=workers,
                    compile=compile).run()
