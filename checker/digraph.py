"""Graph algorithms over the reachable graph's edge arrays, for liveness.

The graph is kept as compressed rows (``indptr``, ``col``, ``act``): the out-edges of state
``s`` are ``indptr[s]:indptr[s + 1]``, in the order the explorer found them.  Breadth-first
searches visit a state's successors in increasing state order (as scipy's csgraph did
before, so counterexamples are unchanged); fairness groups are bits of one or more
``uint64`` words per action and per state.  Every algorithm is linear in states plus
edges; the loops are C (``checker/_native.c``) run with the GIL released, and this module
checks the arrays' types and shapes.
"""

from __future__ import annotations

import numpy as np

from checker import _native  # type: ignore[attr-defined]

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # (source, destination, action) per edge


def _i32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int32)


def compress(
    n: int, batches: list[Batch], release: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows by source (``indptr``, ``col``, ``act``) of the state-changing edges (self-loops
    dropped) of ``batches``, each row in the order the edges were found (a stable
    counting sort, batch after batch).  With ``release``, each batch is removed from the
    list once placed, so the edges are never held twice over."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for src, dst, _ in batches:
        _native.count_out(indptr, _i32(src), _i32(dst))
    np.cumsum(indptr, out=indptr)
    col = np.empty(int(indptr[n]), dtype=np.int32)
    eact = np.empty(int(indptr[n]), dtype=np.int32)
    fill = indptr[:-1].copy()
    while batches:
        src, dst, act = batches[0]
        _native.fill_out(fill, col, eact, _i32(src), _i32(dst), _i32(act))
        if release:
            batches.pop(0)
        else:
            batches = batches[1:]
    return indptr, col, eact


def enabled_groups(indptr: np.ndarray, eact: np.ndarray, amask: np.ndarray) -> np.ndarray:
    """``en[s, w]``: the fairness groups (bits) with a state-changing step from ``s``."""
    amask = np.ascontiguousarray(amask, dtype=np.uint64)
    en = np.zeros((len(indptr) - 1, amask.shape[1]), dtype=np.uint64)
    _native.enabled_groups(indptr, eact, amask, amask.shape[1], en)
    return en


def bfs(
    indptr: np.ndarray, col: np.ndarray, sources: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first search from ``sources`` (in the order given) through ``allowed``
    states, successors in increasing order (a FIFO queue's visit, computed a level at a
    time).  Returns (distance, -1 where unreached; BFS predecessor, -1 at the sources)."""
    n = len(indptr) - 1
    assert len(allowed) == n and allowed.dtype == np.bool_
    dist = np.full(n, -1, dtype=np.int32)
    pred = np.full(n, -1, dtype=np.int32)
    src = np.ascontiguousarray(sources, dtype=np.int64)
    _native.bfs(indptr, col, src, np.ascontiguousarray(allowed), dist, pred)
    return dist, pred


def components(indptr: np.ndarray, col: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The strongly connected components of the subgraph induced by ``inside`` that hold a
    cycle (two states or more, or one with a self-loop): a component number per state in
    one, -1 for every other state (outside, or on no cycle).  Only these can be fair, and
    numbering only them lets a topological peel take every acyclic part in one pass before
    Tarjan's algorithm runs on the rest."""
    assert len(inside) == len(indptr) - 1 and inside.dtype == np.bool_
    comp = np.empty(len(indptr) - 1, dtype=np.int32)
    _native.components(indptr, col, np.ascontiguousarray(inside), comp)
    return comp


def fair_components(
    indptr: np.ndarray,
    col: np.ndarray,
    eact: np.ndarray,
    comp: np.ndarray,
    en: np.ndarray,
    amask: np.ndarray,
    full: np.ndarray,
) -> np.ndarray:
    """Which components are fair: they have an edge inside, and every fairness group
    (``full``: all of their bits) is taken on an edge inside or disabled in a state."""
    words = len(full)
    assert en.shape == (len(indptr) - 1, words) and amask.shape[1] == words
    ok = np.zeros(int(comp.max(initial=-1)) + 1, dtype=np.bool_)
    _native.fair_components(indptr, col, eact, comp, en, np.ascontiguousarray(amask), full, words, ok)
    return ok
