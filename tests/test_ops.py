"""checker.lang.ops: every helper means the same on numpy columns and on z3 terms.

Each helper is run twice on the same inputs: once on numpy ``int64``/``bool`` columns, once
on 64-bit z3 variables that are then replaced by the column's values one entry at a time;
the answers must agree entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.lang import ops

SMALL = st.integers(min_value=-3, max_value=40)
SETTINGS = settings(max_examples=60, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def _own_z3_context():
    """A fresh z3 context for this module, the previous one restored after it.  Which of
    several equally short counterexamples z3 returns depends on every term created in
    its context before; the many terms made here must not change what other test modules
    (e.g. tests/test_smt.py, which pins one counterexample) get from z3."""
    saved = z3.z3._main_ctx
    z3.z3._main_ctx = None  # z3.main_ctx() makes a new one on first use
    yield
    z3.z3._main_ctx = saved



def _value(term: Any) -> Any:
    term = z3.simplify(term)
    if z3.is_bool(term):
        assert z3.is_true(term) or z3.is_false(term), term
        return z3.is_true(term)
    assert z3.is_bv_value(term), term
    return term.as_signed_long()


def agree(fn: Callable[..., Any], *columns: list[int], booleans: tuple[int, ...] = ()) -> None:
    """``fn`` on numpy columns equals ``fn`` on z3 variables substituted entry by entry.
    Arguments whose position is in ``booleans`` are boolean columns / z3 Bools."""
    cols = [np.asarray(c, dtype=bool if i in booleans else np.int64) for i, c in enumerate(columns)]
    explicit = np.broadcast_to(np.asarray(fn(*cols)), (len(cols[0]),))
    syms = [z3.Bool(f"b{i}") if i in booleans else z3.BitVec(f"x{i}", 64) for i in range(len(cols))]
    term = fn(*syms)
    for j in range(len(cols[0])):
        subst = [
            (v, z3.BoolVal(bool(c[j])) if i in booleans else z3.BitVecVal(int(c[j]), 64))
            for i, (v, c) in enumerate(zip(syms, cols, strict=True))
        ]
        got = _value(z3.substitute(ops._bool(term) if isinstance(explicit[j], np.bool_) else ops._bv(term),
                                   *subst))
        want = bool(explicit[j]) if explicit.dtype == bool else int(explicit[j])
        assert got == want, (fn, [int(c[j]) for c in cols], got, want)


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), SMALL, SMALL), min_size=1, max_size=8))
def test_where(rows):
    c, a, b = (list(x) for x in zip(*rows, strict=True))
    agree(ops.where, c, a, b, booleans=(0,))
    agree(lambda c, a: ops.where(c, a, 7), c, a, booleans=(0,))
    agree(lambda c, a, b: ops.where(c, a, b), c, [x > 0 for x in a], [x > 0 for x in b], booleans=(0, 1, 2))


def test_where_with_a_constant_condition_picks_a_branch():
    x = z3.BitVec("x", 64)
    assert ops.where(True, x, 3).eq(x)
    assert ops.where(np.False_, x, 3).eq(z3.BitVecVal(3, 64))
    assert ops.where(z3.BoolVal(True), 1, x).eq(z3.BitVecVal(1, 64))
    b = z3.Bool("b")
    assert z3.is_bool(ops.where(False, 1, b))  # a Bool branch makes the result Bool
    np.testing.assert_array_equal(ops.where(True, np.array([1, 2]), 0), [1, 2])


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=8))
def test_all_of_any_of_implies(rows):
    a, b, c = (list(x) for x in zip(*rows, strict=True))
    agree(lambda a, b, c: ops.all_of([a, b, c]), a, b, c, booleans=(0, 1, 2))
    agree(lambda a, b, c: ops.any_of([a, b, c]), a, b, c, booleans=(0, 1, 2))
    agree(ops.implies, a, b, booleans=(0, 1))
    # mixed with constant scalars (Python and numpy), which z3's operators refuse
    for k in (True, False, np.True_, np.False_):
        agree(lambda a, b, k=k: ops.all_of([a, k, b]), a, b, booleans=(0, 1))
        agree(lambda a, b, k=k: ops.any_of([k, a, b]), a, b, booleans=(0, 1))
    assert ops.all_of([]) is True and ops.any_of([]) is False


def test_all_of_rejects_a_column_mixed_with_a_term():
    with pytest.raises(TypeError):
        ops.all_of([np.array([True, False]), z3.Bool("b")])


TABLE1 = np.array([5, -1, 5, 7, 0, 5], dtype=np.int64)
BOOL1 = np.array([True, False, False, True, True, False])
TABLE3 = np.arange(3 * 2 * 4, dtype=np.int64).reshape(3, 2, 4) % 5 - 1
TABLE3[1] = TABLE3[0]  # equal rows share a case


@SETTINGS
@given(st.lists(st.integers(0, 5), min_size=1, max_size=8))
def test_lookup_tables(idx):
    agree(lambda i: ops.lookup(TABLE1, i), idx)
    agree(lambda i: ops.lookup_bool(BOOL1, i), idx)
    agree(lambda i: ops.lookup(BOOL1, i), idx)  # lookup of a bool table gives integers


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 3)), min_size=1, max_size=8))
def test_lookup_nd_and_lookup2(rows):
    i, j, k = (list(x) for x in zip(*rows, strict=True))
    agree(lambda i, j, k: ops.lookup_nd(TABLE3, i, j, k), i, j, k)
    agree(lambda i, k: ops.lookup_nd(TABLE3, i, 1, k), i, k)  # a constant index slices
    agree(lambda i, k: ops.lookup_nd(TABLE3 >= 1, i, 0, k), i, k)  # boolean table
    agree(lambda j, k: ops.lookup2(TABLE3[2], j, k), j, k)
    agree(lambda j, k: ops.lookup2(TABLE3[2] == 0, j, k), j, k)


def test_lookup_nd_types_and_arity():
    i = z3.BitVec("i", 64)
    assert z3.is_bool(ops.lookup_nd(BOOL1, i))
    assert z3.is_bv(ops.lookup_nd(TABLE1, i))
    assert z3.is_bool(ops.lookup_nd(np.zeros((2, 2), dtype=bool), i, i))  # constant table
    with pytest.raises(ValueError, match="2 indices"):
        ops.lookup_nd(TABLE1, i, i)


@SETTINGS
@given(st.lists(SMALL, min_size=1, max_size=8), st.lists(SMALL, min_size=1, max_size=4))
def test_isin(xs, values):
    agree(lambda x: ops.isin(x, values), xs)
    agree(lambda x: ops.isin(x, []), xs)


@SETTINGS
@given(st.lists(st.tuples(SMALL, SMALL), min_size=1, max_size=8))
def test_maximum_minimum(rows):
    a, b = (list(x) for x in zip(*rows, strict=True))
    agree(ops.maximum, a, b)
    agree(ops.minimum, a, b)
    agree(lambda a: ops.maximum(a, 0), a)
    agree(lambda a: ops.minimum(3, a), a)


@SETTINGS
@given(st.lists(st.integers(0, 7), min_size=1, max_size=8))
def test_pow2(exps):
    agree(lambda e: ops.pow2(e, 8), exps)
    agree(lambda e: ops.pow2(e, 8) | 1, exps)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 255), st.booleans()), min_size=1, max_size=8), st.integers(0, 7))
def test_bit_and_bit_set(rows, i):
    x, v = (list(c) for c in zip(*rows, strict=True))
    agree(lambda x: ops.bit(x, i), x)
    agree(lambda x, v: ops.bit_set(x, i, v), x, v, booleans=(1,))


def test_constants_shaped_like():
    col = np.array([3, 4, 5])
    assert ops.false_like(col).tolist() == [False] * 3
    assert ops.true_like(col).tolist() == [True] * 3
    z = ops.zeros_like(col)
    assert z.tolist() == [0] * 3 and z.dtype == np.int64
    x = z3.BitVec("x", 64)
    assert z3.is_false(ops.false_like(x)) and z3.is_true(ops.true_like(x))
    assert ops.zeros_like(x).eq(z3.BitVecVal(0, 64))
    assert ops.zeros_like(7).shape == ()


def test_is_any_and_is_all_are_conservative_shortcuts():
    assert ops.is_any(np.array([False, True])) and not ops.is_any(np.array([False, False]))
    assert ops.is_all(np.array([True, True])) and not ops.is_all(np.array([True, False]))
    assert not ops.is_any(np.zeros(0, dtype=bool)) and ops.is_all(np.zeros(0, dtype=bool))
    assert ops.is_any(False) is False and ops.is_all(np.True_) is True
    b = z3.Bool("b")
    # a term may hold: work must be done; it is not known to hold everywhere
    assert ops.is_any(b) and ops.is_any(z3.BoolVal(False))
    assert not ops.is_all(b) and ops.is_all(z3.BoolVal(True)) and not ops.is_all(z3.BoolVal(False))


def test_as_const():
    assert ops.as_const(3) == 3 and ops.as_const(np.int64(-2)) == -2
    assert ops.as_const(np.array(4)) == 4 and ops.as_const(np.True_) == 1
    assert ops.as_const(np.array([1, 2])) is None
    assert ops.as_const(z3.BitVecVal(-1, 64)) == -1 and ops.as_const(z3.BoolVal(True)) == 1
    assert ops.as_const(z3.BitVec("x", 64)) is None and ops.as_const(z3.BitVec("x", 64) + 1) is None
