"""Compiled graph algorithms over the reachable graph's edge arrays, for liveness.

The graph is kept as compressed rows (``indptr``, ``col``, ``act``): the out-edges of state
``s`` are ``indptr[s]:indptr[s + 1]``, in the order the explorer found them.  Breadth-first
searches visit a state's successors in increasing state order (as scipy's csgraph did
before, so counterexamples are unchanged); fairness groups are bits of one or more
``uint64`` words per action and per state.  Every kernel is linear in states plus edges
and releases the GIL.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def count_out(indptr: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:  # pragma: no cover - compiled
    """Add the state-changing edges of one batch to ``indptr[s + 1]`` (out-degrees)."""
    for e in range(len(src)):
        if src[e] != dst[e]:
            indptr[src[e] + 1] += 1


@njit(cache=True, nogil=True)
def fill_out(
    fill: np.ndarray, col: np.ndarray, eact: np.ndarray, src: np.ndarray, dst: np.ndarray, act: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Place one batch's state-changing edges at ``fill[s]`` (their source's next free slot)."""
    for e in range(len(src)):
        s = src[e]
        if s != dst[e]:
            k = fill[s]
            col[k] = dst[e]
            eact[k] = act[e]
            fill[s] = k + 1


def compress(
    n: int, batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]], release: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows by source (``indptr``, ``col``, ``act``) of the state-changing edges (self-loops
    dropped) of ``batches`` of (source, destination, action) arrays, each row in the
    order the edges were found (a stable counting sort, batch after batch).  With
    ``release``, each batch is removed from the list once placed, so the edges are never
    held twice over."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for src, dst, _ in batches:
        count_out(indptr, src, dst)
    np.cumsum(indptr, out=indptr)
    col = np.empty(int(indptr[n]), dtype=np.int32)
    eact = np.empty(int(indptr[n]), dtype=np.int32)
    fill = indptr[:-1].copy()
    while batches:
        src, dst, act = batches[0]
        fill_out(fill, col, eact, src, dst, act)
        if release:
            batches.pop(0)
        else:
            batches = batches[1:]
    return indptr, col, eact


@njit(cache=True, nogil=True)
def enabled_groups(indptr: np.ndarray, eact: np.ndarray, amask: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``en[s, w]``: the fairness groups (bits) with a state-changing step from ``s``."""
    n = len(indptr) - 1
    words = amask.shape[1]
    en = np.zeros((n, words), dtype=np.uint64)
    for s in range(n):
        for e in range(indptr[s], indptr[s + 1]):
            for w in range(words):
                en[s, w] |= amask[eact[e], w]
    return en


@njit(cache=True, nogil=True)
def bfs(
    indptr: np.ndarray, col: np.ndarray, sources: np.ndarray, allowed: np.ndarray, target: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Breadth-first search from ``sources`` (increasing order) through ``allowed`` states,
    successors in increasing order; stops once ``target`` is reached (``-1``: never).
    Returns (distance, -1 where unreached; BFS predecessor, -1 at the sources)."""
    n = len(indptr) - 1
    dist = np.full(n, -1, dtype=np.int32)
    pred = np.full(n, -1, dtype=np.int32)
    queue = np.empty(n, dtype=np.int32)
    head = 0
    tail = 0
    for s in sources:
        if dist[s] < 0 and allowed[s]:
            dist[s] = 0
            queue[tail] = s
            tail += 1
    width = 0
    for s in range(n):
        width = max(width, indptr[s + 1] - indptr[s])
    buf = np.empty(width, dtype=np.int32)
    while head < tail:
        u = queue[head]
        head += 1
        if u == target:
            break
        k = 0
        for e in range(indptr[u], indptr[u + 1]):
            v = col[e]
            if dist[v] < 0 and allowed[v]:
                # insertion sort: rows are short, and the order must be increasing
                j = k
                while j > 0 and buf[j - 1] > v:
                    buf[j] = buf[j - 1]
                    j -= 1
                buf[j] = v
                k += 1
        for i in range(k):
            v = buf[i]
            if dist[v] < 0:
                dist[v] = dist[u] + 1
                pred[v] = u
                queue[tail] = v
                tail += 1
    return dist, pred


@njit(cache=True, nogil=True)
def components(indptr: np.ndarray, col: np.ndarray, inside: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Strongly connected components of the subgraph induced by ``inside`` (Tarjan's
    algorithm, iterative): a component number per state, -1 outside."""
    n = len(indptr) - 1
    index = np.full(n, -1, dtype=np.int32)
    low = np.zeros(n, dtype=np.int32)
    comp = np.full(n, -1, dtype=np.int32)
    onstack = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int32)  # Tarjan's stack
    call = np.empty(n, dtype=np.int32)  # the DFS path
    edge = np.empty(n, dtype=np.int64)  # next out-edge to look at, per DFS frame
    sp = 0
    counter = 0
    ncomp = 0
    for root in range(n):
        if not inside[root] or index[root] >= 0:
            continue
        depth = 0
        call[0] = root
        edge[0] = indptr[root]
        index[root] = low[root] = counter
        counter += 1
        stack[sp] = root
        sp += 1
        onstack[root] = True
        while depth >= 0:
            u = call[depth]
            e = edge[depth]
            if e < indptr[u + 1]:
                edge[depth] = e + 1
                v = col[e]
                if not inside[v]:
                    continue
                if index[v] < 0:
                    index[v] = low[v] = counter
                    counter += 1
                    stack[sp] = v
                    sp += 1
                    onstack[v] = True
                    depth += 1
                    call[depth] = v
                    edge[depth] = indptr[v]
                elif onstack[v] and index[v] < low[u]:
                    low[u] = index[v]
                continue
            if low[u] == index[u]:
                while True:
                    sp -= 1
                    w = stack[sp]
                    onstack[w] = False
                    comp[w] = ncomp
                    if w == u:
                        break
                ncomp += 1
            depth -= 1
            if depth >= 0:
                p = call[depth]
                if low[u] < low[p]:
                    low[p] = low[u]
    return comp


@njit(cache=True, nogil=True)
def fair_components(
    indptr: np.ndarray,
    col: np.ndarray,
    eact: np.ndarray,
    comp: np.ndarray,
    en: np.ndarray,
    amask: np.ndarray,
    full: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """Which components are fair: they have an edge inside, and every fairness group
    (``full``: all of their bits) is taken on an edge inside or disabled in a state."""
    n = len(indptr) - 1
    ncomp = comp.max() + 1
    words = len(full)
    has_edge = np.zeros(ncomp, dtype=np.bool_)
    covered = np.zeros((ncomp, words), dtype=np.uint64)
    for u in range(n):
        c = comp[u]
        if c < 0:
            continue
        for w in range(words):
            covered[c, w] |= ~en[u, w] & full[w]
        for e in range(indptr[u], indptr[u + 1]):
            if comp[col[e]] == c:
                has_edge[c] = True
                for w in range(words):
                    covered[c, w] |= amask[eact[e], w]
    ok = has_edge.copy()
    for c in range(ncomp):
        for w in range(words):
            if covered[c, w] & full[w] != full[w]:
                ok[c] = False
    return ok
