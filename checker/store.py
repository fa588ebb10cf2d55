"""The visited set: every distinct state once, with its BFS parent and the action id.

States are rows of ``words`` uint64, numbered in the order they were found (so one BFS
level is one contiguous block).  Deduplication is an open-addressing hash table over one
64-bit key per state (``checker/hashset.py``): the state itself when it fits one word,
otherwise a fingerprint of its words, always confirmed against the stored row so that no
state is ever lost to a fingerprint collision.  The table is split into shards by hash,
one per thread; new states are numbered in candidate order whatever the number of
shards, so the store is the same with one thread or several.

Memory per state: the row (8 bytes a word), the parent (4) and the action id (4), and the
table's 12 bytes a slot at a load between 0.35 and 0.7.  :meth:`StateStore.drop_table`
gives the table back once the search is over (liveness needs only rows and edges).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from checker import hashset

MAX_STATES = (1 << 31) - 2  # store indices, parents and pending entries are int32
_MAX_LOAD = 0.7
_MIN_SLOTS = 1 << 10
_PARALLEL_CANDIDATES = 1 << 15  # fewer candidates are probed shard after shard in one thread


class StoreFull(RuntimeError):
    """More distinct states than int32 indices can number."""


def fingerprint(rows: np.ndarray) -> np.ndarray:
    """The 64-bit key of each row (the row itself when it is one word)."""
    return hashset.keys_of(np.ascontiguousarray(rows, dtype=np.uint64))


class _Shard:
    """One thread's part of the hash table."""

    def __init__(self, slots: int) -> None:
        self.table = hashset.table(slots)
        self.count = 0
        self.collisions = 0

    @property
    def room(self) -> int:
        return int(len(self.table) * _MAX_LOAD) - self.count

    def grow(self, slot_of: np.ndarray) -> None:
        new = hashset.table(2 * len(self.table))
        hashset.rehash(self.table, new, slot_of)
        self.table = new

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes)


