"""The compiled graph algorithms of liveness against networkx and scipy on random graphs,
and --max-memory in the liveness phase."""

from __future__ import annotations

from collections import deque
from typing import Any

import networkx as nx
import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from checker import digraph
from checker import explore as explore_module
from checker.explore import Limits, explore
from checker.result import Limit, Outcome
from tests.test_explore import toggler


def _random_graph(seed: int, n: int = 300, m: int = 700) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m).astype(np.int32)
    dst = np.where(rng.random(m) < 0.7, (src + rng.integers(-3, 4, m)) % n, rng.integers(0, n, m)).astype(
        np.int32
    )
    return src, dst, rng.integers(0, 5, m).astype(np.int32)


@pytest.mark.parametrize("seed", range(8))
def test_components_are_networkx_strongly_connected_components(seed: int) -> None:
    n = 300
    src, dst, act = _random_graph(seed, n)
    indptr, col, _ = digraph.compress(n, [(src, dst, act)])
    inside = np.random.default_rng(seed + 100).random(n) < 0.8
    comp = digraph.components(indptr, col, inside)
    g = nx.DiGraph()
    g.add_nodes_from(np.flatnonzero(inside).tolist())
    g.add_edges_from(  # compress drops self-loops
        (int(s), int(d)) for s, d in zip(src, dst, strict=True) if inside[s] and inside[d] and s != d
    )
    ours = [frozenset(np.flatnonzero(comp == c).tolist()) for c in range(comp.max() + 1)]
    cyclic = {frozenset(c) for c in nx.strongly_connected_components(g) if len(c) > 1}
    assert set(ours) == cyclic and len(ours) == len(cyclic)
    on_cycle = set().union(*cyclic)
    assert all((comp[s] >= 0) == (s in on_cycle) for s in range(n))
    assert (comp[~inside] == -1).all()


def test_components_of_an_acyclic_graph_are_none() -> None:
    """A DAG (every edge to a larger state) has no component with a cycle: the peel takes
    every state; one back edge makes exactly the states between its ends one component."""
    n = 200
    rng = np.random.default_rng(7)
    src = rng.integers(0, n - 1, 600).astype(np.int32)
    dst = (src + rng.integers(1, 5, 600)).clip(max=n - 1).astype(np.int32)
    chain = np.arange(n - 1, dtype=np.int32)
    src, dst = np.concatenate([src, chain]), np.concatenate([dst, chain + 1])
    act = np.zeros(len(src), dtype=np.int32)
    everywhere = np.ones(n, dtype=bool)
    indptr, col, _ = digraph.compress(n, [(src, dst, act)])
    assert (digraph.components(indptr, col, everywhere) == -1).all()
    indptr, col, _ = digraph.compress(n, [(np.append(src, 150), np.append(dst, 40), np.append(act, 0))])
    comp = digraph.components(indptr, col, everywhere)
    assert comp.max() == 0 and set(np.flatnonzero(comp == 0).tolist()) == set(range(40, 151))


@pytest.mark.parametrize("seed", range(8))
def test_bfs_visits_as_scipy_did(seed: int) -> None:
    n = 300
    src, dst, act = _random_graph(seed, n)
    indptr, col, _ = digraph.compress(
        n, [(src[:400], dst[:400], act[:400]), (src[400:], dst[400:], act[400:])]
    )
    sources = np.array([5, 17, 3], dtype=np.int64)
    allowed = np.random.default_rng(seed).random(n) < 0.85
    allowed[sources] = True
    dist, pred = digraph.bfs(indptr, col, np.unique(sources), allowed)
    keep = (src != dst) & allowed[src] & allowed[dst]
    s_all = np.concatenate([src[keep], np.full(3, n)])
    d_all = np.concatenate([dst[keep], sources])
    adj = csr_matrix((np.ones(len(s_all), dtype=np.int8), (s_all, d_all)), shape=(n + 1, n + 1))
    order, spred = breadth_first_order(adj, n, directed=True, return_predecessors=True)
    reached = np.zeros(n + 1, dtype=bool)
    reached[order] = True
    assert ((dist >= 0) == reached[:n]).all()
    spred = spred[:n].copy()
    spred[spred == n] = -1
    assert (pred[dist >= 0] == spred[dist >= 0]).all()


def test_compress_keeps_each_row_in_the_order_edges_were_found() -> None:
    src = np.array([2, 0, 2, 1, 2, 2], dtype=np.int32)
    dst = np.array([1, 2, 0, 1, 2, 1], dtype=np.int32)
    act = np.arange(6, dtype=np.int32)
    indptr, col, eact = digraph.compress(3, [(src, dst, act)])
    assert indptr.tolist() == [0, 1, 1, 4]  # the self-loops 1->1 and 2->2 are dropped
    assert col.tolist() == [2, 1, 0, 1] and eact.tolist() == [1, 0, 2, 5]


def test_max_memory_covers_the_liveness_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    # Over the limit only once the search is done (this spec's growth, measured from its
    # start, jumps when liveness builds its graph): liveness must stop with the memory limit.
    after = {"search": False}
    real_build = explore_module.LiveGraph.build

    def build(*args: Any, **kwargs: Any) -> Any:
        after["search"] = True
        return real_build(*args, **kwargs)

    monkeypatch.setattr(explore_module.LiveGraph, "build", build)
    monkeypatch.setattr(explore_module, "current_rss_mb", lambda: 1e9 if after["search"] else 0.0)
    r = explore(toggler(("Finish",)), limits=Limits(memory_mb=1e8))
    assert r.outcome == Outcome.LIMIT and r.limit == Limit.MEMORY and r.limit_bound == 1e8
    assert r.properties["Finishes"] == "unchecked"


