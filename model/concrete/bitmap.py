"""Packed page bitmaps: one bit per guest page, 64 pages per ``uint64`` word.

This is the data structure QEMU's migration code, KVM's dirty log and the kernel's dirty
reports all share: bit ``i`` says "page ``i`` is dirty".  The layout is the one the uAPI
uses for ``VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT`` and ``IOMMU_HWPT_GET_DIRTY_BITMAP``
(``include/uapi/linux/iommufd.h``; ``iova_bitmap_set()`` in
``drivers/iommu/iommufd/iova_bitmap.c``): bit ``i`` is bit ``i % 64`` of word ``i // 64``,
words little-endian.

Every operation works on whole arrays (or on bounded chunks of them); nothing loops over
pages in Python.  Bits past ``nbits`` in the last word are always zero, so counts and
equality need no masking.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

WORD = np.dtype("<u8")  # explicit little-endian words: the uAPI layout on every host
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE = np.uint64(1)

# Chunk of words processed at a time by fused whole-bitmap operations: 256 KiB, small
# enough to stay in L2 between the OR and the population count (measured in
# bench/executor.py: 32 Ki words was the fastest of 4 Ki .. 256 Ki words).
MERGE_CHUNK_WORDS = 1 << 15

_bitwise_count: Any = getattr(np, "bitwise_count", None)  # numpy >= 2.0; None on 1.x

_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount_words(words: np.ndarray) -> np.ndarray:
    """Set bits per word (``uint8`` per word)."""
    if _bitwise_count is not None:
        return _bitwise_count(words)
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(-1, 8)  # pragma: no cover
    return _POP8[as_bytes].sum(axis=1, dtype=np.uint8)  # pragma: no cover


def popcount(words: np.ndarray) -> int:
    """Total set bits of a word array."""
    if words.size == 0:
        return 0
    return int(popcount_words(words).sum(dtype=np.uint64))


def _nwords(nbits: int) -> int:
    return (nbits + 63) >> 6


def _low_mask(n: int) -> np.uint64:
    """A word with its ``n`` low bits set (0 <= n <= 64)."""
    return np.uint64((1 << n) - 1)


def _indices_in_words(words: np.ndarray, first_bit: int) -> np.ndarray:
    """Indices (int64, ascending) of the set bits of ``words``; bit 0 of ``words[0]`` is
    ``first_bit``.

    Sparse words: only the nonzero bytes are unpacked.  Dense words: all are unpacked at
    once.  The unpacked 0/1 bytes are viewed as bool, for which numpy's nonzero is ~5x
    faster than for uint8 (measured with bench/executor.py).
    """
    as_bytes = np.ascontiguousarray(words).view(np.uint8)
    nzb = np.flatnonzero(as_bytes != 0)
    if nzb.size == 0:
        return np.empty(0, dtype=np.int64)
    if nzb.size * 4 < as_bytes.size:
        bits = np.unpackbits(as_bytes[nzb], bitorder="little")
        flat = np.flatnonzero(bits.view(bool))
        return first_bit + ((nzb[flat >> 3] << 3) | (flat & 7))
    bits = np.unpackbits(as_bytes, bitorder="little")
    return np.flatnonzero(bits.view(bool)) + first_bit


def _as_indices(idx: Any, nbits: int) -> np.ndarray:
    arr = np.asarray(idx, dtype=np.int64).reshape(-1)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= nbits):
        raise IndexError(f"page index out of range 0..{nbits - 1}")
    return arr


class Bitmap:
    """A fixed-size set of page numbers ``0 .. nbits-1`` stored as packed ``uint64`` words."""

    __slots__ = ("nbits", "words")

    def __init__(self, nbits: int, words: np.ndarray | None = None) -> None:
        if nbits < 0:
            raise ValueError("a bitmap cannot have a negative size")
        self.nbits = int(nbits)
        if words is None:
            words = np.zeros(_nwords(self.nbits), dtype=WORD)
        elif words.dtype != WORD or words.shape != (_nwords(self.nbits),):
            raise ValueError(f"need {_nwords(self.nbits)} words of {WORD}, got {words.shape} {words.dtype}")
        self.words = words

    # ------------------------------------------------------------------ construction
    @classmethod
    def zeros(cls, nbits: int) -> Bitmap:
        return cls(nbits)

    @classmethod
    def ones(cls, nbits: int) -> Bitmap:
        b = cls(nbits)
        b.set_all()
        return b

    @classmethod
    def from_indices(cls, nbits: int, idx: Any) -> Bitmap:
        b = cls(nbits)
        b.set_indices(idx)
        return b

    @classmethod
    def from_ranges(cls, nbits: int, ranges: Any) -> Bitmap:
        """Bits set on each half-open ``(start, stop)`` range."""
        b = cls(nbits)
        for start, stop in ranges:
            b.set_range(start, stop)
        return b

    def copy(self) -> Bitmap:
        return Bitmap(self.nbits, self.words.copy())

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return self.nbits

    def count(self) -> int:
        """Population count (number of set bits)."""
        return popcount(self.words)

    def any(self) -> bool:
        return bool(self.words.any())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bitmap):
            return NotImplemented
        return self.nbits == other.nbits and bool(np.array_equal(self.words, other.words))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Bitmap(nbits={self.nbits}, count={self.count()})"

    def test_indices(self, idx: Any) -> np.ndarray:
        """Bool per index: is that bit set?"""
        arr = _as_indices(idx, self.nbits)
        return ((self.words[arr >> 6] >> (arr & 63).astype(np.uint64)) & _ONE).astype(bool)

    def count_range(self, start: int, stop: int) -> int:
        start, stop = self._check_range(start, stop)
        if start == stop:
            return 0
        w0, w1 = start >> 6, (stop - 1) >> 6
        part = self.words[w0 : w1 + 1].copy()
        part[0] &= ~_low_mask(start & 63)
        part[-1] &= _low_mask(((stop - 1) & 63) + 1)
        return popcount(part)

    def indices(self) -> np.ndarray:
        """All set bits as an int64 array (for small bitmaps; see :meth:`iter_set_bits`)."""
        return _indices_in_words(self.words, 0)

    def iter_set_bits(
        self, start: int = 0, stop: int | None = None, chunk_bits: int = 1 << 20
    ) -> Iterator[np.ndarray]:
        """Yield the set bits in ``[start, stop)`` ascending, as int64 arrays of at most
        ``chunk_bits`` entries each (each covers one window of ``chunk_bits`` pages)."""
        start, stop = self._check_range(start, self.nbits if stop is None else stop)
        chunk_words = max(1, chunk_bits >> 6)
        w = start >> 6
        w_end = _nwords(stop)
        while w < w_end:
            e = min(w_end, w + chunk_words)
            idx = _indices_in_words(self.words[w:e], w << 6)
            if idx.size and (idx[0] < start or idx[-1] >= stop):
                idx = idx[(idx >= start) & (idx < stop)]
            if idx.size:
                yield idx
            w = e

    def find_set(self, start: int, limit: int) -> np.ndarray:
        """The first ``limit`` set bits at or after ``start`` (fewer if the bitmap ends).

        This is how QEMU picks the next pages to send: it walks the migration bitmap
        forward from where it stopped (``migration_bitmap_find_dirty()`` in
        ``migration/ram.c``).  The scan pops bits of growing windows of words, so the cost
        is proportional to the words covered plus ``limit``.
        """
        start = int(start)
        if limit <= 0 or start >= self.nbits:
            return np.empty(0, dtype=np.int64)
        w = start >> 6
        nw = self.words.size
        head = self.words[w] & ~_low_mask(start & 63)
        found = int(popcount_words(np.array([head], dtype=WORD))[0])
        parts = [_indices_in_words(np.array([head], dtype=WORD), w << 6)] if found else []
        w += 1
        window = max(16, limit >> 5)
        while found < limit and w < nw:
            e = min(nw, w + window)
            counts = popcount_words(self.words[w:e])
            total = int(counts.sum(dtype=np.uint64))
            if found + total >= limit:
                # Stop at the word where the running count reaches ``limit``.
                cum = np.cumsum(counts, dtype=np.int64)
                e = w + int(np.searchsorted(cum, limit - found)) + 1
                total = int(cum[e - w - 1])
            if total:
                parts.append(_indices_in_words(self.words[w:e], w << 6))
            found += total
            w = e
            window = min(window * 2, 1 << 16)
        if not parts:
            return np.empty(0, dtype=np.int64)
        idx = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return idx[:limit]

    # ------------------------------------------------------------------ single-bitmap updates
    def set_all(self) -> None:
        self.words.fill(_ALL)
        self._clear_tail()

    def clear_all(self) -> None:
        self.words.fill(0)

    def set_range(self, start: int, stop: int) -> None:
        self._apply_range(start, stop, set_bits=True)

    def clear_range(self, start: int, stop: int) -> None:
        self._apply_range(start, stop, set_bits=False)

    def set_indices(self, idx: Any) -> None:
        """Set the bits at ``idx`` (duplicates allowed).

        The word array is viewed as bytes and updated in eight passes, one per bit position
        within a byte: within a pass every write to a byte sets the same bit, so duplicate
        indices cannot lose each other's update.  (Measured faster than ``bitwise_or.at``
        and than sorting the indices.)
        """
        arr = _as_indices(idx, self.nbits)
        if arr.size == 0:
            return
        as_bytes = self.words.view(np.uint8)
        byte = arr >> 3
        bit = (arr & 7).astype(np.uint8)
        for b in range(8):
            sel = byte[bit == b]
            if sel.size:
                as_bytes[sel] |= np.uint8(1 << b)

    def clear_indices(self, idx: Any) -> None:
        """Clear the bits at ``idx`` (duplicates allowed; same eight-pass scheme)."""
        arr = _as_indices(idx, self.nbits)
        if arr.size == 0:
            return
        as_bytes = self.words.view(np.uint8)
        byte = arr >> 3
        bit = (arr & 7).astype(np.uint8)
        for b in range(8):
            sel = byte[bit == b]
            if sel.size:
                as_bytes[sel] &= np.uint8(0xFF ^ (1 << b))

    def extract_range(self, start: int, stop: int) -> Bitmap:
        """The bits of ``[start, stop)`` as a new bitmap of ``stop - start`` bits
        (bit ``i`` of the result is bit ``start + i`` of this one)."""
        start, stop = self._check_range(start, stop)
        n = stop - start
        out = Bitmap(n)
        if n == 0:
            return out
        w0, w1 = start >> 6, (stop - 1) >> 6
        src = self.words[w0 : w1 + 1]
        s = start & 63
        nw = out.words.size
        if s == 0:
            out.words[:] = src[:nw]
        else:
            sh, back = np.uint64(s), np.uint64(64 - s)
            out.words[:] = src[:nw] >> sh
            hi = src[1 : nw + 1] << back  # the next word's low bits move to the top
            out.words[: hi.size] |= hi
        out._clear_tail()
        return out

    def test_and_clear_range(self, start: int, stop: int) -> Bitmap:
        """Clear ``[start, stop)`` and return what was set there (as :meth:`extract_range`)."""
        taken = self.extract_range(start, stop)
        self.clear_range(start, stop)
        return taken

    # ------------------------------------------------------------------ two-bitmap operations
    def _check_same(self, other: Bitmap) -> None:
        if other.nbits != self.nbits:
            raise ValueError(f"bitmap sizes differ: {self.nbits} and {other.nbits}")

    def or_(self, other: Bitmap) -> Bitmap:
        """In place ``self |= other``."""
        self._check_same(other)
        np.bitwise_or(self.words, other.words, out=self.words)
        return self

    def and_(self, other: Bitmap) -> Bitmap:
        """In place ``self &= other``."""
        self._check_same(other)
        np.bitwise_and(self.words, other.words, out=self.words)
        return self

    def andnot_(self, other: Bitmap) -> Bitmap:
        """In place ``self &= ~other`` (clear every bit set in ``other``)."""
        self._check_same(other)
        chunk = MERGE_CHUNK_WORDS
        for a in range(0, self.words.size, chunk):
            d = self.words[a : a + chunk]
            np.bitwise_and(d, ~other.words[a : a + chunk], out=d)
        return self

    def __or__(self, other: Bitmap) -> Bitmap:
        return self.copy().or_(other)

    def __and__(self, other: Bitmap) -> Bitmap:
        return self.copy().and_(other)

    def __sub__(self, other: Bitmap) -> Bitmap:
        return self.copy().andnot_(other)

    def merge_from(self, source: Bitmap, clear_source: bool = False) -> int:
        """``self |= source`` (then ``source`` cleared if asked); returns ``self.count()``.

        This is one tracker's contribution to a dirty sync: QEMU ORs each report into its
        bitmap (``physical_memory_set_dirty_lebitmap()``), and a read-and-clear report
        (KVM's dirty log, DMA logging REPORT, iommufd GET_DIRTY_BITMAP) leaves the tracker
        empty.  The OR, the population count and the clearing run chunk by chunk so each
        chunk is counted while still in cache.
        """
        self._check_same(source)
        dst, src = self.words, source.words
        chunk = MERGE_CHUNK_WORDS
        total = 0
        for a in range(0, dst.size, chunk):
            d = dst[a : a + chunk]
            s = src[a : a + chunk]
            np.bitwise_or(d, s, out=d)
            total += int(popcount_words(d).sum(dtype=np.uint64))
            if clear_source:
                s.fill(0)
        return total

    # ------------------------------------------------------------------ internals
    def _check_range(self, start: int, stop: int) -> tuple[int, int]:
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= self.nbits:
            raise IndexError(f"range [{start}, {stop}) outside 0..{self.nbits}")
        return start, stop

    def _apply_range(self, start: int, stop: int, set_bits: bool) -> None:
        start, stop = self._check_range(start, stop)
        if start == stop:
            return
        w0, w1 = start >> 6, (stop - 1) >> 6
        first = ~_low_mask(start & 63)
        last = _low_mask(((stop - 1) & 63) + 1)
        words = self.words
        if w0 == w1:
            m = first & last
            if set_bits:
                words[w0] |= m
            else:
                words[w0] &= ~m
            return
        if set_bits:
            words[w0] |= first
            words[w0 + 1 : w1] = _ALL
            words[w1] |= last
        else:
            words[w0] &= ~first
            words[w0 + 1 : w1] = 0
            words[w1] &= ~last

    def _clear_tail(self) -> None:
        r = self.nbits & 63
        if r:
            self.words[-1] &= _low_mask(r)
