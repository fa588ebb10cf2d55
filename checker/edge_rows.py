"""The reachable graph's state-changing edges as compressed rows, written as the search goes.

Liveness reads the graph as rows of out-edges by source (``indptr``, ``col``, ``act``, see
``checker/digraph.py``).  The search expands the states in store order, a chunk of
sources at a time, and a chunk brings every edge of its sources; so each chunk's edges
are the next rows, and sorting them by source within the chunk (a counting sort that
keeps each row in the order its edges were found) gives the same rows as compressing
every edge once the search is over (:func:`checker.digraph.compress`).  Written this way
the edges are held once, 8 bytes each, and never as (source, target, action) batches that
compressing would copy: at 66M states and 200M edges that is 2-3 GB less memory touched,
which on a machine that charges for fresh memory is seconds (docs/performance.md).

The arrays grow in place (numpy's ``resize``: realloc, which moves a large block by
remapping its pages rather than copying them), by a quarter at a time so that little is
touched beyond what the edges fill.
"""

from __future__ import annotations

import numpy as np

from checker import _native  # type: ignore[attr-defined]

_GROWTH = 1.25
_MIN = 1 << 12


class EdgeRows:
    """Rows of out-edges, appended chunk by chunk in source order."""

    def __init__(self) -> None:
        self.indptr = np.zeros(_MIN, dtype=np.int64)
        self.col = np.zeros(_MIN, dtype=np.int32)
        self.act = np.zeros(_MIN, dtype=np.int32)
        self.sources = 0  # the rows of states 0 .. sources - 1 are written
        self.edges = 0

    @staticmethod
    def _room(arr: np.ndarray, need: int) -> np.ndarray:
        if need <= len(arr):
            return arr
        size = len(arr)
        while size < need:
            size = int(size * _GROWTH) + _MIN
        arr.resize(size, refcheck=False)  # the store keeps no view of these arrays
        _native.huge_pages(arr)
        return arr

    def append(self, lo: int, hi: int, src: np.ndarray, dst: np.ndarray, act: np.ndarray) -> None:
        """The edges (source, target, action) of sources ``lo .. hi - 1``, every edge of
        each, in the order found; ``lo`` is the first source not written yet."""
        if lo != self.sources or hi < lo:
            raise ValueError(
                f"rows are written in source order: expected sources from {self.sources}, got {lo}..{hi}"
            )
        assert len(src) == len(dst) == len(act)
        self.indptr = self._room(self.indptr, hi + 1)
        self.col = self._room(self.col, self.edges + len(src))
        self.act = self._room(self.act, self.edges + len(src))
        src, dst = np.ascontiguousarray(src, dtype=np.int64), np.ascontiguousarray(dst, dtype=np.int64)
        act = np.ascontiguousarray(act, dtype=np.int32)
        written = _native.append_rows(src, dst, act, lo, hi - lo, self.indptr, self.col, self.act, self.edges)
        self.edges += int(written)
        self.sources = hi

    def remap(self, first_edge: int, base: int, moved: np.ndarray) -> None:
        """The states from ``base`` on were renumbered (``base + i`` is now ``base +
        moved[i]``): edges from ``first_edge`` on that point at them follow."""
        moved = np.ascontiguousarray(moved, dtype=np.int64)
        _native.remap_targets(self.col[: self.edges], first_edge, base, moved)

    def rows(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, col, act)`` over ``n`` states (states never expanded have no edges)."""
        self.indptr = self._room(self.indptr, n + 1)
        self.indptr[self.sources + 1 : n + 1] = self.edges
        return self.indptr[: n + 1], self.col[: self.edges], self.act[: self.edges]

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.col.nbytes + self.act.nbytes)
