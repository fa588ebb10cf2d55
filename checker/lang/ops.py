"""Operators that mean the same on numpy columns and on z3 terms.

Spec code (guards, effects, invariants) is evaluated two ways: by the explorer on numpy
``int64``/``bool`` columns (a whole BFS frontier at once) and by ``checker.smt`` on z3
bit-vector terms (one symbolic state).  Python's operators already agree between the two
(``==``, ``<``, ``+``, ``&``, ``|``, ``~``, ``<<``, ``>>``; z3 integers are 64-bit vectors,
like numpy's ``int64``).  What does not carry over is numpy's library: use these instead
of ``np.where``, fancy indexing into a table, ``np.logical_and.reduce`` and the like, and a
spec stays checkable by both engines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:  # z3 is a dependency, but keep the numpy path importable without it
    import z3
except ImportError:  # pragma: no cover
    z3 = None

Term = Any  # numpy column, Python scalar, or z3 expression


def is_symbolic(x: Any) -> bool:
    return z3 is not None and isinstance(x, z3.ExprRef)


def _bv(x: Any) -> Any:
    """A z3 term as a 64-bit vector (booleans become 0/1)."""
    if is_symbolic(x):
        if z3.is_bool(x):
            return z3.If(x, z3.BitVecVal(1, 64), z3.BitVecVal(0, 64))
        return x
    return z3.BitVecVal(int(x), 64)


def _bool(x: Any) -> Any:
    if is_symbolic(x):
        return x if z3.is_bool(x) else x != 0
    return z3.BoolVal(bool(x))


def where(cond: Term, a: Term, b: Term) -> Term:
    """``a`` where ``cond`` holds, else ``b`` (``np.where`` / ``If``).

    Symbolic results are z3 ``Bool`` when a branch is, else 64-bit vectors; a condition
    that is a constant picks its branch without building an ``If``."""
    if is_symbolic(cond) or is_symbolic(a) or is_symbolic(b):
        as_bool = (is_symbolic(a) and z3.is_bool(a)) or (is_symbolic(b) and z3.is_bool(b))
        conv = _bool if as_bool else _bv
        c = _bool(cond)
        if z3.is_true(c):
            return conv(a)
        if z3.is_false(c):
            return conv(b)
        return z3.If(c, conv(a), conv(b))
    return np.where(cond, a, b)


def _mixed(a: Term, b: Term, absorbing: bool) -> Term | None:
    """``a`` op ``b`` when one is a z3 term and the other a constant scalar (Python or numpy
    ``bool``, which z3's operators refuse): the constant either absorbs (``absorbing``) or
    drops out.  None when both are of one kind."""
    if is_symbolic(a) == is_symbolic(b):
        return None
    sym, con = (a, b) if is_symbolic(a) else (b, a)
    if np.ndim(con) != 0:
        raise TypeError("cannot combine a numpy column with a z3 term")
    return z3.BoolVal(absorbing) if bool(con) == absorbing else _bool(sym)


def all_of(xs: Iterable[Term]) -> Term:
    """Conjunction of boolean terms (True for none)."""
    out: Term = True
    for x in xs:
        if out is True:
            out = x
            continue
        mixed = _mixed(out, x, absorbing=False)
        out = (out & x) if mixed is None else mixed
    return out


def any_of(xs: Iterable[Term]) -> Term:
    """Disjunction of boolean terms (False for none)."""
    out: Term = False
    for x in xs:
        if out is False:
            out = x
            continue
        mixed = _mixed(out, x, absorbing=True)
        out = (out | x) if mixed is None else mixed
    return out


def implies(a: Term, b: Term) -> Term:
    return ~a | b if not isinstance(a, bool) else (b if a else True)


def lookup(table: Sequence[int] | np.ndarray, index: Term) -> Term:
    """``table[index]`` for a small constant table (an ``If`` chain when symbolic).

    A table of more than one dimension is read flattened (see :func:`lookup_nd`)."""
    t = np.asarray(table)
    if t.ndim != 1:
        t = t.ravel()
    if is_symbolic(index):
        return _sym_table(t.astype(np.int64), (index,))
    if t.dtype != np.int64:
        t = t.astype(np.int64)
    return t[index]


def lookup_bool(table: Sequence[bool] | np.ndarray, index: Term) -> Term:
    """``table[index]`` for a constant boolean table."""
    t = np.asarray(table)
    if t.ndim != 1:
        t = t.ravel()
    if t.dtype != bool:
        t = t.astype(bool)
    if is_symbolic(index):
        return _sym_table(t, (index,))
    return t[index]


def lookup2(table: np.ndarray, row: Term, col: Term) -> Term:
    """``table[row, col]`` for a small constant 2-D table (boolean tables give booleans)."""
    return lookup_nd(table, row, col)


def lookup_nd(table: np.ndarray, *indices: Term) -> Term:
    """``table[i, j, ...]`` for a small constant table, one index per dimension; each index
    is a Python int, a numpy column or a z3 term.  A boolean table gives booleans (z3
    ``Bool``), any other table 64-bit integers."""
    t = np.asarray(table)
    if len(indices) != t.ndim:
        raise ValueError(f"lookup_nd: {len(indices)} indices for a {t.ndim}-dimensional table")
    for i in indices:
        if is_symbolic(i):
            return _sym_table(t if t.dtype == bool else t.astype(np.int64), indices)
    return t[indices]


def _sym_table(t: np.ndarray, indices: Sequence[Term]) -> Term:
    """The symbolic ``t[indices]``: constant indices slice, symbolic ones become an ``If``
    chain over groups of equal sub-tables (so a table with few distinct rows stays small).
    An index outside the table reads the largest group, as an unconstrained term may."""
    if t.ndim == 0 or (t.size and (t == t.flat[0]).all()):
        v = t.flat[0] if t.size else 0
        return z3.BoolVal(bool(v)) if t.dtype == bool else z3.BitVecVal(int(v), 64)
    idx, rest = indices[0], indices[1:]
    const = as_const(idx)
    if const is not None and 0 <= const < t.shape[0]:
        return _sym_table(t[const], rest)
    groups: dict[bytes, list[int]] = {}
    for i in range(t.shape[0]):
        groups.setdefault(np.ascontiguousarray(t[i]).tobytes(), []).append(i)
    members = sorted(groups.values(), key=len)  # the largest group is the default
    iv = _bv(idx)
    out = _sym_table(t[members[-1][0]], rest)
    for group in reversed(members[:-1]):
        cond = any_of(iv == i for i in group)
        out = z3.If(cond, _sym_table(t[group[0]], rest), out)
    return out


def isin(x: Term, values: Iterable[int]) -> Term:
    """Whether ``x`` is one of the constant ``values`` (``np.isin``)."""
    vals = [int(v) for v in values]
    if is_symbolic(x):
        return any_of(_bv(x) == v for v in vals) if vals else z3.BoolVal(False)
    if 0 < len(vals) <= 16:  # a few comparisons beat np.isin's sorting on short lists
        x = np.asarray(x)
        out = x == vals[0]
        for v in vals[1:]:
            out = out | (x == v)
        return out
    return np.isin(x, vals)


def maximum(a: Term, b: Term) -> Term:
    """The larger of ``a`` and ``b`` (signed, as ``np.maximum`` on ``int64``)."""
    if is_symbolic(a) or is_symbolic(b):
        return where(a > b, a, b)
    return np.maximum(a, b)


def minimum(a: Term, b: Term) -> Term:
    """The smaller of ``a`` and ``b`` (signed, as ``np.minimum`` on ``int64``)."""
    if is_symbolic(a) or is_symbolic(b):
        return where(a < b, a, b)
    return np.minimum(a, b)


def pow2(exponent: Term, limit: int) -> Term:
    """``1 << exponent`` for an exponent in ``0..limit-1`` (a bit of a small bit set).

    On z3 a shift by a variable is a 64-bit barrel shifter; a chain of ``limit`` cases is
    far cheaper for the solver.  Outside ``0..limit-1`` the symbolic value is 0."""
    if is_symbolic(exponent):
        e = _bv(exponent)
        out: Term = z3.BitVecVal(0, 64)
        for i in range(limit - 1, -1, -1):
            out = z3.If(e == i, z3.BitVecVal(1 << i, 64), out)
        return out
    return np.left_shift(1, exponent)


def as_const(x: Term) -> int | None:
    """The value of ``x`` when it is one known integer (a Python or numpy scalar, a 0-d
    array, a z3 numeral), else None (a column, or a symbolic term)."""
    if is_symbolic(x):
        if z3.is_bv_value(x):
            return int(x.as_signed_long())
        if z3.is_true(x) or z3.is_false(x):
            return int(z3.is_true(x))
        return None
    if np.ndim(x) != 0:
        return None
    return int(x)


def is_any(mask: Term) -> bool:
    """Whether some entry of ``mask`` may hold: ``mask.any()`` on numpy, always True for a
    z3 term.  Only for shortcuts that skip work which would change nothing (``if not
    is_any(rows): return``); a symbolic evaluation then simply does that work."""
    if is_symbolic(mask):
        return True
    return bool(np.any(mask))


def is_all(mask: Term) -> bool:
    """Whether every entry of ``mask`` surely holds: ``mask.all()`` on numpy, and for a z3
    term whether it *is* the constant True (False when it merely might be).  The
    counterpart of :func:`is_any`, for shortcuts that skip work known to change nothing."""
    if is_symbolic(mask):
        return bool(z3.is_true(mask))
    return bool(np.all(mask))


def bit(x: Term, i: int) -> Term:
    """Whether bit ``i`` of ``x`` is set."""
    return ((x >> i) & 1) == 1


def bit_set(x: Term, i: int, value: Term) -> Term:
    """``x`` with bit ``i`` set to the boolean ``value``."""
    return where(value, x | (1 << i), x & ~(1 << i))


def false_like(x: Term) -> Term:
    """A constant False shaped like ``x`` (a column of Falses, or z3 False)."""
    if is_symbolic(x):
        return z3.BoolVal(False)
    return np.zeros(np.shape(x), dtype=bool)


def true_like(x: Term) -> Term:
    """A constant True shaped like ``x`` (a column of Trues, or z3 True)."""
    if is_symbolic(x):
        return z3.BoolVal(True)
    return np.ones(np.shape(x), dtype=bool)


def zeros_like(x: Term) -> Term:
    """A constant integer 0 shaped like ``x`` (an ``int64`` column, or a z3 zero)."""
    if is_symbolic(x):
        return z3.BitVecVal(0, 64)
    return np.zeros(np.shape(x), dtype=np.int64)
