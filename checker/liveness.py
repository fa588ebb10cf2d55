"""Liveness under weak fairness, on the edge arrays of the reachable graph.

``<>P`` fails iff some behaviour avoids P forever.  On a finite graph such a behaviour ends
in one of two ways, both confined to the *region* of states reachable from an initial
state through not-P states only:

* it stops (stutters forever) in a state where no fair action is enabled: weak fairness
  asks nothing there;
* it cycles forever through a strongly connected component C of the region, and C is
  fair: for every fairness group A (an action family, or one action instance named by its
  label), A is taken on some edge inside C or A is disabled in some state of C.  (If A
  were enabled in every state of C and never taken inside it, every cycle in C would
  violate WF_A, so checking whole SCCs is exact.)

``P ~> Q`` is the same search started from every reachable ``P /\\ ~Q`` state within the
not-Q states.  Following TLA+'s ``WF_vars(A)``, steps that leave the state unchanged
(self-loops) neither count as taking A nor as A being enabled.  Actions whose successors
a state constraint discarded are not seen (as in TLC, liveness under a constraint is
checked on the constrained graph).

The graph is compressed once (:class:`LiveGraph`, rows of out-edges by source) and every
property is then a few linear passes of compiled code (``checker/digraph.py``): the
fairness groups as bits per action and per state, a breadth-first search for the region,
its components that hold a cycle (a topological peel, then Tarjan's algorithm on what is
left) and which of them are fair.  Only building the lasso of a counterexample walks
states one by one in Python, and only inside one component.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from checker import digraph
from checker.lang.layout import View
from checker.lang.spec import Eventually, LeadsTo, Liveness, Predicate, Spec, as_mask
from checker.result import PropertyKind, StateGraph, TraceStep, Violation

MemoryCheck = Callable[[str], None]  # raises when the process is over its memory limit


def _no_check(phase: str) -> None:
    return None


def _mask(spec: Spec, rows: np.ndarray, pred: Predicate) -> np.ndarray:
    out = np.zeros(len(rows), dtype=bool)
    step = 1 << 18
    for lo in range(0, len(rows), step):
        part = rows[lo : lo + step]
        out[lo : lo + len(part)] = as_mask(pred(View(spec.layout, part)), len(part))
    return out


@dataclass
class LiveGraph:
    """The reachable graph as rows of state-changing out-edges (self-loops dropped: they
    neither take nor enable an action under ``WF_vars``), shared by every property."""

    rows: np.ndarray
    indptr: np.ndarray
    col: np.ndarray
    act: np.ndarray
    labels: list[str]
    families: list[str]
    init: np.ndarray
    _head: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        rows: np.ndarray,
        edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        labels: list[str],
        families: list[str],
        init: np.ndarray,
        release: bool = False,
    ) -> LiveGraph:
        """From batches of (source, destination, action) edges (``release``: emptying the
        list as they are placed, see :func:`checker.digraph.compress`)."""
        indptr, col, eact = digraph.compress(len(rows), edges, release)
        return cls(rows, indptr, col, eact, labels, families, init)

    @classmethod
    def of(cls, graph: StateGraph) -> LiveGraph:
        edges = [(graph.src, graph.dst, graph.act)]
        return cls.build(graph.rows, edges, graph.labels, graph.families, graph.init)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.col.nbytes + self.act.nbytes)

    def out(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int(self.indptr[s]), int(self.indptr[s + 1])
        return self.col[lo:hi], self.act[lo:hi]

    def head(self, target: int) -> list[int]:
        """A shortest path from an initial state to ``target`` over every edge (the BFS
        from the initial states is computed once)."""
        if self._head is None:
            everywhere = np.ones(self.n, dtype=bool)
            self._head = digraph.bfs(self.indptr, self.col, np.unique(self.init), everywhere)[1]
        return _path_from_pred(self._head, target)

    def label(self, s: int, d: int) -> str:
        """The action of the first edge found from ``s`` to ``d``."""
        cols, acts = self.out(s)
        return self.labels[int(acts[np.flatnonzero(cols == d)[0]])]


def _fairness(graph: LiveGraph, name: str, prop: Liveness) -> tuple[np.ndarray, np.ndarray]:
    """``amask[a]``: the fairness groups action ``a`` belongs to, as bits (64 a word);
    ``full``: every group's bit."""
    # Each name in ``fair`` is one weak-fairness group: an action family (every instance
    # of it together) or one action instance by its full label ("KernelStep(dev=0)").
    words = max(1, (len(prop.fair) + 63) // 64)
    amask = np.zeros((len(graph.labels), words), dtype=np.uint64)
    full = np.zeros(words, dtype=np.uint64)
    for j, group in enumerate(prop.fair):
        bit = np.uint64(1 << (j % 64))
        member = [f == group or lab == group for f, lab in zip(graph.families, graph.labels, strict=True)]
        if not any(member):
            raise ValueError(f"liveness {name}: fairness names {group!r}, which is no action family or label")
        amask[np.flatnonzero(member), j // 64] |= bit
        full[j // 64] |= bit
    return amask, full


def _sources(spec: Spec, graph: LiveGraph, prop: Liveness, goal: np.ndarray) -> np.ndarray:
    if isinstance(prop, Eventually):
        return np.unique(graph.init[~goal[graph.init]])
    if isinstance(prop, LeadsTo):
        return np.flatnonzero(_mask(spec, graph.rows, prop.trigger) & ~goal)
    raise TypeError(prop)  # pragma: no cover - typing guard


def _nearest(candidates: np.ndarray, dist: np.ndarray) -> int:
    return int(candidates[np.argmin(dist[candidates])])


def check_liveness(
    spec: Spec,
    graph: StateGraph | LiveGraph,
    name: str,
    prop: Liveness,
    memory: MemoryCheck = _no_check,
) -> Violation | None:
    g = graph if isinstance(graph, LiveGraph) else LiveGraph.of(graph)
    goal = _mask(spec, g.rows, prop.predicate)
    sources = _sources(spec, g, prop, goal)
    if len(sources) == 0:
        return None
    amask, full = _fairness(g, name, prop)
    en = digraph.enabled_groups(g.indptr, g.act, amask)
    memory("liveness")
    # Region: reachable from the sources through not-goal states.
    dist, pred = digraph.bfs(g.indptr, g.col, sources, ~goal)
    region = dist >= 0
    del goal
    memory("liveness")

    # (1) stuttering: a region state where no fair action is enabled
    stuck = region & ~(en & full).any(axis=1) if prop.fair else region
    best: tuple[int, str, int] | None = None  # (dist, kind, state)
    if stuck.any():
        s = _nearest(np.flatnonzero(stuck), dist)
        best = (int(dist[s]), "stutter", s)
    del stuck
    # (2) fair SCCs of the region
    comp = digraph.components(g.indptr, g.col, region)
    memory("liveness")
    if comp.max(initial=-1) >= 0:
        ok = digraph.fair_components(g.indptr, g.col, g.act, comp, en, amask, full)
        fair = np.flatnonzero(region & (comp >= 0) & ok[np.maximum(comp, 0)])
        if len(fair):
            s = _nearest(fair, dist)
            if best is None or dist[s] < best[0]:
                best = (int(dist[s]), "cycle", s)
    if best is None:
        return None

    _, kind, entry = best
    prefix = _path_from_pred(pred, entry)  # source ... entry, all in region
    trace = _to_trace(g, g.head(prefix[0])[:-1] + prefix)  # init ... source for LeadsTo
    what = f"eventually {name}" if isinstance(prop, Eventually) else f"{name} (leads-to)"
    fair_txt = ", ".join(prop.fair) if prop.fair else "no action"
    if kind == "stutter":
        return Violation(
            name,
            PropertyKind.LIVENESS,
            f"liveness {what} is violated: the behaviour can stop here forever "
            f"(weak fairness on {fair_txt}; none of them is enabled)",
            trace,
            loop_start=len(trace) - 1,
            stutter=True,
        )
    loop_start = len(trace) - 1
    cycle = _fair_cycle(g, comp, en, amask, entry)
    trace.extend(_to_trace(g, cycle)[1:])
    return Violation(
        name,
        PropertyKind.LIVENESS,
        f"liveness {what} is violated: the behaviour can repeat the cycle from step "
        f"{loop_start + 1} forever while staying fair (weak fairness on {fair_txt})",
        trace,
        loop_start=loop_start,
    )


def _path_from_pred(pred: np.ndarray, target: int) -> list[int]:
    path = [int(target)]
    while pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    path.reverse()
    return path


def _to_trace(graph: LiveGraph, states: list[int]) -> list[TraceStep]:
    out = [TraceStep(None, graph.rows[states[0]].copy())]
    for a, b in zip(states, states[1:], strict=False):
        out.append(TraceStep(graph.label(a, b), graph.rows[b].copy()))
    return out


def _fair_cycle(
    graph: LiveGraph, comp: np.ndarray, en: np.ndarray, amask: np.ndarray, entry: int
) -> list[int]:
    """A cycle from ``entry`` through its component that takes or sees disabled each
    fairness group."""
    c = comp[entry]
    members = np.flatnonzero(comp == c)
    succ: dict[int, list[int]] = {}
    taken_by: dict[int, set[tuple[int, int]]] = {}
    ngroups = amask.shape[1] * 64
    for s in members.tolist():
        cols, acts = graph.out(s)
        inside = comp[cols] == c
        succ[s] = cols[inside].tolist()
        for d, a in zip(cols[inside].tolist(), acts[inside].tolist(), strict=True):
            for j in _bits(amask[a], ngroups):
                taken_by.setdefault(j, set()).add((s, d))

    def enabled(s: int, j: int) -> bool:
        return bool(en[s, j // 64] >> np.uint64(j % 64) & np.uint64(1))

    def walk(start: int, goal: Callable[[int, int], bool]) -> list[int]:
        prev = {start: start}
        q = deque([start])
        while q:
            u = q.popleft()
            for v in succ.get(u, []):
                if v not in prev:
                    prev[v] = u
                    if goal(u, v):
                        path = [v]
                        while path[-1] != start:
                            path.append(prev[path[-1]])
                        return path[::-1]
                    q.append(v)
                elif goal(u, v):
                    path = [v, u]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return path[::-1]
        return [start]

    def into_disabled(j: int) -> Callable[[int, int], bool]:
        return lambda u, v: not enabled(v, j)

    def along(taken: set[tuple[int, int]]) -> Callable[[int, int], bool]:
        return lambda u, v: (u, v) in taken

    path = [entry]
    full = np.bitwise_or.reduce(amask, axis=0)
    for j in _bits(full, ngroups):
        if any(not enabled(m, j) for m in members.tolist()):
            if not enabled(path[-1], j):
                continue
            seg = walk(path[-1], into_disabled(j))
        else:
            seg = walk(path[-1], along(taken_by.get(j, set())))
        path.extend(seg[1:])
    back = walk(path[-1], lambda u, v: v == entry)
    path.extend(back[1:])
    if len(path) == 1:  # entry has a successor in the component; close the loop
        path.extend(walk(entry, lambda u, v: v == entry)[1:])
    return path


def _bits(words: np.ndarray, limit: int) -> list[int]:
    return [j for j in range(limit) if int(words[j // 64]) >> (j % 64) & 1]
