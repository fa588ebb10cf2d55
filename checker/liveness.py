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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from checker.lang.layout import View
from checker.lang.spec import Eventually, LeadsTo, Liveness, Predicate, Spec, as_mask
from checker.result import PropertyKind, StateGraph, TraceStep, Violation


def _mask(spec: Spec, graph: StateGraph, pred: Predicate) -> np.ndarray:
    out = np.zeros(len(graph.rows), dtype=bool)
    step = 1 << 18
    for lo in range(0, len(graph.rows), step):
        rows = graph.rows[lo : lo + step]
        out[lo : lo + len(rows)] = as_mask(pred(View(spec.layout, rows)), len(rows))
    return out


@dataclass
class _Edges:
    """Edges (source, destination, action id) of the graph or of a part of it."""

    src: np.ndarray
    dst: np.ndarray
    act: np.ndarray

    def select(self, keep: np.ndarray) -> _Edges:
        return _Edges(self.src[keep], self.dst[keep], self.act[keep])


def _fairness(graph: StateGraph, name: str, prop: Liveness, edges: _Edges) -> tuple[np.ndarray, np.ndarray]:
    """``member[j, a]``: action id ``a`` belongs to fairness group ``j``; ``enabled[s, j]``:
    group ``j`` has a non-stuttering step from state ``s``."""
    # Each name in ``fair`` is one weak-fairness group: an action family (every instance
    # of it together) or one action instance by its full label ("KernelStep(dev=0)").
    member = np.zeros((len(prop.fair), len(graph.labels)), dtype=bool)
    for j, group in enumerate(prop.fair):
        member[j] = [f == group or lab == group for f, lab in zip(graph.families, graph.labels, strict=True)]
        if not member[j].any():
            raise ValueError(f"liveness {name}: fairness names {group!r}, which is no action family or label")
    enabled = np.zeros((len(graph.rows), len(prop.fair)), dtype=bool)
    for j in range(len(prop.fair)):
        sel = member[j, edges.act]
        enabled[edges.src[sel], j] = True
    return member, enabled


