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
from checker.lang.spec import Spec, as_mask
from checker.result import Result, Stats, TraceStep, Violation
from checker.store import StateStore

Progress = Callable[[Stats], None]


@dataclass
class StateGraph:
    """The reachable graph as arrays: states (rows) and edges (src, dst, action id)."""

    rows: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    act: np.ndarray
    labels: list[str]
    families: list[str]  # family of each action id
    init: np.ndarray  # indices of initial states

    def to_networkx(self, layout):  # -> networkx.DiGraph
        import networkx as nx

        g = nx.MultiDiGraph()
        for i in range(len(self.rows)):
            g.add_node(i, **{"state": layout.unpack(self.rows[i]), "init": bool(np.isin(i, self.init))})
        for s, d, a in zip(self.src.tolist(), self.dst.tolist(), self.act.tolist(), strict=True):
            g.add_edge(s, d, action=self.labels[a], family=self.families[a])
        return g


class _Stop(Exception):
    def __init__(self, violation: Violation) -> None:
        self.violation = violation


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def explore(
    spec: Spec,
    *,
    max_states: int | None = None,
    max_seconds: float | None = None,
    max_memory_mb: float | None = None,
    keep_graph: bool = False,
    check_liveness: bool = True,
    progress: Progress | None = None,
    progress_every: float = 3.0,
) -> Result:
    """Explore every reachable state of ``spec`` and check its properties."""
    layout = spec.layout
    actions = list(spec.actions)
    labels = [a.label for a in actions]
    families = [a.family for a in actions]
    want_edges = keep_graph or (check_liveness and bool(spec.liveness))
    store = StateStore(layout.words, layout.bits)
    stats = Stats()
    coverage = np.zeros(len(actions), dtype=np.int64)
    witnessed: dict[str, int | None] = {name: None for name in spec.witnesses}
    edges_src: list[np.ndarray] = []
    edges_dst: list[np.ndarray] = []
    edges_act: list[np.ndarray] = []
    t0 = time.perf_counter()
    last_progress = t0
    outcome = "pass"
    limit: str | None = None
    violation: Violation | None = None

    def trace_to(idx: int) -> list[TraceStep]:
        return [TraceStep(None if a < 0 else labels[a], store.rows[i].copy()) for i, a in store.path(idx)]

    def check_states(new_idx: np.ndarray, depth: int) -> None:
        if len(new_idx) == 0:
            return
        rows = store.rows[new_idx[0] : new_idx[-1] + 1]
        v = View(layout, rows)
        for name, pred in spec.invariants.items():
            ok = as_mask(pred(v), len(rows))
            if not ok.all():
                bad = int(new_idx[0] + np.flatnonzero(~ok)[0])
                raise _Stop(Violation(name, "invariant", f"invariant {name} is violated", trace_to(bad)))
        for name, pred in spec.witnesses.items():
            if witnessed[name] is None and as_mask(pred(v), len(rows)).any():
                witnessed[name] = depth

    def elapsed() -> float:
        return time.perf_counter() - t0

    try:
        init = spec.init_rows()
        if spec.canonical is not None:
            init = spec.canonical(init)
        if spec.constraint is not None:
            init = init[as_mask(spec.constraint(View(layout, init)), len(init))]
        stats.generated = len(init)
        new_idx, _ = store.add(init, np.full(len(init), -1), np.full(len(init), -1, dtype=np.int32))
        init_idx = new_idx.copy()
        stats.distinct = store.n
        stats.depth = 1 if len(new_idx) else 0
        check_states(new_idx, 1)
        frontier = new_idx
        while len(frontier):
            if max_states is not None and stats.distinct >= max_states:
                outcome, limit = "limit", f"--max-states {max_states}"
                break
            if max_seconds is not None and elapsed() > max_seconds:
                outcome, limit = "limit", f"--max-seconds {max_seconds:g}"
                break
            if max_memory_mb is not None and _rss_mb() > max_memory_mb:
                outcome, limit = "limit", f"memory above {max_memory_mb:g} MB"
                break
            lo, hi = int(frontier[0]), int(frontier[-1]) + 1  # a level is a contiguous block
            rows = store.rows[lo:hi]
            n = hi - lo
            view = View(layout, rows)
            enabled = np.zeros(n, dtype=bool)
            cand_rows: list[np.ndarray] = []
            cand_par: list[np.ndarray] = []
            cand_act: list[np.ndarray] = []
            for k, a in enumerate(actions):
                g = as_mask(a.guard(view), n)
                idx = np.flatnonzero(g)
                if len(idx) == 0:
                    continue
                enabled |= g
                sub = view if len(idx) == n else view.subset(idx)
                t = Next(sub)
                a.effect(sub, t)
                succ = apply(layout, sub.rows, t.assigned, a.label)
                coverage[k] += len(idx)
                if spec.action_invariants:
                    after = View(layout, succ)
                    for name, pred in spec.action_invariants.items():
                        ok = as_mask(pred(sub, after, a), len(idx))
                        if not ok.all():
                            j = int(np.flatnonzero(~ok)[0])
                            tr = trace_to(lo + int(idx[j]))
                            tr.append(TraceStep(a.label, succ[j].copy()))
                            raise _Stop(
                                Violation(
                                    name,
                                    "action-invariant",
                                    f"action invariant {name} is violated by {a.label}",
                                    tr,
                                )
                            )
                parents = lo + idx
                if spec.constraint is not None:
                    keep = as_mask(spec.constraint(View(layout, succ)), len(succ))
                    succ, parents = succ[keep], parents[keep]
                if spec.canonical is not None:
                    succ = spec.canonical(succ)
                stats.generated += len(succ)
                cand_rows.append(succ)
                cand_par.append(parents)
                cand_act.append(np.full(len(succ), k, dtype=np.int32))
            if spec.check_deadlock:
                dead = ~enabled
                if dead.any() and spec.end_states is not None:
                    dead &= ~as_mask(spec.end_states(view), n)
                if dead.any():
                    bad = lo + int(np.flatnonzero(dead)[0])
                    raise _Stop(
                        Violation("Deadlock", "deadlock", "deadlock: no action is enabled", trace_to(bad))
                    )
            if cand_rows:
                allrows = np.concatenate(cand_rows)
                allpar = np.concatenate(cand_par)
                allact = np.concatenate(cand_act)
            else:
                allrows = np.zeros((0, layout.words), dtype=np.uint64)
                allpar = np.zeros(0, dtype=np.int64)
                allact = np.zeros(0, dtype=np.int32)
            new_idx, targets = store.add(allrows, allpar, allact, want_targets=want_edges)
            if want_edges and targets is not None:
                edges_src.append(allpar)
                edges_dst.append(targets)
                edges_act.append(allact)
            stats.distinct = store.n
            if len(new_idx):
                stats.depth += 1
            stats.frontier = len(new_idx)
            stats.seconds = elapsed()
            check_states(new_idx, stats.depth)
            frontier = new_idx
            if progress is not None and time.perf_counter() - last_progress >= progress_every:
                progress(stats)
                last_progress = time.perf_counter()
    except _Stop as stop:
        outcome, violation = "violation", stop.violation
    except KeyboardInterrupt:
        outcome, limit = "interrupted", "interrupted (Ctrl-C)"
    stats.distinct = store.n
    stats.seconds = elapsed()

    graph = None
    if want_edges and outcome == "pass":
        graph = StateGraph(
            rows=store.rows[: store.n].copy(),
            src=np.concatenate(edges_src) if edges_src else np.zeros(0, dtype=np.int64),
            dst=np.concatenate(edges_dst) if edges_dst else np.zeros(0, dtype=np.int64),
            act=np.concatenate(edges_act) if edges_act else np.zeros(0, dtype=np.int32),
            labels=labels,
            families=families,
            init=init_idx,
        )

    properties: dict[str, str] = {}
    for name in list(spec.invariants) + list(spec.action_invariants):
        properties[name] = "ok" if outcome == "pass" else "unchecked"
    if outcome == "pass":
        for name, depth in witnessed.items():
            if depth is None:
                properties[name] = "violated"
                violation = violation or Violation(
                    name,
                    "witness",
                    f"witness {name}: no reachable state satisfies it (the check would pass vacuously)",
                )
            else:
                properties[name] = "ok"
    if outcome == "pass" and violation is None and check_liveness and spec.liveness:
        from checker.liveness import check_liveness as _live

        assert graph is not None
        for name, prop in spec.liveness.items():
            lv = _live(spec, graph, name, prop)
            properties[name] = "ok" if lv is None else "violated"
            if lv is not None and violation is None:
                violation = lv
    if violation is not None:
        outcome = "violation"
        properties[violation.name] = "violated"

    cov = {labels[k]: int(coverage[k]) for k in range(len(actions))}
    fam: dict[str, int] = {}
    for k, f in enumerate(families):
        fam[f] = fam.get(f, 0) + int(coverage[k])
    return Result(
        spec_name=spec.name,
        layout=layout,
        outcome=outcome,
        stats=stats,
        violation=violation,
        coverage=cov,
        family_coverage=fam,
        witnesses=witnessed,
        limit=limit,
        properties=properties,
        graph_data=graph if keep_graph else None,
    )