def test_a_self_loop_is_a_cycle_of_one_state() -> None:
    """compress drops self-loops, but components counts one when given it: 0 -> 0 is a
    component, 1 -> 0 and 2 -> 1 are on no cycle."""
    indptr = np.array([0, 1, 2, 3], dtype=np.int64)
    col = np.array([0, 0, 1], dtype=np.int32)
    comp = digraph.components(indptr, col, np.ones(3, dtype=bool))
    assert comp.tolist() == [0, -1, -1]


def _layered_graph(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A graph shaped like a search's: states numbered level by level, most edges into
    the next level, some within a level or back to an earlier one (levels of thousands
    of states, so that the passes sort with their radix path, over more than 16 bits)."""
    rng = np.random.default_rng(seed)
    bounds = np.unique(np.concatenate([[0, n], rng.integers(1, n, 40)]))
    src_parts, dst_parts = [], []
    for lo, hi, nxt in zip(bounds[:-2], bounds[1:-1], bounds[2:], strict=True):
        s = rng.integers(lo, hi, 3 * (hi - lo))
        d = rng.integers(hi, nxt, len(s))
        same = rng.random(len(s)) < 0.12
        d[same] = rng.integers(lo, hi, int(same.sum()))
        back = rng.random(len(s)) < 0.01
        d[back] = rng.integers(0, hi, int(back.sum()))
        src_parts.append(s)
        dst_parts.append(d)
    src = np.concatenate(src_parts).astype(np.int32)
    dst = np.concatenate(dst_parts).astype(np.int32)
    return src, dst, np.zeros(len(src), dtype=np.int32)


def _queue_bfs(
    indptr: np.ndarray, col: np.ndarray, sources: list[int], allowed: np.ndarray
) -> tuple[list[int], list[int]]:
    """The textbook FIFO search the level-at-a-time one must equal."""
    n = len(indptr) - 1
    dist, pred = [-1] * n, [-1] * n
    queue: deque[int] = deque()
    for s in sources:
        if dist[s] < 0 and allowed[s]:
            dist[s] = 0
            queue.append(s)
    ip, cl, ok = indptr.tolist(), col.tolist(), allowed.tolist()
    while queue:
        u = queue.popleft()
        for v in sorted(cl[ip[u] : ip[u + 1]]):
            if dist[v] < 0 and ok[v]:
                dist[v], pred[v] = dist[u] + 1, u
                queue.append(v)
    return dist, pred


@pytest.mark.parametrize("seed", range(3))
def test_bfs_a_level_at_a_time_is_the_queue_s_search(seed: int) -> None:
    """Distances and predecessors equal a FIFO queue's, sources taken in the order given
    (duplicates and forbidden ones skipped), on levels large enough to be radix-sorted."""
    n = 120_000
    src, dst, act = _layered_graph(seed, n)
    indptr, col, _ = digraph.compress(n, [(src, dst, act)])
    rng = np.random.default_rng(seed)
    allowed = rng.random(n) < 0.97
    sources = [int(s) for s in rng.integers(0, 3000, 25)]
    sources += sources[:3]
    dist, pred = digraph.bfs(indptr, col, np.array(sources, dtype=np.int64), allowed)
    want_dist, want_pred = _queue_bfs(indptr, col, sources, allowed)
    reached = dist[dist >= 0]
    assert dist.max() > 20 and len(reached) > n // 3  # deep, with levels past the insertion sort's
    assert np.bincount(reached).max() > 2048 and int(np.flatnonzero(dist >= 0).max()) > 1 << 16
    assert dist.tolist() == want_dist
    assert pred.tolist() == want_pred


@pytest.mark.parametrize("seed", range(3))
def test_components_on_a_large_graph_are_scipy_strong_components(seed: int) -> None:
    """The peel's rounds (states freed behind the sweep, radix-sorted) leave exactly the
    states on cycles, checked against scipy's strongly connected components."""
    n = 120_000
    src, dst, act = _layered_graph(seed, n)
    keep = np.random.default_rng(seed).random(len(src)) < (0.35 if seed else 1.0)  # seed 0: cyclic
    src, dst, act = src[keep], dst[keep], act[keep]
    inside = np.random.default_rng(seed + 1).random(n) < 0.95
    indptr, col, _ = digraph.compress(n, [(src, dst, act)])
    comp = digraph.components(indptr, col, inside)
    e = inside[src] & inside[dst] & (src != dst)
    adj = csr_matrix((np.ones(int(e.sum()), dtype=np.int8), (src[e], dst[e])), shape=(n, n))
    _, label = connected_components(adj, directed=True, connection="strong")
    size = np.bincount(label)
    on_cycle = inside & (size[label] > 1)
    assert ((comp >= 0) == on_cycle).all()
    if seed == 0:
        assert 0 < int(on_cycle.sum()) < n
    for c in range(int(comp.max()) + 1):  # each component is one of scipy's, whole
        members = np.flatnonzero(comp == c)
        assert len(np.unique(label[members])) == 1
        assert size[label[members[0]]] == len(members)


def test_the_peel_frees_states_behind_its_sweep_in_a_later_round() -> None:
    """0 -> 5 -> 1 -> 2 <-> 3: the sweep frees 1 only when it reaches 5, so 1 is peeled in
    the second round, and the cycle 2 <-> 3 after it must stay whole."""
    src = np.array([0, 5, 1, 2, 3, 3], dtype=np.int32)
    dst = np.array([5, 1, 2, 3, 2, 4], dtype=np.int32)
    indptr, col, _ = digraph.compress(6, [(src, dst, np.zeros(6, dtype=np.int32))])
    comp = digraph.components(indptr, col, np.ones(6, dtype=bool))
    assert comp.tolist() == [-1, -1, 0, 0, -1, -1]
