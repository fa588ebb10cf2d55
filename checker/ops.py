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
    z3 = None  # type: ignore[assignment]

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
    """``a`` where ``cond`` holds, else ``b`` (``np.where`` / ``If``)."""
    if any(is_symbolic(x) for x in (cond, a, b)):
        if (is_symbolic(a) and z3.is_bool(a)) or (is_symbolic(b) and z3.is_bool(b)):
            return z3.If(_bool(cond), _bool(a), _bool(b))
        return z3.If(_bool(cond), _bv(a), _bv(b))
    return np.where(cond, a, b)


def all_of(xs: Iterable[Term]) -> Term:
    """Conjunction of boolean terms (True for none)."""
    out: Term = True
    for x in xs:
        out = x if out is True else (out & x)
    return out


def any_of(xs: Iterable[Term]) -> Term:
    """Disjunction of boolean terms (False for none)."""
    out: Term = False
    for x in xs:
        out = x if out is False else (out | x)
    return out


def implies(a: Term, b: Term) -> Term:
    return ~a | b if not isinstance(a, bool) else (b if a else True)


def lookup(table: Sequence[int] | np.ndarray, index: Term) -> Term:
    """``table[index]`` for a small constant table (an ``If`` chain when symbolic)."""
    values = [int(v) for v in np.asarray(table).ravel()]
    if is_symbolic(index):
        idx = _bv(index)
        out = z3.BitVecVal(values[-1], 64)
        for i in range(len(values) - 2, -1, -1):
            out = z3.If(idx == i, z3.BitVecVal(values[i], 64), out)
        return out
    return np.asarray(values, dtype=np.int64)[index]


def lookup_bool(table: Sequence[bool] | np.ndarray, index: Term) -> Term:
    """``table[index]`` for a constant boolean table."""
    values = [bool(v) for v in np.asarray(table).ravel()]
    if is_symbolic(index):
        idx = _bv(index)
        return any_of(idx == i for i, v in enumerate(values) if v) if any(values) else z3.BoolVal(False)
    return np.asarray(values, dtype=bool)[index]


def lookup2(table: np.ndarray, row: Term, col: Term) -> Term:
    """``table[row, col]`` for a small constant 2-D table."""
    t = np.asarray(table)
    if is_symbolic(row) or is_symbolic(col):
        out: Term = int(t[-1, -1])
        for i in range(t.shape[0] - 1, -1, -1):
            out = where(row == i, lookup(t[i], col), out)
        return out
    return t[row, col]


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
    if is_symbolic(x):
        return z3.BoolVal(True)
    return np.ones(np.shape(x), dtype=bool)
