"""The compiled graph algorithms of liveness against networkx and scipy on random graphs,
and --max-memory in the liveness phase."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

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
    g.add_edges_from((int(s), int(d)) for s, d in zip(src, dst, strict=True) if inside[s] and inside[d])
    ours = {frozenset(np.flatnonzero(comp == c).tolist()) for c in range(comp.max() + 1)}
    assert ours == {frozenset(c) for c in nx.strongly_connected_components(g)}
    assert (comp[~inside] == -1).all()


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
    dist, pred = digraph.bfs(indptr, col, np.unique(sources), allowed, -1)
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
