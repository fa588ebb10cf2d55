"""The visited set's hash table: open addressing over one 64-bit key per packed state.

The table has a power-of-two number of slots, each a 64-bit *key* and the store index of
the state it holds (-1: empty); collisions probe linearly.  A state's key is the state
itself when it fits one word (exact: no fingerprints at all) and a 64-bit fingerprint of
its words otherwise (splitmix64's finaliser chained over the words).  A fingerprint match
is always confirmed against the stored row, so two distinct states that share a
fingerprint are both kept (the probe goes on) and only counted, never merged: unlike
TLC's fingerprint set, this store cannot lose a state.

The table is split into *shards* by the top bits of the key's hash; each shard is owned
by one thread, which inserts the candidates of its shard in candidate order.  A new state
is first recorded as *pending* (``-2 - j``: candidate ``j`` brought it); once every shard
is done, the pending states are numbered in candidate order, which is the order a
sequential BFS would number them, so counts, indices and shortest traces do not depend
on the number of threads.

The loops are C (``checker/_native.c``, built by pip), called with the GIL released so
the shards run in parallel threads; this module checks the arrays' types and shapes.
"""

from __future__ import annotations

import numpy as np

from checker import _native  # type: ignore[attr-defined]

# One slot: the key and the store index of its state (-1: empty), 12 bytes packed, so a
# probe reads one cache line (the C side declares the same layout).
SLOT = np.dtype([("key", np.uint64), ("idx", np.int32)], align=False)
assert SLOT.itemsize == 12


def table(slots: int) -> np.ndarray:
    """An empty table of ``slots`` (a power of two) slots."""
    if slots < 1 or slots & (slots - 1):
        raise ValueError(f"the table size must be a power of two, got {slots}")
    # every byte 0xff: each slot's index reads -1 (its key is never looked at)
    return np.full(3 * slots, -1, dtype=np.int32).view(SLOT)


def _u64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.uint64)


def keys_of(rows: np.ndarray) -> np.ndarray:
    """One key per row: the row itself (one word) or its 64-bit fingerprint."""
    rows = _u64(rows)
    out = np.empty(len(rows), dtype=np.uint64)
    _native.keys_of(rows, rows.shape[1], out)
    return out


def probe_shard(
    tab: np.ndarray,
    keys: np.ndarray,
    cand: np.ndarray,
    stored: np.ndarray,
    parents: np.ndarray,
    shard: int,
    shift: int,
    start: int,
    room: int,
    out: np.ndarray,
    slot_of: np.ndarray,
) -> tuple[int, int, int]:
    """Insert the candidates ``start..`` of one shard (the top bits of a key's hash,
    ``slot_hash`` in ``checker/_native.c``, pick its shard; every candidate when ``shift``
    is 64; the hashes are computed as the probe goes).

    ``parents`` (the store index of each candidate's parent, -1 for none; or empty) lets a
    candidate equal to its parent (a self-loop) skip the probe.
    ``out[i]`` becomes the store index of candidate ``i``'s state when it was stored
    before this batch, or ``-2 - j`` when candidate ``j <= i`` is the first of the batch to
    bring it (``j == i``: candidate ``i`` is a new state).  Stops before the ``room + 1``-th
    new state (the shard must grow first); ``slot_of[i]`` is where a new candidate ``i``
    went (for :func:`settle`; :func:`rehash` keeps it up to date); returns (next candidate, new states,
    fingerprint collisions).
    """
    assert tab.dtype == SLOT and len(tab) & (len(tab) - 1) == 0
    assert cand.dtype == np.uint64 and cand.flags.c_contiguous and stored.dtype == np.uint64
    assert cand.shape[1:] == stored.shape[1:] and len(keys) == len(cand) == len(out)
    assert out.dtype == np.int64 and keys.dtype == np.uint64 and keys.flags.c_contiguous
    assert slot_of.dtype == np.int64 and len(slot_of) == len(out)
    words = cand.shape[1]
    result: tuple[int, int, int] = _native.probe_shard(
        tab,
        keys,
        cand,
        np.ascontiguousarray(stored),
        np.ascontiguousarray(parents, dtype=np.int64),
        words,
        shard,
        shift,
        start,
        room,
        out,
        slot_of,
    )
    return result


def number_new(out: np.ndarray, base: int) -> np.ndarray:
    """After every shard's :func:`probe_shard`: number the batch's new states ``base,
    base + 1, ...`` in candidate order and resolve ``out`` to store indices throughout;
    returns the new candidates."""
    assert out.dtype == np.int64 and out.flags.c_contiguous
    new = np.empty(len(out), dtype=np.int64)
    k = _native.number_new(out, base, new)
    return new[:k]


def settle(
    tab: np.ndarray,
    slot_of: np.ndarray,
    keys: np.ndarray,
    shard: int,
    shift: int,
    new: np.ndarray,
    out: np.ndarray,
    where: np.ndarray,
) -> None:
    """Replace this shard's pending entries (its candidates among ``new``, at their
    ``slot_of``) by their store indices ``out``; ``where[q]`` becomes the place (slot and
    shard, for :func:`renumber_slots`) of the new state brought by ``new[q]``, for this
    shard's states only."""
    assert tab.dtype == SLOT and slot_of.dtype == np.int64 and out.dtype == np.int64 and new.dtype == np.int64
    assert keys.dtype == np.uint64 and keys.flags.c_contiguous
    assert where.dtype == np.int64 and where.flags.c_contiguous and len(where) == len(new)
    _native.settle(tab, slot_of, keys, shard, shift, np.ascontiguousarray(new), out, where)


def rehash(old: np.ndarray, new: np.ndarray, slot_of: np.ndarray) -> None:
    """Move every entry (settled or pending) of one shard's table into a larger one; a
    pending entry's new slot goes to ``slot_of``."""
    assert old.dtype == SLOT and new.dtype == SLOT and len(new) > len(old) and slot_of.dtype == np.int64
    _native.rehash(old, new, slot_of)


def renumber(tab: np.ndarray, base: int, moved: np.ndarray) -> None:
    """After the states from ``base`` on moved (the one at ``base + i`` to ``base +
    moved[i]``): point every entry of one shard's table at its state's new index."""
    assert tab.dtype == SLOT and moved.dtype == np.int64
    _native.renumber_table(tab, base, np.ascontiguousarray(moved))


#: A shard's number in the low bits of a place from :func:`settle` (so at most 256 shards).
SHARD_BITS = 8


def renumber_slots(tab: np.ndarray, base: int, moved: np.ndarray, where: np.ndarray, shard: int) -> None:
    """:func:`renumber` for a block whose places :func:`settle` recorded (``where[i]``:
    the place of the state at ``base + i``, the table not grown since): only this shard's
    slots of the block are written, not the whole table read."""
    assert tab.dtype == SLOT and moved.dtype == np.int64 and where.dtype == np.int64
    assert len(where) == len(moved) and 0 <= shard < 1 << SHARD_BITS
    _native.renumber_slots(tab, base, np.ascontiguousarray(moved), np.ascontiguousarray(where), shard)
