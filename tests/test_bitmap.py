"""model.concrete.bitmap against a plain Python ``set`` of page numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.concrete.bitmap import Bitmap, popcount

# Sizes around word boundaries and not multiples of 64.
SIZES = st.sampled_from([1, 2, 63, 64, 65, 127, 128, 129, 200, 640, 1000])


@st.composite
def bitmap_and_set(draw: st.DrawFn, nbits: int | None = None) -> tuple[Bitmap, set[int]]:
    n = draw(SIZES) if nbits is None else nbits
    pages = draw(st.sets(st.integers(0, n - 1), max_size=min(n, 80)))
    if draw(st.booleans()) and n > 1:  # add a dense run so whole words are full
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(a, n))
        pages |= set(range(a, b))
    return Bitmap.from_indices(n, sorted(pages)), pages


@st.composite
def a_range(draw: st.DrawFn, n: int) -> tuple[int, int]:
    a = draw(st.integers(0, n))
    b = draw(st.integers(a, n))
    return a, b


def as_set(b: Bitmap) -> set[int]:
    return {int(i) for i in b.indices()}


def tail_is_clear(b: Bitmap) -> bool:
    r = b.nbits & 63
    return r == 0 or int(b.words[-1]) >> r == 0


@given(bitmap_and_set())
def test_indices_count_and_membership(bs: tuple[Bitmap, set[int]]) -> None:
    b, s = bs
    assert as_set(b) == s
    assert b.count() == len(s)
    assert b.any() == bool(s)
    probe = np.arange(b.nbits)
    assert [bool(x) for x in b.test_indices(probe)] == [i in s for i in range(b.nbits)]
    assert tail_is_clear(b)


@given(st.data())
def test_set_and_clear_range(data: st.DataObject) -> None:
    b, s = data.draw(bitmap_and_set())
    a, e = data.draw(a_range(b.nbits))
    c = b.copy()
    b.set_range(a, e)
    assert as_set(b) == s | set(range(a, e))
    c.clear_range(a, e)
    assert as_set(c) == s - set(range(a, e))
    assert tail_is_clear(b) and tail_is_clear(c)


@given(st.data())
def test_set_and_clear_indices_with_duplicates(data: st.DataObject) -> None:
    b, s = data.draw(bitmap_and_set())
    idx = data.draw(st.lists(st.integers(0, b.nbits - 1), max_size=100))
    idx = idx + idx[: len(idx) // 2]  # duplicates, some in the same byte and word
    c = b.copy()
    b.set_indices(idx)
    assert as_set(b) == s | set(idx)
    c.clear_indices(idx)
    assert as_set(c) == s - set(idx)


@given(st.data())
def test_or_and_andnot(data: st.DataObject) -> None:
    n = data.draw(SIZES)
    x, sx = data.draw(bitmap_and_set(n))
    y, sy = data.draw(bitmap_and_set(n))
    assert as_set(x | y) == sx | sy
    assert as_set(x & y) == sx & sy
    assert as_set(x - y) == sx - sy
    z = x.copy()
    z.andnot_(y)
    assert as_set(z) == sx - sy
    assert as_set(x) == sx  # the operators did not modify x


@given(st.data(), st.booleans())
def test_merge_from(data: st.DataObject, clear: bool) -> None:
    n = data.draw(SIZES)
    x, sx = data.draw(bitmap_and_set(n))
    y, sy = data.draw(bitmap_and_set(n))
    total = x.merge_from(y, clear_source=clear)
    assert as_set(x) == sx | sy
    assert total == len(sx | sy)
    assert as_set(y) == (set() if clear else sy)


@given(st.data())
def test_extract_and_test_and_clear_range(data: st.DataObject) -> None:
    b, s = data.draw(bitmap_and_set())
    a, e = data.draw(a_range(b.nbits))
    part = b.extract_range(a, e)
    assert part.nbits == e - a
    assert as_set(part) == {i - a for i in s if a <= i < e}
    assert tail_is_clear(part)
    assert b.count_range(a, e) == len(part.indices())
    taken = b.test_and_clear_range(a, e)
    assert taken == part
    assert as_set(b) == {i for i in s if not a <= i < e}


@given(st.data())
def test_iter_set_bits_in_bounded_chunks(data: st.DataObject) -> None:
    b, s = data.draw(bitmap_and_set())
    a, e = data.draw(a_range(b.nbits))
    chunk = data.draw(st.sampled_from([64, 128, 1 << 20]))
    parts = list(b.iter_set_bits(a, e, chunk_bits=chunk))
    assert all(0 < p.size <= chunk for p in parts)
    flat = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    assert flat.tolist() == sorted(i for i in s if a <= i < e)


@given(st.data())
def test_find_set(data: st.DataObject) -> None:
    b, s = data.draw(bitmap_and_set())
    start = data.draw(st.integers(0, b.nbits))
    limit = data.draw(st.integers(0, b.nbits + 2))
    assert b.find_set(start, limit).tolist() == sorted(i for i in s if i >= start)[:limit]


@given(st.data())
def test_equality_and_copy(data: st.DataObject) -> None:
    n = data.draw(SIZES)
    x, sx = data.draw(bitmap_and_set(n))
    y, sy = data.draw(bitmap_and_set(n))
    assert (x == y) == (sx == sy)
    c = x.copy()
    assert c == x
    c.set_all()
    assert c.count() == n and tail_is_clear(c)
    assert as_set(x) == sx  # the copy is independent
    assert Bitmap(n) != Bitmap(n + 1)


@settings(max_examples=20)
@given(st.integers(1, 5000), st.integers(0, 2**32))
def test_find_set_large_and_dense(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.random(n) < rng.random()
    b = Bitmap.from_indices(n, np.flatnonzero(dense))
    ref = np.flatnonzero(dense)
    start = int(rng.integers(0, n))
    limit = int(rng.integers(1, n + 1))
    assert np.array_equal(b.find_set(start, limit), ref[ref >= start][:limit])
    assert b.count() == popcount(b.words) == int(dense.sum())


def test_errors() -> None:
    b = Bitmap(100)
    with pytest.raises(IndexError):
        b.set_range(5, 101)
    with pytest.raises(IndexError):
        b.set_indices([100])
    with pytest.raises(ValueError):
        b.or_(Bitmap(101))
    assert Bitmap.ones(100).count() == 100
    assert Bitmap.from_ranges(100, [(0, 3), (64, 70)]).indices().tolist() == [0, 1, 2, *range(64, 70)]