def _region(n: int, sources: np.ndarray, edges: _Edges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The states reachable from ``sources`` over ``edges`` (a mask), the BFS predecessor
    of each (the sources' is the virtual root ``n``) and their distance from the sources."""
    s_all = np.concatenate([edges.src, np.full(len(sources), n)])
    d_all = np.concatenate([edges.dst, sources])
    adj = csr_matrix((np.ones(len(s_all), dtype=np.int8), (s_all, d_all)), shape=(n + 1, n + 1))
    order, pred = breadth_first_order(adj, n, directed=True, return_predecessors=True)
    region = np.zeros(n + 1, dtype=bool)
    region[order] = True
    return region[:n], pred, _bfs_dist(order, pred, n)


def _fair_components(
    n: int, region: np.ndarray, edges: _Edges, member: np.ndarray, enabled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The strongly connected components of the region (``comp`` per state) and which of
    them are fair: they have an internal edge, and every fairness group is taken inside
    or disabled in one of their states."""
    sub = csr_matrix((np.ones(len(edges.src), dtype=np.int8), (edges.src, edges.dst)), shape=(n, n))
    ncomp, comp = connected_components(sub, directed=True, connection="strong")
    internal = comp[edges.src] == comp[edges.dst]
    sizes = np.bincount(comp[region], minlength=ncomp)
    has_edge = np.zeros(ncomp, dtype=bool)
    has_edge[comp[edges.src[internal]]] = True
    ok = has_edge & (sizes > 0)
    for j in range(member.shape[0]):
        taken = np.zeros(ncomp, dtype=bool)
        taken[comp[edges.src[internal & member[j, edges.act]]]] = True
        disabled = np.zeros(ncomp, dtype=bool)
        disabled[comp[np.flatnonzero(region & ~enabled[:, j])]] = True
        ok &= taken | disabled
    return comp, ok


def _nearest(candidates: np.ndarray, dist: np.ndarray) -> int:
    return int(candidates[np.argmin(dist[candidates])])


def check_liveness(spec: Spec, graph: StateGraph, name: str, prop: Liveness) -> Violation | None:
    n = len(graph.rows)
    goal = _mask(spec, graph, prop.predicate)
    if isinstance(prop, Eventually):
        sources = graph.init[~goal[graph.init]]
    elif isinstance(prop, LeadsTo):
        sources = np.flatnonzero(_mask(spec, graph, prop.trigger) & ~goal)
    else:  # pragma: no cover - typing guard
        raise TypeError(prop)
    if len(sources) == 0:
        return None
    edges = _Edges(graph.src, graph.dst, graph.act).select(graph.src != graph.dst)  # no stuttering
    member, enabled = _fairness(graph, name, prop, edges)
    # Region: reachable from the sources through not-goal states.
    inner = edges.select(~goal[edges.src] & ~goal[edges.dst])
    region, pred, dist = _region(n, sources, inner)

    # (1) stuttering: a region state where no fair action is enabled
    stuck = region & ~enabled.any(axis=1) if prop.fair else region.copy()
    best: tuple[int, str, int] | None = None  # (dist, kind, state)
    if stuck.any():
        s = _nearest(np.flatnonzero(stuck), dist)
        best = (int(dist[s]), "stutter", s)
    # (2) fair SCCs of the region
    cycle_edges = inner.select(region[inner.src] & region[inner.dst])
    if len(cycle_edges.src):
        comp, ok = _fair_components(n, region, cycle_edges, member, enabled)
        if ok.any():
            s = _nearest(np.flatnonzero(region & ok[comp]), dist)
            if best is None or dist[s] < best[0]:
                best = (int(dist[s]), "cycle", s)
    if best is None:
        return None

    _, kind, entry = best
    prefix = _path_from_pred(pred, entry, n)  # source ... entry, all in region
    head = _bfs_tree_path(graph, prefix[0])  # init ... source (any path) for LeadsTo
    trace = _to_trace(graph, head[:-1] + prefix)
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
    cycle = _fair_cycle(comp, cycle_edges, member, enabled, entry)
    trace.extend(_to_trace(graph, cycle)[1:])
    return Violation(
        name,
        PropertyKind.LIVENESS,
        f"liveness {what} is violated: the behaviour can repeat the cycle from step "
        f"{loop_start + 1} forever while staying fair (weak fairness on {fair_txt})",
        trace,
        loop_start=loop_start,
    )


def _bfs_dist(order: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    dist = np.full(n + 1, np.iinfo(np.int64).max, dtype=np.int64)
    dist[order[0]] = 0
    for v in order[1:]:
        dist[v] = dist[pred[v]] + 1
    return dist[:n]


def _path_from_pred(pred: np.ndarray, target: int, root: int) -> list[int]:
    path = [target]
    while True:
        p = int(pred[path[-1]])
        if p == root or p < 0:
            break
        path.append(p)
    path.reverse()
    return path


def _bfs_tree_path(graph: StateGraph, target: int) -> list[int]:
    """A shortest path from an initial state to ``target`` over all edges."""
    n = len(graph.rows)
    adj = csr_matrix(
        (
            np.ones(len(graph.src) + len(graph.init), dtype=np.int8),
            (
                np.concatenate([graph.src, np.full(len(graph.init), n)]),
                np.concatenate([graph.dst, graph.init]),
            ),
        ),
        shape=(n + 1, n + 1),
    )
    _, pred = breadth_first_order(adj, n, directed=True, return_predecessors=True)
    return _path_from_pred(pred, target, n)


def _edge_action(graph: StateGraph, s: int, d: int) -> str:
    sel = np.flatnonzero((graph.src == s) & (graph.dst == d))
    return graph.labels[int(graph.act[sel[0]])]


def _to_trace(graph: StateGraph, states: list[int]) -> list[TraceStep]:
    out = [TraceStep(None, graph.rows[states[0]].copy())]
    for a, b in zip(states, states[1:], strict=False):
        out.append(TraceStep(_edge_action(graph, a, b), graph.rows[b].copy()))
    return out


def _fair_cycle(
    comp: np.ndarray, edges: _Edges, member: np.ndarray, enabled: np.ndarray, entry: int
) -> list[int]:
    """A cycle from ``entry`` through the component that takes or sees disabled each fair family."""
    c = comp[entry]
    inside = edges.select((comp[edges.src] == c) & (comp[edges.dst] == c))
    es, ed, ea = inside.src, inside.dst, inside.act
    succ: dict[int, list[int]] = {}
    for s, d in zip(es.tolist(), ed.tolist(), strict=True):
        succ.setdefault(s, []).append(d)
    members = set(es.tolist()) | set(ed.tolist())

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
        return lambda u, v: not enabled[v, j]

    def along(taken: set[tuple[int, int]]) -> Callable[[int, int], bool]:
        return lambda u, v: (u, v) in taken

    path = [entry]
    for j in range(member.shape[0]):
        if any(not enabled[m, j] for m in members):
            if not enabled[path[-1], j]:
                continue
            seg = walk(path[-1], into_disabled(j))
        else:
            taken = {
                (s, d)
                for s, d, a in zip(es.tolist(), ed.tolist(), ea.tolist(), strict=True)
                if member[j, a]
            }
            seg = walk(path[-1], along(taken))
        path.extend(seg[1:])
    back = walk(path[-1], lambda u, v: v == entry)
    path.extend(back[1:])
    if len(path) == 1:  # entry has a successor in the component; close the loop
        path.extend(walk(entry, lambda u, v: v == entry)[1:])
    return path
