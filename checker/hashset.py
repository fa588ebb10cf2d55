"""Compiled kernels of the visited set: an open-addressing hash table over packed states.

The table has a power-of-two number of slots, each a 64-bit *key* and the store index of
the state it holds (-1: empty); collisions probe linearly.  A state's key is the state
itself when it fits one word (exact: no fingerprints at all) and a 64-bit fingerprint of
its words otherwise.  A fingerprint match is always confirmed against the stored row, so
two distinct states that share a fingerprint are both kept (the probe goes on) and are
only counted, never merged: unlike TLC's fingerprint set, this store cannot lose a state.

The table is split into *shards* by the top bits of the key's hash; each shard is owned
by one thread, which inserts the candidates of its shard in candidate order.  A new state
is first recorded as *pending* (the candidate that brought it); once every shard is done,
the pending states are numbered in candidate order, which is the order a sequential BFS
would number them, so counts, indices and shortest traces do not depend on the number of
threads.  The kernels release the GIL (``nogil``) so the shards run in parallel threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

_EMPTY = -1

# splitmix64's finaliser: the key's slot, and the fingerprint of a multi-word row.
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def keys_of(rows: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """One key per row: the row itself (one word) or its 64-bit fingerprint."""
    n, words = rows.shape
    out = np.empty(n, dtype=np.uint64)
    if words == 1:
        for i in range(n):
            out[i] = rows[i, 0]
        return out
    for i in range(n):
        h = np.uint64(0)
        for w in range(words):
            h = _mix(rows[i, w] ^ (h * _M1 + np.uint64(w + 1)))
        out[i] = h
    return out


@njit(cache=True, nogil=True)
def slots_of(keys: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The hash of each key that picks its shard (top bits) and slot (low bits)."""
    out = np.empty(len(keys), dtype=np.uint64)
    for i in range(len(keys)):
        out[i] = _mix(keys[i] * _M1)
    return out


@njit(cache=True, nogil=True, inline="always")
def _same(a: np.ndarray, i: Any, b: np.ndarray, j: Any) -> bool:  # pragma: no cover - compiled
    for w in range(a.shape[1]):
        if a[i, w] != b[j, w]:
            return False
    return True


@njit(cache=True, nogil=True)
def probe_shard(
    tkey: np.ndarray,
    tidx: np.ndarray,
    keys: np.ndarray,
    hashes: np.ndarray,
    cand: np.ndarray,
    stored: np.ndarray,
    shard: int,
    shift: int,
    start: int,
    room: int,
    out: np.ndarray,
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Insert the candidates ``start..`` of one shard (``hashes >> shift == shard``; every
    candidate when ``shift`` is 64).

    ``out[i]`` becomes the store index of candidate ``i``'s state when it was stored
    before this level, or ``-2 - j`` when candidate ``j <= i`` is the first of this level to
    bring it (``j == i``: candidate ``i`` is a new state).  Stops before the ``room + 1``-th
    new state (the shard must grow first); returns (next candidate, new states,
    fingerprint collisions).
    """
    exact = cand.shape[1] == 1
    mask = np.uint64(len(tkey) - 1)
    nnew = 0
    collisions = 0
    single = shift >= 64
    i = start
    n = len(keys)
    while i < n:
        h = hashes[i]
        if not single and (h >> np.uint64(shift)) != np.uint64(shard):
            i += 1
            continue
        if nnew >= room:
            break
        k = keys[i]
        s = h & mask
        while True:
            j = np.int64(tidx[s])
            if j == _EMPTY:
                tkey[s] = k
                tidx[s] = -2 - i
                out[i] = -2 - i
                nnew += 1
                break
            if tkey[s] == k:
                if exact:
                    out[i] = j
                    break
                if j >= 0:
                    if _same(cand, i, stored, j):
                        out[i] = j
                        break
                elif _same(cand, i, cand, -2 - j):
                    out[i] = j
                    break
                collisions += 1
            s = (s + np.uint64(1)) & mask
        i += 1
    return i, nnew, collisions


@njit(cache=True, nogil=True)
def settle(
    tidx: np.ndarray, hashes: np.ndarray, new: np.ndarray, number: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Give each pending entry its store index: candidate ``new[m]`` becomes ``number[m]``."""
    mask = np.uint64(len(tidx) - 1)
    for m in range(len(new)):
        i = new[m]
        s = hashes[i] & mask
        while tidx[s] != -2 - i:
            s = (s + np.uint64(1)) & mask
        tidx[s] = number[m]


@njit(cache=True, nogil=True)
def rehash(
    tkey: np.ndarray, tidx: np.ndarray, nkey: np.ndarray, nidx: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Move every entry (settled or pending) of one shard's table into a larger one."""
    mask = np.uint64(len(nkey) - 1)
    for s in range(len(tkey)):
        if tidx[s] == _EMPTY:
            continue
        k = tkey[s]
        t = _mix(k * _M1) & mask
        while nidx[t] != _EMPTY:
            t = (t + np.uint64(1)) & mask
        nkey[t] = k
        nidx[t] = tidx[s]
