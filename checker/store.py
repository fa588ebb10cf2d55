"""The visited set: every distinct state once, with its BFS parent and the action id.

States are rows of ``words`` uint64.  Deduplication works on one uint64 *key* per state:
the state itself when it fits one word, otherwise a 64-bit fingerprint of its words.
Unlike TLC, fingerprints are never trusted blindly: every fingerprint match is verified
against the stored row, and a real collision raises :class:`FingerprintCollision` instead
of silently dropping a state.

The visited keys are kept as one sorted array (with the global index of each key beside
it); a BFS level is merged in with ``searchsorted`` + ``insert`` (a linear copy, no
re-sort).  Measured on TwoPhase with 8 RMs this beat a per-level list of sorted chunks and
numpy's structured/void sorts (see bench/explore.py).
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


class FingerprintCollision(RuntimeError):
    pass


def fingerprint(rows: np.ndarray) -> np.ndarray:
    """A 64-bit mix (splitmix64 finaliser) of each multi-word row."""
    with np.errstate(over="ignore"):
        h = np.zeros(len(rows), dtype=np.uint64)
        for w in range(rows.shape[1]):
            x = rows[:, w] ^ (h * _M1 + np.uint64(w + 1))
            x = (x ^ (x >> np.uint64(30))) * _M2
            x = (x ^ (x >> np.uint64(27))) * _M3
            h = x ^ (x >> np.uint64(31))
    return h


class StateStore:
    def __init__(self, words: int, bits: int, capacity: int = 1 << 12) -> None:
        self.words = words
        self.bits = bits
        self.n = 0
        self.rows = np.zeros((capacity, words), dtype=np.uint64)
        self.parent = np.zeros(capacity, dtype=np.int64)
        self.action = np.zeros(capacity, dtype=np.int32)
        self.vkeys = np.zeros(0, dtype=np.uint64)
        self.vidx = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ keys
    def keys(self, rows: np.ndarray) -> np.ndarray:
        if self.words == 1:
            return rows[:, 0]
        return fingerprint(rows)

    @property
    def nbytes(self) -> int:
        return (
            self.rows.nbytes + self.parent.nbytes + self.action.nbytes + self.vkeys.nbytes + self.vidx.nbytes
        )

    def _grow(self, need: int) -> None:
        cap = len(self.rows)
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name in ("rows", "parent", "action"):
            old = getattr(self, name)
            new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    # ------------------------------------------------------------------ adding
    def add(
        self, rows: np.ndarray, parents: np.ndarray, actions: np.ndarray, want_targets: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Add candidate states; return the indices of the new ones (in candidate order).

        With ``want_targets``, also return for every candidate the global index of its
        state (new or already visited), for the edge list.
        """
        g = len(rows)
        if g == 0:
            return np.zeros(0, dtype=np.int64), (np.zeros(0, dtype=np.int64) if want_targets else None)
        keys = self.keys(rows)
        ib = max(1, int(g).bit_length())
        if self.words == 1 and self.bits + ib <= 64:
            # One sort of (key, candidate index) packed into a word: 5x faster than argsort.
            comb = (keys << np.uint64(ib)) | np.arange(g, dtype=np.uint64)
            comb.sort()
            sk = comb >> np.uint64(ib)
            si = (comb & np.uint64((1 << ib) - 1)).astype(np.int64)
        else:
            si = np.argsort(keys, kind="stable")
            sk = keys[si]
        first = np.ones(g, dtype=bool)
        first[1:] = sk[1:] != sk[:-1]
        group = np.cumsum(first) - 1  # group id of each sorted candidate
        uk = sk[first]
        ui = si[first]  # first candidate of each distinct key
        if self.words > 1:
            # Same fingerprint must mean the same state.
            same = np.all(rows[si] == rows[ui[group]], axis=1)
            if not same.all():
                raise FingerprintCollision("two distinct states share a 64-bit fingerprint")
        nv = len(self.vkeys)
        pos = np.searchsorted(self.vkeys, uk)
        found = np.zeros(len(uk), dtype=bool)
        inb = pos < nv
        found[inb] = self.vkeys[pos[inb]] == uk[inb]
        if self.words > 1 and found.any():
            old = self.vidx[pos[found]]
            if not np.all(self.rows[old] == rows[ui[found]], axis=1).all():
                raise FingerprintCollision("a new state shares a 64-bit fingerprint with a visited one")
        new = ~found
        new_ui = ui[new]
        order = np.argsort(new_ui, kind="stable")
        new_cand = new_ui[order]  # new states in candidate (BFS) order
        k = len(new_cand)
        base = self.n
        self._grow(base + k)
        self.rows[base : base + k] = rows[new_cand]
        self.parent[base : base + k] = parents[new_cand]
        self.action[base : base + k] = actions[new_cand]
        self.n = base + k
        # global index of each distinct key (sorted-key order)
        gidx_u = np.empty(len(uk), dtype=np.int64)
        gidx_u[found] = self.vidx[pos[found]]
        new_keyorder_idx = np.empty(k, dtype=np.int64)
        new_keyorder_idx[order] = base + np.arange(k, dtype=np.int64)
        gidx_u[new] = new_keyorder_idx
        self.vkeys = np.insert(self.vkeys, pos[new], uk[new])
        self.vidx = np.insert(self.vidx, pos[new], gidx_u[new])
        targets = None
        if want_targets:
            targets = np.empty(g, dtype=np.int64)
            targets[si] = gidx_u[group]
        return base + np.arange(k, dtype=np.int64), targets

    def renumber(self, base: int, order: np.ndarray) -> np.ndarray:
        """Put the states stored from index ``base`` on in ``order`` (the state at
        ``base + order[k]`` moves to ``base + k``); return the new position of each
        (``moved[old - base] = new - base``).  The explorer uses it to keep a BFS level in
        the order a whole-level expansion would give, however the level was cut in chunks;
        parents of the moved states lie before ``base`` and stay valid."""
        k = self.n - base
        moved = np.empty(k, dtype=np.int64)
        moved[order] = np.arange(k, dtype=np.int64)
        for name in ("rows", "parent", "action"):
            arr = getattr(self, name)
            arr[base : self.n] = arr[base : self.n][order]
        inblock = self.vidx >= base
        self.vidx[inblock] = base + moved[self.vidx[inblock] - base]
        return moved

    def path(self, idx: int) -> list[tuple[int, int]]:
        """``[(state index, action id)]`` from an initial state to ``idx`` (action -1 at init)."""
        out = []
        i = int(idx)
        while True:
            a = int(self.action[i])
            out.append((i, a))
            if a < 0:
                break
            i = int(self.parent[i])
        out.reverse()
        return out
