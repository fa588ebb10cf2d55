"""A spec's actions and predicates as C source, for the compiled search (checker/compiled.py).

Spec code is written once and runs on numpy columns and on z3 terms (checker/lang/ops.py).
This module evaluates it on a symbolic state (:class:`checker.smt.SymView`), as the z3
engine does, and prints the resulting terms as C: the guard of every action, the value it
assigns to each variable, and any state predicate.  So the C is not a second model of
the spec that could drift from it: it is the same term z3 reasons about, printed.

Semantics follow z3's bit-vectors (numpy ``int64`` agrees on every value a spec stores):
every value is a ``uint64_t`` holding a ``w``-bit vector zero-extended, results are cut
to their width, comparisons are signed or unsigned as the z3 operator says, and a shift
by the width or more gives what z3 gives (0, or the sign for an arithmetic shift), never
C's undefined behaviour.  A term this printer does not know raises :class:`NotCompilable`
and the explorer keeps numpy for the whole spec.

Every term is one ``const`` temporary per distinct z3 node (z3 shares equal subterms, so
common subexpressions are computed once); both arms of an ``If`` are computed, which is
safe because every operator here is total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from checker.lang.layout import Layout
from checker.lang.spec import Spec
from checker.smt import NotSymbolic, SymNext, SymView, _as_bool, _as_bv, _call


class NotCompilable(Exception):
    """The spec holds a term the C printer does not handle (the explorer keeps numpy)."""


PRELUDE = r"""
#include <stdint.h>
typedef uint64_t u64;
typedef int64_t i64;
#define MASK(w) ((w) >= 64 ? ~0ull : ((1ull << (w)) - 1))
static inline u64 cut(u64 x, int w) { return x & MASK(w); }
static inline i64 sx(u64 x, int w) { return w >= 64 ? (i64)x : (i64)(x << (64 - w)) >> (64 - w); }
static inline u64 shl(u64 a, u64 b, int w) { return b >= (u64)w ? 0 : cut(a << b, w); }
static inline u64 lshr(u64 a, u64 b, int w) { return b >= (u64)w ? 0 : a >> b; }
static inline u64 ashr(u64 a, u64 b, int w) {
    i64 s = sx(a, w);
    return cut((u64)(b >= (u64)w ? (s >> 63) : (s >> b)), w);
}
static inline u64 udiv(u64 a, u64 b, int w) { return b == 0 ? MASK(w) : a / b; }
static inline u64 urem(u64 a, u64 b) { return b == 0 ? a : a % b; }
"""

_BOOL_OPS = {z3.Z3_OP_AND: "&&", z3.Z3_OP_OR: "||", z3.Z3_OP_XOR: "!=", z3.Z3_OP_IFF: "=="}
_BV_ARITH = {z3.Z3_OP_BADD: "+", z3.Z3_OP_BSUB: "-", z3.Z3_OP_BMUL: "*"}
_BV_BITS = {z3.Z3_OP_BAND: "&", z3.Z3_OP_BOR: "|", z3.Z3_OP_BXOR: "^"}
_SIGNED_CMP = {z3.Z3_OP_SLT: "<", z3.Z3_OP_SLEQ: "<=", z3.Z3_OP_SGT: ">", z3.Z3_OP_SGEQ: ">="}
_UNSIGNED_CMP = {z3.Z3_OP_ULT: "<", z3.Z3_OP_ULEQ: "<=", z3.Z3_OP_UGT: ">", z3.Z3_OP_UGEQ: ">="}


def _width(e: z3.ExprRef) -> int:
    return e.size() if z3.is_bv(e) else 1


class Printer:
    """Prints z3 terms over one symbolic state as C statements, each node once.

    ``leaf`` maps a variable of the symbolic state (by z3 id) to the C expression that
    reads it; :meth:`value` returns the C name holding a term, after appending the
    statements that compute it (and whatever it needs that is not computed yet) to
    :attr:`lines`."""

    def __init__(self, leaf: Mapping[int, str]) -> None:
        self.leaf = dict(leaf)
        self.names: dict[int, str] = {}
        self.lines: list[str] = []
        self.temps = 0

    def value(self, root: z3.ExprRef) -> str:
        # (term, its id, its children once they were asked for: z3's children() is slow)
        stack: list[tuple[z3.ExprRef, int, list[z3.ExprRef] | None]] = [(root, root.get_id(), None)]
        while stack:
            e, eid, kids = stack.pop()
            if eid in self.names:
                continue
            if eid in self.leaf:
                self.names[eid] = self.leaf[eid]
                continue
            if kids is None:
                kids = e.children()
                stack.append((e, eid, kids))
                for c in kids:
                    cid = c.get_id()
                    if cid not in self.names:
                        stack.append((c, cid, None))
                continue
            expr = self._node(e, kids)
            name = f"t{self.temps}"
            self.temps += 1
            self.lines.append(f"const u64 {name} = {expr};")
            self.names[eid] = name
        return self.names[root.get_id()]

    def _node(self, e: z3.ExprRef, kids: list[z3.ExprRef]) -> str:
        k = e.decl().kind()
        a = [self.names[c.get_id()] for c in kids]
        if k in _SIMPLE:
            return _SIMPLE[k](a, _width(e))
        if k in _BOOL_OPS:
            return "(" + f" {_BOOL_OPS[k]} ".join(f"({x} != 0)" for x in a) + ")"
        if k in _BV_ARITH:
            return f"cut({f' {_BV_ARITH[k]} '.join(a)}, {_width(e)})"
        if k in _BV_BITS:
            return "(" + f" {_BV_BITS[k]} ".join(a) + ")"
        if k in _SIGNED_CMP:
            cw = _width(kids[0])
            return f"(sx({a[0]}, {cw}) {_SIGNED_CMP[k]} sx({a[1]}, {cw}))"
        if k in _UNSIGNED_CMP:
            return f"({a[0]} {_UNSIGNED_CMP[k]} {a[1]})"
        if k in _WITH_TERM:
            return _WITH_TERM[k](e, a)
        raise NotCompilable(f"z3 operator {e.decl().name()} ({e.sexpr()[:80]})")


def _distinct(a: list[str]) -> str:
    return "(" + " && ".join(f"({a[i]} != {a[j]})" for i in range(len(a)) for j in range(i + 1, len(a))) + ")"


def _concat(e: z3.ExprRef, a: list[str]) -> str:
    out, shift = a[-1], _width(e.children()[-1])
    for c, name in zip(reversed(e.children()[:-1]), reversed(a[:-1]), strict=True):
        out = f"(({name} << {shift}) | {out})"
        shift += _width(c)
    return out


def _extract(e: z3.ExprRef, a: list[str]) -> str:
    hi, lo = e.params()
    return f"cut({a[0]} >> {lo}, {hi - lo + 1})"


# Operators printed from their arguments' C names and the result's width.
_SIMPLE: dict[int, Callable[[list[str], int], str]] = {
    z3.Z3_OP_TRUE: lambda a, w: "1",
    z3.Z3_OP_FALSE: lambda a, w: "0",
    z3.Z3_OP_NOT: lambda a, w: f"!{a[0]}",
    z3.Z3_OP_IMPLIES: lambda a, w: f"(!{a[0]} || {a[1]})",
    z3.Z3_OP_EQ: lambda a, w: f"({a[0]} == {a[1]})",
    z3.Z3_OP_DISTINCT: lambda a, w: _distinct(a),
    z3.Z3_OP_ITE: lambda a, w: f"({a[0]} ? {a[1]} : {a[2]})",
    z3.Z3_OP_BNOT: lambda a, w: f"cut(~{a[0]}, {w})",
    z3.Z3_OP_BNEG: lambda a, w: f"cut(0 - {a[0]}, {w})",
    z3.Z3_OP_BSHL: lambda a, w: f"shl({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BLSHR: lambda a, w: f"lshr({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BASHR: lambda a, w: f"ashr({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BUDIV: lambda a, w: f"udiv({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BUDIV_I: lambda a, w: f"udiv({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BUREM: lambda a, w: f"urem({a[0]}, {a[1]})",
    z3.Z3_OP_BUREM_I: lambda a, w: f"urem({a[0]}, {a[1]})",
    z3.Z3_OP_ZERO_EXT: lambda a, w: a[0],  # values are kept zero-extended already
}
# Operators that need the term itself (a numeral's value, parameters, argument widths).
_WITH_TERM: dict[int, Callable[[z3.ExprRef, list[str]], str]] = {
    z3.Z3_OP_BNUM: lambda e, a: f"{e.as_long()}ull",
    z3.Z3_OP_SIGN_EXT: lambda e, a: f"cut((u64)sx({a[0]}, {_width(e.children()[0])}), {_width(e)})",
    z3.Z3_OP_EXTRACT: _extract,
    z3.Z3_OP_CONCAT: _concat,
}


@dataclass
class Unit:
    """The C source of one spec's actions and which of the predicates asked for compiled
    (``predicate_j`` is the ``j``-th of them)."""

    source: str
    actions: int
    predicates: tuple[int, ...]  # the predicates given that compiled, by their position


def _row_leaves(layout: Layout, s: SymView) -> dict[int, str]:
    """The C read of each symbolic variable (by z3 id) from the current row ``r``."""
    return {
        s.vars[slot.key].get_id(): f"((r[{slot.word}] >> {slot.shift}) & {slot.mask}ull)"
        for slot in layout.slots
    }


def _bool_term(what: str, fn: Callable[..., Any], *args: Any) -> z3.BoolRef:
    """``fn(*args)`` as a z3 boolean; what z3 cannot follow (a numpy-only operation, a
    numpy array returned) is :class:`NotCompilable`."""
    try:
        return _as_bool(_call(what, fn, *args), what)
    except NotSymbolic as exc:
        raise NotCompilable(str(exc)) from exc


def _effect_terms(what: str, fn: Callable[..., Any], s: SymView) -> dict[str, z3.BitVecRef]:
    """The value an effect assigns to each variable, as 64-bit z3 terms."""
    nxt = SymNext(s)
    try:
        _call(what, fn, s, nxt)
        out = {}
        for key, value in nxt.assigned.items():
            if isinstance(value, int) and not -(1 << 63) <= value < (1 << 64):
                # numpy's check sees the whole number, a 64-bit term only its low bits
                raise NotCompilable(f"{what} assigns {value} to {key}, beyond 64 bits")
            out[key] = _as_bv(value)
        return out
    except NotSymbolic as exc:
        raise NotCompilable(str(exc)) from exc


def spec_unit(spec: Spec, predicates: Sequence[tuple[str, Callable[[Any], Any]]] = ()) -> Unit:
    """The C of ``spec``'s actions, and of those ``predicates`` (state predicates, with a
    name for the comment) that compile (the others are left to numpy).

    Entry points (all over packed rows of ``W`` words; ``n`` rows in all):

    * ``guards(rows, n, en, i0, i1)``: for rows ``i0..i1-1``, ``en[k*n + i]`` = 1 where
      action ``k`` is enabled on row ``i``; one pass per row computes every guard, the
      terms they share once;
    * ``effects(rows, n, en, k0, k1, off, out, par, ovf)``: for actions ``k0..k1-1``, the
      successor of every enabled row, written from ``out[off[k]]`` on in row order, its
      row number in ``par``; ``ovf[k]`` = 1 when some assigned value does not fit its
      field (the caller then redoes that action with numpy, which reports it);
    * ``predicate_j(rows, n, ok)``: ``ok[i]`` = the ``j``-th compiled predicate on row i.
    """
    layout = spec.layout
    s = SymView(layout, "c")
    leaves = _row_leaves(layout, s)
    out = [PRELUDE, f"#define W {layout.words}"]
    guard_terms = [_bool_term(f"guard of {a.label}", a.guard, s) for a in spec.actions]
    p = Printer(leaves)
    names = [p.value(g) for g in guard_terms]
    sets = [f"en[(i64){k} * n + i] = ({g}) != 0;" for k, g in enumerate(names)]
    body = "\n        ".join(p.lines + sets)
    out.append(
        "/* every guard, row by row */\n"
        "void guards(const u64 *rows, i64 n, unsigned char *en, i64 i0, i64 i1) {\n"
        "    for (i64 i = i0; i < i1; i++) {\n        const u64 *r = rows + i * W;\n"
        f"        {body}\n    }}\n}}"
    )
    effect_fns = []
    for k, a in enumerate(spec.actions):
        p = Printer(leaves)
        writes: list[str] = []
        for key, value in _effect_terms(f"effect of {a.label}", a.effect, s).items():
            slot = layout.slot(key)
            vname = p.value(value)
            writes.append(f"bad |= {vname} > {slot.mask}ull;")
            clear = ~(slot.mask << slot.shift) & 0xFFFFFFFFFFFFFFFF
            w = slot.word
            writes.append(f"o[{w}] = (o[{w}] & {clear}ull) | (({vname} & {slot.mask}ull) << {slot.shift});")
        body = "\n            ".join(p.lines + writes)
        out.append(
            f"/* effect of {_comment(a.label)} */\n"
            f"static int effect_{k}(const u64 *rows, i64 n, const unsigned char *en, u64 *out, i64 *par) {{\n"
            f"    int bad = 0; i64 m = 0;\n"
            f"    for (i64 i = 0; i < n; i++) {{\n        if (!en[i]) continue;\n"
            f"        const u64 *r = rows + i * W;\n        u64 *o = out + m * W;\n"
            f"        for (int w = 0; w < W; w++) o[w] = r[w];\n"
            f"        {{\n            {body}\n        }}\n        par[m++] = i;\n    }}\n    return bad;\n}}"
        )
        effect_fns.append(f"effect_{k}")
    compiled: list[int] = []
    for index, (name, fn) in enumerate(predicates):
        try:
            p = Printer(leaves)
            vname = p.value(_bool_term(name, fn, s))
        except NotCompilable:
            continue
        body = "\n        ".join(p.lines)
        out.append(
            f"/* {_comment(name)} */\n"
            f"void predicate_{len(compiled)}(const u64 *rows, i64 n, unsigned char *ok) {{\n"
            f"    for (i64 i = 0; i < n; i++) {{\n        const u64 *r = rows + i * W;\n"
            f"        {body}\n        ok[i] = ({vname}) != 0;\n    }}\n}}"
        )
        compiled.append(index)
    n_actions = len(spec.actions)
    etab = ", ".join(effect_fns) or "0"
    out.append(
        "typedef int (*effect_fn)(const u64 *, i64, const unsigned char *, u64 *, i64 *);\n"
        f"static const effect_fn EFFECTS[] = {{{etab}}};\n"
        f"int actions(void) {{ return {n_actions}; }}\n"
        f"int words(void) {{ return W; }}\n"
        "void effects(const u64 *rows, i64 n, const unsigned char *en, int k0, int k1,\n"
        "             const i64 *off, u64 *out, i64 *par, unsigned char *ovf) {\n"
        "    for (int k = k0; k < k1; k++)\n"
        "        ovf[k] = EFFECTS[k](rows, n, en + (i64)k * n, out + off[k] * W, par + off[k]);\n}\n"
    )
    return Unit("\n\n".join(out), n_actions, tuple(compiled))


def _comment(text: str) -> str:
    return text.replace("*/", "* /")