class StateStore:
    """The visited states.  ``threads`` > 1 splits the table into that many shards
    (a power of two) probed in parallel."""

    def __init__(self, words: int, bits: int, capacity: int = 1 << 12, threads: int = 1) -> None:
        if threads < 1 or threads & (threads - 1) or threads > 1 << hashset.SHARD_BITS:
            raise ValueError(f"threads must be a power of two up to {1 << hashset.SHARD_BITS}, got {threads}")
        self.words = words
        self.bits = bits
        self.n = 0
        self.rows = np.zeros((capacity, words), dtype=np.uint64)
        self.parent = np.zeros(capacity, dtype=np.int32)
        self.action = np.zeros(capacity, dtype=np.int32)
        self.threads = threads
        self._shift = 64 - (threads.bit_length() - 1) if threads > 1 else 64
        self._shards: list[_Shard] | None = [_Shard(_MIN_SLOTS) for _ in range(threads)]
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._collisions = 0
        # The block that renumber() may reorder: its first state and each state's place in
        # the table (None: no block begun, or the table grew since, so places moved).
        self._block_base = 0
        self._block_where: list[np.ndarray] | None = None

    @property
    def collisions(self) -> int:
        """Fingerprint matches that were distinct states (both kept, only counted)."""
        return sum(s.collisions for s in self._shards) if self._shards else self._collisions

    @property
    def fingerprints(self) -> bool:
        """Whether keys are fingerprints (states wider than one word) or the states."""
        return self.words > 1

    def keys(self, rows: np.ndarray) -> np.ndarray:
        """The keys of a batch of candidates (C-contiguous uint64): one-word rows are
        their own keys, read in place (the batch is not changed while it is added)."""
        return rows.reshape(-1) if self.words == 1 else fingerprint(rows)

    @property
    def nbytes(self) -> int:
        """Bytes held for the states stored (arrays at their used length) and the table."""
        per_state = self.rows.itemsize * self.words + self.parent.itemsize + self.action.itemsize
        return self.n * per_state + self.table_nbytes

    @property
    def table_nbytes(self) -> int:
        return sum(s.nbytes for s in self._shards) if self._shards else 0

    def drop_table(self) -> None:
        """Free the hash table: no more states can be added after this."""
        self._collisions = self.collisions
        self._shards = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _grow(self, need: int) -> None:
        cap = len(self.rows)
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name in ("rows", "parent", "action"):
            old = getattr(self, name)
            new = np.empty((cap,) + old.shape[1:], dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def begin_block(self) -> None:
        """The states added from now on form one block for :meth:`renumber` (a BFS level):
        their places in the table are recorded, so that renumbering them writes their own
        slots rather than reading the whole table (which, at tens of millions of states,
        is gigabytes for every level)."""
        self._block_base = self.n
        self._block_where = []

    # ------------------------------------------------------------------ adding
    def add(
        self, rows: np.ndarray, parents: np.ndarray, actions: np.ndarray, want_targets: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Add candidate states; return the indices of the new ones (in candidate order:
        a state found several times keeps its first candidate's parent and action).

        With ``want_targets``, also return for every candidate the store index of its
        state (new or already visited), for the edge list.
        """
        if self._shards is None:
            raise RuntimeError("the hash table was dropped; the store is read-only")
        g = len(rows)
        if g == 0:
            return np.zeros(0, dtype=np.int64), (np.zeros(0, dtype=np.int64) if want_targets else None)
        if self.n + g > MAX_STATES:
            raise StoreFull(f"more than {MAX_STATES} states")
        rows = np.ascontiguousarray(rows, dtype=np.uint64)
        keys = self.keys(rows)
        out = np.empty(g, dtype=np.int64)
        stored = self.rows[: self.n]
        par = g >= _PARALLEL_CANDIDATES
        parents = np.ascontiguousarray(parents, dtype=np.int64)
        slot_of = np.empty(g, dtype=np.int64)
        self._each_shard(
            lambda k, sh: self._probe(k, sh, keys, rows, stored, parents, out, slot_of), par
        )
        base = self.n
        new_cand = hashset.number_new(out, base)  # out now holds every candidate's index
        k = len(new_cand)
        where = np.empty(k, dtype=np.int64)
        self._each_shard(
            lambda s, sh: hashset.settle(sh.table, slot_of, keys, s, self._shift, new_cand, out, where), par
        )
        if self._block_where is not None:
            self._block_where.append(where)
        self._grow(base + k)
        self.rows[base : base + k] = rows[new_cand]
        self.parent[base : base + k] = parents[new_cand]
        self.action[base : base + k] = actions[new_cand]
        self.n = base + k
        return base + np.arange(k, dtype=np.int64), (out if want_targets else None)

    def _each_shard(self, job: Callable[[int, _Shard], None], parallel: bool) -> None:
        shards = self._shards
        assert shards is not None
        if self._pool is None or not parallel:
            for k, sh in enumerate(shards):
                job(k, sh)
            return
        for f in [self._pool.submit(job, k, sh) for k, sh in enumerate(shards)]:
            f.result()

    def _probe(
        self,
        k: int,
        shard: _Shard,
        keys: np.ndarray,
        rows: np.ndarray,
        stored: np.ndarray,
        parents: np.ndarray,
        out: np.ndarray,
        slot_of: np.ndarray,
    ) -> None:
        i = 0
        while i < len(keys):
            i, nnew, coll = hashset.probe_shard(
                shard.table, keys, rows, stored, parents, k, self._shift, i, shard.room, out, slot_of
            )
            shard.count += nnew
            shard.collisions += coll
            if i < len(keys):
                shard.grow(slot_of)
                self._block_where = None  # the block's states moved to other slots

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
        assert self._shards is not None, "the hash table was dropped"
        # The table's entries follow their states, one call of C per shard in parallel:
        # through the block's recorded places when it has them, else a pass over the table.
        blk = self._block_where
        if blk is not None and self._block_base == base:
            where = np.concatenate(blk) if len(blk) != 1 else blk[0]
            assert len(where) == k, "every add() of the block recorded its states' places"
            self._each_shard(
                lambda s, sh: hashset.renumber_slots(sh.table, base, moved, where, s), parallel=True
            )
        else:
            self._each_shard(lambda _, sh: hashset.renumber(sh.table, base, moved), parallel=True)
        self._block_where = None
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
