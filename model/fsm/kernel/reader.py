"""The kernel's step function ``vfio_mig_get_next_state()``, as written in a given source.

Drivers reach a requested device state by calling ``vfio_mig_get_next_state(device, cur,
new, &next)`` in a loop (mlx5 ``mlx5vf_pci_set_device_state()``, pds, mtty): each call
returns one step, the driver performs that arc and calls again until ``cur == new`` or the
call fails.  The function (``drivers/vfio/vfio_main.c`` since 6.0, ``drivers/vfio/vfio.c``
in 5.18) is made of

* ``vfio_from_fsm_table[cur][new]``: the next step before skipping optional states;
* ``state_flags_table[state]``: the ``VFIO_MIGRATION_*`` bits a state needs (ERROR: ``~0U``);
* checks on ``cur`` (out of range or unsupported: ``WARN_ON`` and ``-EINVAL``) and on
  ``new`` (``-EINVAL``);
* a *skip loop* that replaces an unsupported step by ``vfio_from_fsm_table[step][new]``;
* ``return`` ``-EINVAL`` when the step is ERROR, else 0.

This module does not hard-code that shape.  It reads the function from a source file with a
small C front end (tokens, declarations with designated initialisers, ``if``/``while``/
``do``/``for``, expressions, ``WARN_ON``/``ARRAY_SIZE``/``likely``, and helper functions of
the same file) and *interprets* it, so a kernel developer can check a modified tree: a
changed table cell, a different loop condition, a helper such as
``vfio_mig_state_supported()``.  Anything it cannot interpret is reported as a
:class:`KernelSourceError` naming the file, the line and the construct.

The built-in default (:func:`default_kernel`) is the function of Linux 6.2 .. 7.1, written
here as data and an equivalent statement tree: the table is the transcription in
vfio-facts §2.2 (read at v6.2-cycle commit 037dd1308c6d, identical in 6.3.2 and the 7.1 merge
window).  Its skip loop has no exit for ERROR: a ``STOP_COPY -> PRE_COPY[_P2P]`` request on
a PRE_COPY device spins for ever (the blocked cell is ERROR, and ``state_flags_table[ERROR]``
= ``~0U`` is never "supported").  This was reported and a fix posted on 2026-06-02
("vfio: prevent infinite loop in vfio_mig_get_next_state() on blocked arc", Fixes:
4db52602a607, Cc: stable), which the VFIO maintainer applied to the vfio next branch for
v7.2; :func:`fixed_kernel` is the built-in with that fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from model.fsm.uapi import (
    ALL_FLAGS,
    FEATURE_SETS,
    NUM_STATES,
    DeviceState,
    MigFlag,
    check_flags,
    supported_states,
)

FUNCTION = "vfio_mig_get_next_state"
FSM_TABLE = "vfio_from_fsm_table"
FLAGS_TABLE = "state_flags_table"

EINVAL = 22
# errno values a return statement may name (include/uapi/asm-generic/errno-base.h, errno.h)
ERRNO: dict[str, int] = {
    "EPERM": 1, "ENOENT": 2, "EIO": 5, "ENOMEM": 12, "EFAULT": 14, "EBUSY": 16,
    "ENODEV": 19, "EINVAL": 22, "ENOTTY": 25, "ERANGE": 34, "EOPNOTSUPP": 95,
}

# step_table() codes for calls that do not produce a step
STEP_EINVAL = -1  # the call fails (-EINVAL or another errno)
STEP_LOOP = -2  # the call never returns (non-terminating loop)
STEP_UNDEFINED = -3  # the call has undefined behaviour (reads outside a table, ...)

_MAX_LOOP_ITERATIONS = 100_000
_TABLE_ROLES = {FSM_TABLE: "the next-step table", FLAGS_TABLE: "the flags each state needs"}


class KernelSourceError(ValueError):
    """A kernel source could not be read or interpreted; the message names file and cause."""


class StepError(RuntimeError):
    """A call of the step function that does not return a value."""


class NonTerminatingStep(StepError):
    """The call never returns: a loop comes back to a state it was in before."""


class UndefinedStep(StepError):
    """The call has undefined behaviour in C (index outside a table, unset variable, ...)."""


# =============================================================================== C types
@dataclass(frozen=True)
class CType:
    """An integer type: width and signedness (enough for the arithmetic of this function)."""

    bits: int = 32
    unsigned: bool = False
    boolean: bool = False  # C's bool: any non-zero value converts to 1

    def wrap(self, v: int) -> int:
        if self.boolean:
            return int(v != 0)
        v &= (1 << self.bits) - 1
        if not self.unsigned and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v

    def promoted(self) -> CType:
        return INT if self.bits < 32 else self


INT = CType(32, False)
UINT = CType(32, True)

_TYPE_WORDS = {
    "u8": CType(8, True), "s8": CType(8, False), "char": CType(8, False),
    "u16": CType(16, True), "s16": CType(16, False), "short": CType(16, False),
    "u32": UINT, "s32": INT, "int": INT, "bool": CType(8, True, True),
    "_Bool": CType(8, True, True),
    "u64": CType(64, True), "s64": CType(64, False), "long": CType(64, False),
}
_QUALIFIERS = {"static", "const", "volatile", "register", "signed", "unsigned", "inline",
               "__always_inline", "noinline", "__maybe_unused", "__read_mostly"}


def _ctype_of(words: Sequence[str]) -> CType:
    base: CType | None = None
    for w in words:
        if w in _TYPE_WORDS:
            t = _TYPE_WORDS[w]
            base = t if base is None or t.bits >= base.bits else base
    if base is None:
        base = INT  # "unsigned", "enum X", "signed" alone are int-sized
    if base.boolean:
        return base
    if "unsigned" in words:
        base = CType(base.bits, True)
    elif "signed" in words:
        base = CType(base.bits, False)
    return base


def _common(a: CType, b: CType) -> CType:
    """C's usual arithmetic conversions for the integer types used here."""
    a, b = a.promoted(), b.promoted()
    if a.bits != b.bits:
        return a if a.bits > b.bits else b
    return CType(a.bits, a.unsigned or b.unsigned)


# ============================================================================ constants
def _uapi_constants() -> dict[str, tuple[int, CType]]:
    consts: dict[str, tuple[int, CType]] = {}
    for s in DeviceState:  # include/uapi/linux/vfio.h enum vfio_device_mig_state
        consts[f"VFIO_DEVICE_STATE_{s.name}"] = (int(s), INT)
    consts["VFIO_DEVICE_STATE_NR"] = (NUM_STATES, INT)  # sentinel added by 7.1
    for f in MigFlag:  # struct vfio_device_feature_migration flags
        consts[f"VFIO_MIGRATION_{f.name}"] = (int(f), INT)
    for name, v in ERRNO.items():
        consts[name] = (v, INT)
    consts["true"] = (1, INT)
    consts["false"] = (0, INT)
    return consts


UAPI_CONSTANTS = _uapi_constants()


# ================================================================================ lexer
@dataclass(frozen=True)
class Tok:
    kind: str  # "id" "num" "op" "str"
    text: str
    line: int


_LEX = re.compile(
    r"""
      (?P<nl>\n)
    | (?P<ws>[ \t\r\f\v]+|\\\n)
    | (?P<bc>/\*.*?(?:\*/|\Z))
    | (?P<lc>//[^\n]*)
    | (?P<pp>\#(?:[^\n\\]|\\.|\\\n)*)
    | (?P<num>(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*)
    | (?P<id>[A-Za-z_]\w*)
    | (?P<str>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
    | (?P<op>->|<<=|>>=|\.\.\.|<<|>>|<=|>=|==|!=|&&|\|\||\+\+|--|[-+*/%&|^]=
             |[-+*/%&|^!~<>=?:;,.(){}\[\]])
    | (?P<other>.)
    """,
    re.X | re.S,
)
_DEFINE = re.compile(r"#\s*define\s+([A-Za-z_]\w*)(?!\()\s*(.*)", re.S)


def _lex(text: str) -> tuple[list[Tok], dict[str, tuple[str, int]]]:
    """Tokens without comments and preprocessor lines, and the object-like #defines."""
    toks: list[Tok] = []
    defines: dict[str, tuple[str, int]] = {}
    line = 1
    at_line_start = True
    pos = 0
    while pos < len(text):
        m = _LEX.match(text, pos)
        assert m is not None  # "other" matches any character
        kind, s = m.lastgroup, m.group()
        if kind == "pp" and not at_line_start:  # '#' inside a line: an operator token
            kind, s = "op", "#"
        end = pos + len(s)
        if kind == "nl":
            at_line_start = True
        elif kind in ("ws", "bc", "lc"):
            pass
        elif kind == "pp":
            d = _DEFINE.match(s)
            if d:
                body = re.sub(r"/\*.*?\*/|//[^\n]*", " ", d.group(2).replace("\\\n", " "))
                defines.setdefault(d.group(1), (body.strip(), line))
        else:
            at_line_start = False
            toks.append(Tok("op" if kind == "other" else kind, s, line))
        line += s.count("\n")
        pos = end
    return toks, defines


# ============================================================================ raw syntax
# The parser produces these; the resolver turns them into executable nodes.
@dataclass
class RNode:
    line: int


@dataclass
class RNum(RNode):
    value: int
    ctype: CType


@dataclass
class RName(RNode):
    name: str


@dataclass
class RMember(RNode):
    obj: Any
    field: str


@dataclass
class RIndex(RNode):
    base: Any
    index: Any


@dataclass
class RCall(RNode):
    func: str
    args: list[Any]


@dataclass
class RUnary(RNode):
    op: str
    operand: Any


@dataclass
class RBinary(RNode):
    op: str
    left: Any
    right: Any


@dataclass
class RTernary(RNode):
    test: Any
    then: Any
    other: Any


@dataclass
class RCast(RNode):
    ctype: CType
    operand: Any


@dataclass
class RAssign(RNode):
    op: str
    target: Any
    value: Any


@dataclass
class RInit(RNode):
    # items: (designators, value); a designator is (lo, hi) index expressions (GCC ranges)
    items: list[tuple[list[tuple[Any, Any]], Any]]


@dataclass
class RDeclarator(RNode):
    name: str
    dims: list[Any]
    init: Any
    ctype: CType


@dataclass
class SDecl(RNode):
    decls: list[RDeclarator]
    enum_consts: list[tuple[str, Any]]


@dataclass
class SIf(RNode):
    test: Any
    then: Any
    other: Any
    text: str


@dataclass
class SLoop(RNode):
    kind: str  # while | do | for
    init: Any
    test: Any
    step: Any
    body: Any
    text: str


@dataclass
class SReturn(RNode):
    value: Any
    text: str


@dataclass
class SExpr(RNode):
    expr: Any


@dataclass
class SBlock(RNode):
    body: list[Any]


@dataclass
class SJump(RNode):
    kind: str  # break | continue


_BINARY_PREC = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}
_ASSIGN_OPS = {"=", "|=", "&=", "^=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>="}
_UNSUPPORTED_STMTS = {"switch", "goto", "case", "default", "asm", "__asm__"}


def _is_type_word(t: Tok) -> bool:
    return t.kind == "id" and (t.text in _TYPE_WORDS or t.text in _QUALIFIERS or t.text == "enum")


def _is_decl_prefix(toks: Sequence[Tok]) -> bool:
    """Type words only (an identifier is allowed as the tag after ``enum``)."""
    return bool(toks) and all(
        _is_type_word(t) or (k and toks[k - 1].text == "enum" and t.kind == "id")
        for k, t in enumerate(toks)
    )


class _Parser:
    """Recursive-descent parser for the C subset ``vfio_mig_get_next_state()`` uses."""

    def __init__(self, toks: list[Tok], path: str, start: int = 0, end: int | None = None):
        self.t = toks
        self.path = path
        self.i = start
        self.end = len(toks) if end is None else end

    # ------------------------------------------------------------------ tokens
    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.t[j] if j < self.end else None

    def at(self, text: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.text == text and t.kind in ("op", "id")

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            last = self.t[self.end - 1].line if self.end else 0
            raise KernelSourceError(f"{self.path}:{last}: unexpected end of the function body")
        self.i += 1
        return t

    def expect(self, text: str) -> Tok:
        t = self.peek()
        if t is None or t.text != text:
            got = "end of input" if t is None else repr(t.text)
            line = t.line if t is not None else (self.t[self.end - 1].line if self.end else 0)
            raise KernelSourceError(f"{self.path}:{line}: expected {text!r}, found {got}")
        self.i += 1
        return t

    def fail(self, msg: str, tok: Tok | None = None) -> KernelSourceError:
        tok = tok or self.peek() or (self.t[self.end - 1] if self.end else Tok("op", "", 0))
        return KernelSourceError(f"{self.path}:{tok.line}: {msg}")

    def text_between(self, a: int, b: int) -> str:
        """The source of tokens ``a..b`` on one line, for messages."""
        s = " ".join(t.text for t in self.t[a:b])
        s = re.sub(r"([(\[]) ", r"\1", s)
        s = re.sub(r" ([)\],;])", r"\1", s)
        s = re.sub(r" ?(->|\.) ?", r"\1", s)
        s = re.sub(r"(\w) ([(\[])", r"\1\2", s)
        s = re.sub(r"(^|[(\[]|[!=&|<>?:,] )([*!~]) (?=\w)", r"\1\2", s)
        return s

    # ------------------------------------------------------------------ expressions
    def expr(self) -> Any:
        return self.ternary()

    def ternary(self) -> Any:
        test = self.binary(1)
        if self.at("?"):
            tok = self.take()
            then = self.expr()
            self.expect(":")
            other = self.ternary()
            return RTernary(tok.line, test, then, other)
        return test

    def binary(self, min_prec: int) -> Any:
        left = self.unary()
        while True:
            t = self.peek()
            if t is None or t.kind != "op" or t.text not in _BINARY_PREC:
                return left
            prec = _BINARY_PREC[t.text]
            if prec < min_prec:
                return left
            self.take()
            right = self.binary(prec + 1)
            left = RBinary(t.line, t.text, left, right)

    def unary(self) -> Any:
        t = self.peek()
        if t is None:
            raise self.fail("expression expected")
        if t.kind == "op" and t.text in ("!", "~", "-", "+", "*", "&"):
            self.take()
            return RUnary(t.line, t.text, self.unary())
        if t.kind == "op" and t.text in ("++", "--"):
            raise self.fail(f"the increment/decrement operator {t.text!r} is not interpreted")
        if t.text == "sizeof":
            raise self.fail("sizeof is not interpreted")
        if t.text == "(" and self.peek(1) is not None and _is_type_word(self.peek(1)):
            self.take()
            words = []
            while not self.at(")"):
                w = self.take()
                if w.text == "*":
                    raise self.fail("pointer casts are not interpreted", w)
                words.append(w.text)
            self.expect(")")
            return RCast(t.line, _ctype_of(words), self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        e = self.primary()
        while True:
            t = self.peek()
            if t is None:
                return e
            if t.text == "[":
                self.take()
                idx = self.expr()
                self.expect("]")
                e = RIndex(t.line, e, idx)
            elif t.text == "(":
                if not isinstance(e, RName):
                    raise self.fail("calls through expressions are not interpreted", t)
                self.take()
                args = []
                while not self.at(")"):
                    args.append(self.expr())
                    if not self.at(")"):
                        self.expect(",")
                self.expect(")")
                e = RCall(t.line, e.name, args)
            elif t.text in ("->", "."):
                self.take()
                f = self.take()
                if f.kind != "id":
                    raise self.fail(f"member name expected after {t.text!r}", f)
                e = RMember(t.line, e, ("->" if t.text == "->" else ".") + f.text)
            elif t.text in ("++", "--"):
                raise self.fail(f"the increment/decrement operator {t.text!r} is not interpreted")
            else:
                return e

    def primary(self) -> Any:
        t = self.take()
        if t.kind == "num":
            return _number(t)
        if t.kind == "id":
            return RName(t.line, t.text)
        if t.kind == "str":
            return RNum(t.line, 0, INT)  # only appears as a WARN() format, never evaluated
        if t.text == "(":
            e = self.expr()
            self.expect(")")
            return e
        raise KernelSourceError(f"{self.path}:{t.line}: unexpected {t.text!r} in an expression")

    # ------------------------------------------------------------------ statements
    def statement(self) -> Any:
        t = self.peek()
        if t is None:
            raise self.fail("statement expected")
        if t.text == "{":
            return SBlock(t.line, self.block())
        if t.text == ";":
            self.take()
            return SBlock(t.line, [])
        if t.kind == "id":
            if t.text == "if":
                self.take()
                self.expect("(")
                a = self.i
                test = self.expr()
                text = self.text_between(a, self.i)
                self.expect(")")
                then = self.statement()
                other = None
                if self.at("else"):
                    self.take()
                    other = self.statement()
                return SIf(t.line, test, then, other, text)
            if t.text == "while":
                self.take()
                self.expect("(")
                a = self.i
                test = self.expr()
                text = self.text_between(a, self.i)
                self.expect(")")
                return SLoop(t.line, "while", None, test, None, self.statement(), text)
            if t.text == "do":
                self.take()
                body = self.statement()
                self.expect("while")
                self.expect("(")
                a = self.i
                test = self.expr()
                text = self.text_between(a, self.i)
                self.expect(")")
                self.expect(";")
                return SLoop(t.line, "do", None, test, None, body, text)
            if t.text == "for":
                self.take()
                self.expect("(")
                a = self.i
                init = None if self.at(";") else self.simple()
                self.expect(";")
                test = None if self.at(";") else self.expr()
                self.expect(";")
                step = None if self.at(")") else self.simple()
                text = self.text_between(a, self.i)
                self.expect(")")
                return SLoop(t.line, "for", init, test, step, self.statement(), text)
            if t.text == "return":
                self.take()
                a = self.i
                value = None if self.at(";") else self.expr()
                text = "return " + self.text_between(a, self.i)
                self.expect(";")
                return SReturn(t.line, value, text)
            if t.text in ("break", "continue"):
                self.take()
                self.expect(";")
                return SJump(t.line, t.text)
            if t.text in _UNSUPPORTED_STMTS or (self.at(":", 1) and not self.at("?")):
                raise self.fail(f"the statement {t.text!r} is not interpreted")
            if _is_type_word(t) or t.text == "struct":
                return self.declaration()
        s = self.simple()
        self.expect(";")
        return s

    def simple(self) -> Any:
        """An expression statement without its ';' (assignment or call)."""
        t = self.peek()
        assert t is not None
        target = self.unary()
        op = self.peek()
        if op is not None and op.text in _ASSIGN_OPS:
            self.take()
            return SExpr(t.line, RAssign(op.line, op.text, target, self.expr()))
        return SExpr(t.line, target)

    def block(self) -> list[Any]:
        self.expect("{")
        out = []
        while not self.at("}"):
            out.append(self.statement())
        self.expect("}")
        return out

    def declaration(self) -> SDecl:
        first = self.peek()
        assert first is not None
        words: list[str] = []
        enum_consts: list[tuple[str, Any]] = []
        while True:
            t = self.peek()
            if t is None or not (_is_type_word(t) or t.text == "struct"):
                break
            self.take()
            if t.text == "struct":
                raise self.fail("struct variables are not interpreted", t)
            words.append(t.text)
            if t.text == "enum":
                if self.peek() is not None and self.peek().kind == "id" and not self.at("{", 0):
                    tag = self.take()
                    words.append(tag.text)
                if self.at("{"):
                    enum_consts.extend(self.enum_body())
        ctype = _ctype_of(words)
        decls: list[RDeclarator] = []
        while not self.at(";"):
            t = self.take()
            if t.text == "*":
                raise self.fail("pointer variables are not interpreted", t)
            if t.kind != "id":
                raise self.fail(f"declarator name expected, found {t.text!r}", t)
            dims: list[Any] = []
            while self.at("["):
                self.take()
                dims.append(None if self.at("]") else self.expr())
                self.expect("]")
            init = None
            if self.at("="):
                self.take()
                init = self.initializer()
            decls.append(RDeclarator(t.line, t.text, dims, init, ctype))
            if not self.at(";"):
                self.expect(",")
        self.expect(";")
        return SDecl(first.line, decls, enum_consts)

    def enum_body(self) -> list[tuple[str, Any]]:
        self.expect("{")
        out: list[tuple[str, Any]] = []
        while not self.at("}"):
            name = self.take()
            if name.kind != "id":
                raise self.fail(f"enumerator name expected, found {name.text!r}", name)
            value = None
            if self.at("="):
                self.take()
                value = self.ternary()
            out.append((name.text, value))
            if not self.at("}"):
                self.expect(",")
        self.expect("}")
        return out

    def initializer(self) -> Any:
        if not self.at("{"):
            return self.ternary()
        start = self.take()
        items: list[tuple[list[tuple[Any, Any]], Any]] = []
        while not self.at("}"):
            desig: list[tuple[Any, Any]] = []
            while self.at("[") or self.at("."):
                if self.at("."):
                    raise self.fail("struct member designators are not interpreted")
                self.take()
                lo = self.ternary()
                hi = lo
                if self.at("..."):
                    self.take()
                    hi = self.ternary()
                self.expect("]")
                desig.append((lo, hi))
            if desig:
                self.expect("=")
            items.append((desig, self.initializer()))
            if not self.at("}"):
                self.expect(",")
        self.expect("}")
        return RInit(start.line, items)


def _number(t: Tok) -> RNum:
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)([uUlL]*)", t.text)
    assert m is not None
    digits, suffix = m.group(1), m.group(2).lower()
    if digits.startswith(("0x", "0X")):
        v = int(digits, 16)
    elif len(digits) > 1 and digits.startswith("0"):
        v = int(digits, 8)
    else:
        v = int(digits)
    bits = 64 if "l" in suffix or v > 0xFFFFFFFF else 32
    unsigned = "u" in suffix or (not digits.isdigit() and v > 0x7FFFFFFF and bits == 32)
    if not unsigned and bits == 32 and v > 0x7FFFFFFF:
        bits = 64
    return RNum(t.line, v, CType(bits, unsigned))


# ========================================================================= executable nodes
class _Return(Exception):
    def __init__(self, value: int, where: str):
        self.value, self.where = value, where


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Env:
    flags: int
    cur: int
    new: int
    nxt: int | None = None
    locals: dict[str, int] = field(default_factory=dict)
    warned: bool = False
    iterations: int = 0


def _state_name(v: int | None) -> str:
    if v is None:
        return "unset"
    return DeviceState(v).name if 0 <= v < NUM_STATES else str(v)


class Expr:
    ctype: CType = INT

    def eval(self, env: _Env) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Const(Expr):
    value: int
    ctype: CType = INT

    def eval(self, env: _Env) -> int:
        return self.value


@dataclass
class Arg(Expr):
    """``cur_fsm`` or ``new_fsm`` (an ``enum vfio_device_mig_state``)."""

    role: str

    def eval(self, env: _Env) -> int:
        return env.cur if self.role == "cur" else env.new


@dataclass
class Flags(Expr):
    """``device->migration_flags``."""

    ctype: CType = UINT

    def eval(self, env: _Env) -> int:
        return env.flags


@dataclass
class NextRef(Expr):
    """``*next_fsm``."""

    def eval(self, env: _Env) -> int:
        if env.nxt is None:
            raise UndefinedStep("reads *next_fsm before setting it")
        return env.nxt


@dataclass
class Local(Expr):
    name: str
    ctype: CType = INT

    def eval(self, env: _Env) -> int:
        if self.name not in env.locals:
            raise UndefinedStep(f"reads the local variable {self.name} before setting it")
        return env.locals[self.name]


@dataclass
class Table:
    """A constant array of the source (``vfio_from_fsm_table``, ``state_flags_table``)."""

    name: str
    dims: tuple[int, ...]
    values: np.ndarray  # int64, shape dims, already converted to the element type
    initialised: np.ndarray  # bool, shape dims: cells the initialiser names
    ctype: CType
    line: int = 0


@dataclass
class TableRef(Expr):
    table: Table
    indices: tuple[Expr, ...]

    def __post_init__(self) -> None:
        self.ctype = self.table.ctype

    def eval(self, env: _Env) -> int:
        idx = []
        for dim, e in zip(self.table.dims, self.indices, strict=True):
            v = e.eval(env)
            if not 0 <= v < dim:
                shown = "".join(f"[{i}]" for i in [*idx, v])
                raise UndefinedStep(
                    f"reads {self.table.name}{shown} outside its {dim} entries"
                    + (f" ({_state_name(v)})" if 0 <= v < NUM_STATES else "")
                )
            idx.append(v)
        return int(self.table.values[tuple(idx)])


@dataclass
class Unary(Expr):
    op: str
    operand: Expr

    def __post_init__(self) -> None:
        self.ctype = INT if self.op == "!" else self.operand.ctype.promoted()

    def eval(self, env: _Env) -> int:
        v = self.operand.eval(env)
        if self.op == "!":
            return int(v == 0)
        if self.op == "~":
            return self.ctype.wrap(~v)
        if self.op == "-":
            return self.ctype.wrap(-v)
        return v


@dataclass
class Binary(Expr):
    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        self.operand_type = _common(self.left.ctype, self.right.ctype)
        if self.op in ("&&", "||", "==", "!=", "<", "<=", ">", ">="):
            self.ctype = INT
        elif self.op in ("<<", ">>"):
            self.ctype = self.left.ctype.promoted()
        else:
            self.ctype = self.operand_type

    def eval(self, env: _Env) -> int:
        op = self.op
        if op == "&&":
            return int(bool(self.left.eval(env)) and bool(self.right.eval(env)))
        if op == "||":
            return int(bool(self.left.eval(env)) or bool(self.right.eval(env)))
        a, b = self.left.eval(env), self.right.eval(env)
        if op in ("<<", ">>"):
            if not 0 <= b < self.ctype.bits:
                raise UndefinedStep(f"shifts by {b}")
            return self.ctype.wrap(a << b if op == "<<" else a >> b)
        t = self.operand_type
        a, b = t.wrap(a), t.wrap(b)
        if op == "==":
            return int(a == b)
        if op == "!=":
            return int(a != b)
        if op == "<":
            return int(a < b)
        if op == "<=":
            return int(a <= b)
        if op == ">":
            return int(a > b)
        if op == ">=":
            return int(a >= b)
        if op in ("/", "%"):
            if b == 0:
                raise UndefinedStep("divides by zero")
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return t.wrap(q if op == "/" else a - q * b)
        r = {"&": a & b, "|": a | b, "^": a ^ b, "+": a + b, "-": a - b, "*": a * b}[op]
        return t.wrap(r)


@dataclass
class Ternary(Expr):
    test: Expr
    then: Expr
    other: Expr

    def __post_init__(self) -> None:
        self.ctype = _common(self.then.ctype, self.other.ctype)

    def eval(self, env: _Env) -> int:
        v = self.then.eval(env) if self.test.eval(env) else self.other.eval(env)
        return self.ctype.wrap(v)


@dataclass
class Cast(Expr):
    operand: Expr
    ctype: CType = INT

    def eval(self, env: _Env) -> int:
        return self.ctype.wrap(self.operand.eval(env))


@dataclass
class Warn(Expr):
    """``WARN_ON(cond)``: the truth of ``cond``, and a kernel warning when true."""

    operand: Expr

    def eval(self, env: _Env) -> int:
        v = int(bool(self.operand.eval(env)))
        if v:
            env.warned = True
        return v


@dataclass
class HelperCall(Expr):
    """A call of a function defined in the same source file (e.g. a support test)."""

    helper: _Function
    args: tuple[Expr | None, ...]  # None where the device pointer is passed

    def __post_init__(self) -> None:
        self.ctype = self.helper.ret

    def eval(self, env: _Env) -> int:
        sub = _Env(env.flags, env.cur, env.new)
        for (name, _is_dev, ctype), a in zip(self.helper.params, self.args, strict=True):
            if a is not None:
                sub.locals[name] = ctype.wrap(a.eval(env))
        v = self.helper.run(sub)
        env.warned |= sub.warned
        env.iterations += sub.iterations
        return v


class Stmt:
    def exec(self, env: _Env) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _run(body: Sequence[Stmt], env: _Env) -> None:
    for s in body:
        s.exec(env)


@dataclass
class Assign(Stmt):
    target: Expr  # NextRef or Local
    value: Expr

    def exec(self, env: _Env) -> None:
        v = self.value.eval(env)
        if isinstance(self.target, NextRef):
            env.nxt = INT.wrap(v)
        else:
            assert isinstance(self.target, Local)
            env.locals[self.target.name] = self.target.ctype.wrap(v)


@dataclass
class Declare(Stmt):
    name: str
    ctype: CType
    init: Expr | None

    def exec(self, env: _Env) -> None:
        if self.init is None:
            env.locals.pop(self.name, None)
        else:
            env.locals[self.name] = self.ctype.wrap(self.init.eval(env))


@dataclass
class Evaluate(Stmt):
    expr: Expr

    def exec(self, env: _Env) -> None:
        self.expr.eval(env)


@dataclass
class If(Stmt):
    test: Expr
    then: list[Stmt]
    other: list[Stmt]

    def exec(self, env: _Env) -> None:
        _run(self.then if self.test.eval(env) else self.other, env)


@dataclass
class Loop(Stmt):
    kind: str
    test: Expr | None
    body: list[Stmt]
    step: list[Stmt]
    where: str

    def exec(self, env: _Env) -> None:
        seen: set[tuple[Any, ...]] = set()
        first = True
        while True:
            if self.kind != "do" or not first:
                # The call is deterministic: the same variables at the same loop test
                # mean the loop has come round and will run for ever.
                snap = (env.nxt, tuple(sorted(env.locals.items())))
                if snap in seen:
                    raise NonTerminatingStep(
                        f"the {self.where} comes back with *next_fsm = {_state_name(env.nxt)} "
                        "and never ends"
                    )
                seen.add(snap)
                env.iterations += 1
                if env.iterations > _MAX_LOOP_ITERATIONS:
                    raise NonTerminatingStep(
                        f"the {self.where} runs more than {_MAX_LOOP_ITERATIONS} iterations"
                    )
                if self.test is not None and not self.test.eval(env):
                    return
            first = False
            try:
                _run(self.body, env)
            except _Break:
                return
            except _Continue:
                pass
            _run(self.step, env)


@dataclass
class Return(Stmt):
    value: Expr | None
    where: str
    ctype: CType = INT

    def exec(self, env: _Env) -> None:
        raise _Return(0 if self.value is None else self.ctype.wrap(self.value.eval(env)),
                      self.where)


@dataclass
class Jump(Stmt):
    kind: str

    def exec(self, env: _Env) -> None:
        raise _Break() if self.kind == "break" else _Continue()


@dataclass
class _Function:
    name: str
    params: list[tuple[str, bool, CType]]  # (name, is the vfio_device pointer, type)
    body: list[Stmt]
    ret: CType = INT

    def run(self, env: _Env) -> int:
        try:
            _run(self.body, env)
        except _Return as r:
            return self.ret.wrap(r.value)
        raise UndefinedStep(f"reaches the end of {self.name}() without returning a value")


# ============================================================================= outcomes
@dataclass(frozen=True)
class StepOutcome:
    """What one call returned: errno (0 or negative), ``*next_fsm``, whether it WARNed."""

    errno: int
    next: int | None
    warned: bool
    where: str = ""


@dataclass
class PathResult:
    """The walk a driver makes from ``current`` to ``requested`` using the step function.

    ``steps`` are the states entered, excluding ``current``.  ``result`` is one of
    ``ok`` (reached), ``einval`` (a call returned -EINVAL), ``warn-einval`` (the same with
    a kernel WARN, i.e. the current state was rejected), ``error`` (another errno),
    ``loop`` (a call never returns), ``stuck`` (a call returns the current state without
    reaching the target, so the driver loop spins), ``cycle`` (the walk comes back to a
    state it left) and ``undefined`` (a call has undefined behaviour in C).
    """

    current: DeviceState
    requested: DeviceState
    steps: list[DeviceState]
    result: str
    detail: str
    errno: int = 0
    warned: bool = False

    @property
    def final(self) -> DeviceState:
        """Where the device is left."""
        return self.steps[-1] if self.steps else self.current

    @property
    def refused(self) -> bool:
        return self.result in ("einval", "warn-einval", "error")

    def to_json(self) -> dict[str, Any]:
        return {"path": [s.name for s in self.steps], "result": self.result}


# ========================================================================== the function
class KernelStepFunction:
    """``vfio_mig_get_next_state()`` of one source, ready to call."""

    def __init__(
        self,
        source: str,
        function: _Function,
        tables: dict[str, Table],
        mentioned_flags: MigFlag,
        notes: Sequence[str] = (),
    ) -> None:
        self.source = source
        self._function = function
        self.tables = tables
        self.notes = tuple(notes)
        fsm = tables[FSM_TABLE]
        self.num_states = min(fsm.dims)
        self._mentioned = mentioned_flags
        self._cache: dict[tuple[int, int, int], StepOutcome | StepError] = {}

    # -------------------------------------------------------------- what the source covers
    @property
    def fsm_table(self) -> np.ndarray:
        return self.tables[FSM_TABLE].values

    @property
    def flags_table(self) -> np.ndarray | None:
        t = self.tables.get(FLAGS_TABLE)
        return None if t is None else t.values

    @property
    def states(self) -> tuple[DeviceState, ...]:
        """The device states the next-step table has rows and columns for."""
        return tuple(s for s in DeviceState if int(s) < self.num_states)

    @property
    def flag_sets(self) -> tuple[MigFlag, ...]:
        """The uAPI feature sets this source knows: their flags are named in the source and
        their states are covered by the table (5.18-6.1: stop-copy and P2P only)."""
        out = []
        for f in FEATURE_SETS:
            if f & ~self._mentioned:
                continue
            if any(int(s) >= self.num_states for s in supported_states(f)):
                continue
            out.append(f)
        return tuple(out)

    # -------------------------------------------------------------- calling it
    def step(self, flags: int, cur: int, new: int) -> StepOutcome:
        """One call ``vfio_mig_get_next_state(device{migration_flags=flags}, cur, new, &n)``.

        Raises :class:`NonTerminatingStep` or :class:`UndefinedStep` when the call does not
        return a value.
        """
        key = (int(flags), int(cur), int(new))
        hit = self._cache.get(key)
        if hit is None:
            env = _Env(*key)
            try:
                try:
                    _run(self._function.body, env)
                except _Return as r:
                    hit = StepOutcome(r.value, env.nxt, env.warned, r.where)
                else:
                    raise UndefinedStep(f"reaches the end of {FUNCTION}() without returning")
            except StepError as e:
                hit = e
            self._cache[key] = hit
        if isinstance(hit, StepError):
            raise hit
        return hit

    def next_state(self, flags: int, cur: int, new: int) -> tuple[int, DeviceState | None]:
        """``(errno, step)``: errno is 0 or negative (-22 = -EINVAL); step is the state
        ``*next_fsm`` holds when the call succeeds, else None.  A call that never returns
        raises :class:`NonTerminatingStep` instead of hanging."""
        o = self.step(flags, cur, new)
        if o.errno != 0 or o.next is None or not 0 <= o.next < NUM_STATES:
            return o.errno, None
        return o.errno, DeviceState(o.next)

    def path(self, flags: int, cur: int, new: int) -> PathResult:
        """The driver loop (mlx5 ``mlx5vf_pci_set_device_state()``): while the device is not
        in ``new``, ask for the next step and perform it; stop at the first failure."""
        cur_s, new_s = DeviceState(int(cur)), DeviceState(int(new))
        steps: list[DeviceState] = []

        def done(result: str, detail: str, errno: int = 0, warned: bool = False) -> PathResult:
            return PathResult(cur_s, new_s, steps, result, detail, errno, warned)

        if cur_s == new_s:
            return done("ok", "already in the requested state; drivers make no call")
        state = cur_s
        visited = {cur_s}
        while True:
            try:
                o = self.step(flags, state, new_s)
            except NonTerminatingStep as e:
                return done("loop", f"{FUNCTION}({state.name} -> {new_s.name}) never returns: {e}")
            except UndefinedStep as e:
                return done("undefined", f"{FUNCTION}({state.name} -> {new_s.name}) {e}")
            where = f" ({o.where})" if o.where else ""
            if o.errno != 0:
                if o.errno == -EINVAL:
                    result = "warn-einval" if o.warned else "einval"
                    what = "WARN and -EINVAL" if o.warned else "-EINVAL"
                else:
                    result, what = "error", f"{o.errno}"
                at = f" after entering {state.name}" if steps else ""
                return done(result, f"{FUNCTION}({state.name} -> {new_s.name}) returns "
                            f"{what}{where}{at}", o.errno, o.warned)
            if o.next is None:
                return done("undefined", f"{FUNCTION}({state.name} -> {new_s.name}) returns 0 "
                            f"without setting *next_fsm{where}")
            if not 0 <= o.next < NUM_STATES:
                return done("undefined", f"{FUNCTION}({state.name} -> {new_s.name}) returns "
                            f"step {o.next}, which is not a device state")
            nxt = DeviceState(o.next)
            if nxt == state:
                return done("stuck", f"{FUNCTION}({state.name} -> {new_s.name}) returns "
                            f"{state.name} itself; the driver loop would spin")
            steps.append(nxt)
            if nxt == new_s:
                return done("ok", " -> ".join(s.name for s in [cur_s, *steps]))
            if nxt in visited:
                return done("cycle", "the walk comes back to " + nxt.name + ": "
                            + " -> ".join(s.name for s in [cur_s, *steps]))
            visited.add(nxt)
            state = nxt

    def __repr__(self) -> str:
        return f"KernelStepFunction({self.source!r})"


def step_table(kernel: KernelStepFunction, flags: int) -> np.ndarray:
    """``(8, 8)`` int64: ``t[cur, new]`` = the state one call returns (a driver step), or
    :data:`STEP_EINVAL` (-1, the call fails), :data:`STEP_LOOP` (-2, it never returns),
    :data:`STEP_UNDEFINED` (-3).  The diagonal holds whatever the call returns for
    ``cur == new`` (drivers never make that call).  A model walks a whole column of devices
    with ``s = t[s, target]`` until ``s == target`` or ``s < 0``."""
    check_flags(flags)
    out = np.empty((NUM_STATES, NUM_STATES), dtype=np.int64)
    for cur in range(NUM_STATES):
        for new in range(NUM_STATES):
            try:
                o = kernel.step(flags, cur, new)
            except NonTerminatingStep:
                out[cur, new] = STEP_LOOP
                continue
            except UndefinedStep:
                out[cur, new] = STEP_UNDEFINED
                continue
            if o.errno != 0:
                out[cur, new] = STEP_EINVAL
            elif o.next is None or not 0 <= o.next < NUM_STATES:
                out[cur, new] = STEP_UNDEFINED
            else:
                out[cur, new] = o.next
    return out


# ============================================================================ resolving
class _Resolver:
    """Turns raw syntax into executable nodes, checking every name as it goes."""

    def __init__(self, path: str, toks: list[Tok], defines: dict[str, tuple[str, int]]):
        self.path = path
        self.toks = toks
        self.defines = defines
        self.consts: dict[str, tuple[int, CType]] = dict(UAPI_CONSTANTS)
        self.tables: dict[str, Table] = {}
        self.mentioned = MigFlag.STOP_COPY
        self.helpers: dict[str, _Function] = {}
        self._helper_stack: list[str] = []
        self._define_stack: list[str] = []

    def err(self, line: int, msg: str) -> KernelSourceError:
        return KernelSourceError(f"{self.path}:{line}: {msg}")

    # ------------------------------------------------------------------ constants
    def define(self, name: str, line: int, scope: _Scope) -> Expr | None:
        if name not in self.defines or name in self._define_stack:
            return None
        body, dline = self.defines[name]
        toks, _ = _lex(body)
        toks = [Tok(t.kind, t.text, dline) for t in toks]
        if not toks:
            return None
        p = _Parser(toks, self.path)
        self._define_stack.append(name)
        try:
            raw = p.expr()
            if p.peek() is not None:
                return None
            return self.expr(raw, scope)
        except KernelSourceError:
            return None
        finally:
            self._define_stack.pop()

    # ------------------------------------------------------------------ tables
    def table(self, name: str, line: int, scope: _Scope) -> Table | None:
        if name in scope.tables:
            return scope.tables[name]
        if name in self.tables:
            return self.tables[name]
        decl = _find_file_scope_decl(self.toks, name, self.path)
        if decl is None:
            return None
        t = self.make_table(decl, _Scope({}, {}, f"the file-scope declaration of {name}"))
        self.tables[name] = t
        return t

    def make_table(self, d: RDeclarator, scope: _Scope) -> Table:
        if d.init is None:
            raise self.err(d.line, f"the array {d.name} has no initialiser")
        dims: list[int | None] = []
        for i, raw in enumerate(d.dims):
            if raw is None:
                if i:
                    raise self.err(d.line, f"{d.name}: only the first dimension may be empty")
                dims.append(None)
            else:
                v, _ = self.const_in(raw, scope, f"the dimension of {d.name}")
                if not 0 < v <= 64:
                    raise self.err(d.line, f"{d.name}: dimension {v} is outside 1..64")
                dims.append(v)
        cells: dict[tuple[int, ...], int] = {}
        self.fill(d, scope, d.init, list(dims), (), cells)
        if dims and dims[0] is None:
            dims[0] = 1 + max((k[0] for k in cells), default=-1)
        shape = tuple(int(x) for x in dims)  # type: ignore[arg-type]
        values = np.zeros(shape, dtype=np.int64)
        init = np.zeros(shape, dtype=bool)
        for k, v in cells.items():
            values[k] = d.ctype.wrap(v)
            init[k] = True
        return Table(d.name, shape, values, init, d.ctype, d.line)

    def fill(self, d: RDeclarator, scope: _Scope, init: Any, dims: list[int | None],
             prefix: tuple[int, ...], cells: dict[tuple[int, ...], int]) -> None:
        if not dims:  # a scalar element
            if isinstance(init, RInit):
                if len(init.items) != 1 or init.items[0][0]:
                    raise self.err(init.line, f"{d.name}: braces around a scalar element")
                init = init.items[0][1]
            v, _ = self.const_in(init, scope, f"the initialiser of {d.name}"
                                 f"{''.join(f'[{_state_name(i)}]' for i in prefix)}")
            cells[prefix] = v
            return
        if not isinstance(init, RInit):
            raise self.err(init.line, f"{d.name}: an element that is an array needs braces "
                           "(brace elision is not interpreted)")
        pos = 0
        for desig, value in init.items:
            if desig:
                lo, _ = self.const_in(desig[0][0], scope, f"a designator of {d.name}")
                hi, _ = self.const_in(desig[0][1], scope, f"a designator of {d.name}")
                rest = desig[1:]
            else:
                lo = hi = pos
                rest = []
            if hi - lo > 64:
                raise self.err(init.line, f"{d.name}: the designator range {lo} ... {hi} is "
                               "longer than any table this function has")
            for i in range(lo, hi + 1):
                if i < 0 or (dims[0] is not None and i >= dims[0]):
                    raise self.err(getattr(value, "line", init.line),
                                   f"{d.name}: index {i} is outside the declared size {dims[0]}")
                # [r][c] = v: the remaining designators apply inside the sub-array
                sub = RInit(init.line, [(rest, value)]) if rest else value
                self.fill(d, scope, sub, dims[1:], (*prefix, i), cells)
            pos = hi + 1

    def const_in(self, raw: Any, scope: _Scope, what: str) -> tuple[int, CType]:
        e = self.expr(raw, scope.with_what(what))
        if not isinstance(e, Const):
            raise self.err(raw.line, f"{what} is not a constant expression")
        return e.value, e.ctype

    # ------------------------------------------------------------------ expressions
    def expr(self, raw: Any, scope: _Scope) -> Expr:
        e = self._expr(raw, scope)
        if not isinstance(e, Const) and _all_const(e):
            return Const(e.eval(_Env(0, 0, 0)), e.ctype)
        return e

    def _expr(self, raw: Any, scope: _Scope) -> Expr:
        what = scope.what
        if isinstance(raw, RNum):
            return Const(raw.ctype.wrap(raw.value), raw.ctype)
        if isinstance(raw, RName):
            n = raw.name
            if n in scope.locals:
                return Local(n, scope.locals[n])
            role = scope.roles.get(n)
            if role in ("cur", "new"):
                return Arg(role)
            if role in ("dev", "nxt"):
                raise self.err(raw.line, f"cannot interpret {what}: it uses the pointer {n} "
                               "itself (only device->migration_flags and *next_fsm are modelled)")
            if n in scope.consts:
                return Const(*scope.consts[n])
            if n in self.consts:
                if n.startswith("VFIO_MIGRATION_"):
                    self.mentioned |= MigFlag(self.consts[n][0])
                return Const(*self.consts[n])
            d = self.define(n, raw.line, scope)
            if d is not None:
                return d
            raise self.err(raw.line, f"cannot interpret {what}: unknown name {n!r}")
        if isinstance(raw, RMember):
            if (isinstance(raw.obj, RName) and scope.roles.get(raw.obj.name) == "dev"
                    and raw.field == "->migration_flags"):
                return Flags()
            raise self.err(raw.line, f"cannot interpret {what}: the member access "
                           f"{raw.field!r} (only device->migration_flags is modelled)")
        if isinstance(raw, RUnary):
            if raw.op == "*":
                if isinstance(raw.operand, RName) and scope.roles.get(raw.operand.name) == "nxt":
                    return NextRef()
                raise self.err(raw.line, f"cannot interpret {what}: a dereference other than "
                               "*next_fsm")
            if raw.op == "&":
                raise self.err(raw.line, f"cannot interpret {what}: taking an address")
            return Unary(raw.op, self.expr(raw.operand, scope))
        if isinstance(raw, RIndex):
            base, idx = raw, []
            while isinstance(base, RIndex):
                idx.insert(0, base.index)
                base = base.base
            if not isinstance(base, RName):
                raise self.err(raw.line, f"cannot interpret {what}: indexing an expression")
            if scope.roles.get(base.name) == "nxt" and len(idx) == 1:
                i = self.expr(idx[0], scope)
                if isinstance(i, Const) and i.value == 0:
                    return NextRef()
            t = self.table(base.name, raw.line, scope)
            if t is None:
                raise self.err(raw.line, self.missing_table(base.name, what))
            if len(idx) != len(t.dims):
                raise self.err(raw.line, f"cannot interpret {what}: {base.name} has "
                               f"{len(t.dims)} dimension(s), indexed with {len(idx)}")
            return TableRef(t, tuple(self.expr(i, scope) for i in idx))
        if isinstance(raw, RCall):
            return self.call(raw, scope)
        if isinstance(raw, RBinary):
            return Binary(raw.op, self.expr(raw.left, scope), self.expr(raw.right, scope))
        if isinstance(raw, RTernary):
            return Ternary(self.expr(raw.test, scope), self.expr(raw.then, scope),
                           self.expr(raw.other, scope))
        if isinstance(raw, RCast):
            return Cast(self.expr(raw.operand, scope), raw.ctype)
        if isinstance(raw, RAssign):
            raise self.err(raw.line, f"cannot interpret {what}: an assignment inside an "
                           "expression")
        if isinstance(raw, RInit):
            raise self.err(raw.line, f"cannot interpret {what}: a brace initialiser")
        raise self.err(getattr(raw, "line", 0), f"cannot interpret {what}")

    @staticmethod
    def missing_table(name: str, what: str) -> str:
        if name in _TABLE_ROLES:
            return (f"no definition of {name} ({_TABLE_ROLES[name]}) in {FUNCTION}() or at "
                    f"file scope, but {what} uses it")
        return f"cannot interpret {what}: unknown array {name!r}"

    def call(self, raw: RCall, scope: _Scope) -> Expr:
        f, args, what = raw.func, raw.args, scope.what
        if f in ("WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE"):
            if not args:
                raise self.err(raw.line, f"{f}() without a condition")
            return Warn(self.expr(args[0], scope))
        if f in ("likely", "unlikely") and len(args) == 1:
            return self.expr(args[0], scope)
        if f == "ARRAY_SIZE" and len(args) == 1 and isinstance(args[0], RName):
            t = self.table(args[0].name, raw.line, scope)
            if t is None:
                raise self.err(raw.line, self.missing_table(args[0].name, what))
            return Const(t.dims[0], CType(64, True))
        if f == "BIT" and len(args) == 1:
            return Binary("<<", Const(1, CType(64, True)), self.expr(args[0], scope))
        helper = self.helper(f, raw.line)
        if helper is None:
            raise self.err(raw.line, f"cannot interpret {what}: it calls {f}(), which is "
                           "neither a known kernel macro (WARN_ON, ARRAY_SIZE, likely, BIT) "
                           "nor a function defined in this file")
        if len(args) != len(helper.params):
            raise self.err(raw.line, f"{f}() takes {len(helper.params)} arguments, "
                           f"called with {len(args)}")
        bound: list[Expr | None] = []
        for (pname, is_dev, _t), a in zip(helper.params, args, strict=True):
            if is_dev:
                if not (isinstance(a, RName) and scope.roles.get(a.name) == "dev"):
                    raise self.err(raw.line, f"cannot interpret {what}: {f}() must get the "
                                   f"device pointer as {pname}")
                bound.append(None)
            else:
                bound.append(self.expr(a, scope))
        return HelperCall(helper, tuple(bound))

    def helper(self, name: str, line: int) -> _Function | None:
        if name in self.helpers:
            return self.helpers[name]
        if name in self._helper_stack:
            raise self.err(line, f"{name}() is recursive; recursion is not interpreted")
        found = _find_function(self.toks, name)
        if found is None:
            return None
        params, body_start, body_end, ret = found
        roles: dict[str, str] = {}
        plist: list[tuple[str, bool, CType]] = []
        for p in params:
            is_dev = p.is_pointer and "vfio_device" in p.words
            if p.is_pointer and not is_dev:
                raise self.err(line, f"{name}(): pointer parameter {p.name} is not interpreted")
            if is_dev:
                roles[p.name] = "dev"
            plist.append((p.name, is_dev, _ctype_of(p.words)))
        self._helper_stack.append(name)
        try:
            scope = _Scope(roles, {n: t for n, d, t in plist if not d}, f"{name}()")
            body = self.body(self.toks, body_start, body_end, scope)
        finally:
            self._helper_stack.pop()
        fn = _Function(name, plist, body, ret)
        self.helpers[name] = fn
        return fn

    # ------------------------------------------------------------------ statements
    def body(self, toks: list[Tok], start: int, end: int, scope: _Scope) -> list[Stmt]:
        p = _Parser(toks, self.path, start, end)
        out: list[Stmt] = []
        while p.peek() is not None:
            out.extend(self.stmt(p.statement(), scope, ""))
        return out

    def stmt(self, raw: Any, scope: _Scope, context: str) -> list[Stmt]:
        if isinstance(raw, SBlock):
            inner = scope.child()
            out: list[Stmt] = []
            for s in raw.body:
                out.extend(self.stmt(s, inner, context))
            return out
        if isinstance(raw, SDecl):
            self.enum(raw, scope)
            out = []
            for d in raw.decls:
                if d.dims:
                    scope.tables[d.name] = self.make_table(d, scope.with_what(
                        f"the declaration of {d.name}"))
                    continue
                init = None
                if d.init is not None:
                    if isinstance(d.init, RInit):
                        raise self.err(d.line, f"{d.name}: a brace initialiser for a scalar")
                    init = self.expr(d.init, scope.with_what(f"the initialiser of {d.name}"))
                scope.locals[d.name] = d.ctype
                out.append(Declare(d.name, d.ctype, init))
            return out
        if isinstance(raw, SIf):
            test = self.expr(raw.test, scope.with_what(
                f"the condition `{raw.text}` of the if statement at line {raw.line}"))
            ctx = f"line {raw.line}: if ({raw.text})"
            then = self.stmt(raw.then, scope.child(), ctx)
            other = [] if raw.other is None else self.stmt(raw.other, scope.child(), context)
            return [If(test, then, other)]
        if isinstance(raw, SLoop):
            label = {"while": "while loop", "do": "do-while loop", "for": "for loop"}[raw.kind]
            where = f"{label} at line {raw.line} (`{raw.text}`)"
            inner = scope.child()
            init = [] if raw.init is None else self.stmt(raw.init, inner, context)
            test = None if raw.test is None else self.expr(
                raw.test, inner.with_what(f"the condition `{raw.text}` of the {label} at "
                                          f"line {raw.line}"))
            step = [] if raw.step is None else self.stmt(raw.step, inner, context)
            body = self.stmt(raw.body, inner.child(), context)
            return [*init, Loop(raw.kind, test, body, step, where)]
        if isinstance(raw, SReturn):
            value = None if raw.value is None else self.expr(
                raw.value, scope.with_what(f"the return value `{raw.text}` at line {raw.line}"))
            return [Return(value, context or f"line {raw.line}: {raw.text}")]
        if isinstance(raw, SJump):
            return [Jump(raw.kind)]
        if isinstance(raw, SExpr):
            e = raw.expr
            what = f"the statement at line {raw.line}"
            if isinstance(e, RAssign):
                sc = scope.with_what(what)
                target = self.expr(e.target, sc)
                if not isinstance(target, (NextRef, Local)):
                    raise self.err(raw.line, f"cannot interpret {what}: it assigns to something "
                                   "other than *next_fsm or a local variable")
                value = self.expr(e.value, sc)
                if e.op != "=":
                    value = Binary(e.op[:-1], target, value)
                return [Assign(target, value)]
            if isinstance(e, RCall):
                return [Evaluate(self.expr(e, scope.with_what(what)))]
            raise self.err(raw.line, f"cannot interpret {what}: an expression statement that "
                           "is neither an assignment nor a call")
        raise self.err(getattr(raw, "line", 0), "cannot interpret this statement")

    def enum(self, raw: SDecl, scope: _Scope) -> None:
        nxt = 0
        for name, value in raw.enum_consts:
            if value is not None:
                nxt, _ = self.const_in(value, scope, f"the enumerator {name}")
            scope.consts[name] = (nxt, INT)
            nxt += 1


def _all_const(e: Expr) -> bool:
    if isinstance(e, Const):
        return True
    if isinstance(e, Unary):
        return _all_const(e.operand)
    if isinstance(e, Binary):
        return _all_const(e.left) and _all_const(e.right)
    if isinstance(e, Ternary):
        return _all_const(e.test) and _all_const(e.then) and _all_const(e.other)
    if isinstance(e, Cast):
        return _all_const(e.operand)
    return False


@dataclass
class _Scope:
    roles: dict[str, str]
    locals: dict[str, CType]
    what: str
    tables: dict[str, Table] = field(default_factory=dict)
    consts: dict[str, tuple[int, CType]] = field(default_factory=dict)

    def child(self) -> _Scope:
        return _Scope(self.roles, dict(self.locals), self.what, self.tables, self.consts)

    def with_what(self, what: str) -> _Scope:
        return _Scope(self.roles, self.locals, what, self.tables, self.consts)


# ========================================================================== locating code
@dataclass
class _Param:
    name: str
    words: list[str]
    is_pointer: bool


def _match(toks: list[Tok], i: int, open_: str, close: str) -> int:
    """Index of the token closing the bracket at ``i``, or -1."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j].text
        if t == open_:
            depth += 1
        elif t == close:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _find_function(toks: list[Tok], name: str) -> tuple[list[_Param], int, int, CType] | None:
    """The first *definition* of ``name``: parameters, body token range, return type."""
    depth = 0
    for i, t in enumerate(toks):
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
        if depth or t.text != name or t.kind != "id":
            continue
        if i + 1 >= len(toks) or toks[i + 1].text != "(":
            continue
        close = _match(toks, i + 1, "(", ")")
        if close < 0 or close + 1 >= len(toks) or toks[close + 1].text != "{":
            continue
        end = _match(toks, close + 1, "{", "}")
        if end < 0:
            continue
        params: list[_Param] = []
        cur: list[Tok] = []
        for tok in [*toks[i + 2:close], Tok("op", ",", 0)]:
            if tok.text == "," and cur:
                ids = [x.text for x in cur if x.kind == "id"]
                if ids and ids != ["void"]:
                    params.append(_Param(ids[-1], ids[:-1], any(x.text == "*" for x in cur)))
                cur = []
            elif tok.text != ",":
                cur.append(tok)
        k = i - 1
        ret_words = []
        while k >= 0 and toks[k].kind == "id" and toks[k].text not in ("EXPORT_SYMBOL_GPL",):
            ret_words.insert(0, toks[k].text)
            k -= 1
        return params, close + 2, end, _ctype_of(ret_words)
    return None


def _find_file_scope_decl(toks: list[Tok], name: str, path: str) -> RDeclarator | None:
    """A file-scope array declaration ``... name[...] = {...};``, parsed."""
    depth = 0
    start = 0
    for i, t in enumerate(toks):
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
            continue
        elif t.text == ";" and depth == 0:
            start = i + 1
            continue
        if depth == 0 and t.text == name and i + 1 < len(toks) and toks[i + 1].text == "[":
            if not _is_decl_prefix(toks[start:i]):
                continue
            semi = i
            d = 0
            while semi < len(toks):
                x = toks[semi].text
                d += x in "({["
                d -= x in ")}]"
                if x == ";" and d == 0:
                    break
                semi += 1
            decl = _Parser(toks, path, start, semi + 1).declaration()
            for dd in decl.decls:
                if dd.name == name and dd.dims:
                    return dd
    return None


# ============================================================================== loading
def parse_kernel_source(text: str, path: str) -> KernelStepFunction:
    """Interpret ``vfio_mig_get_next_state()`` of a C source text (``path`` names it)."""
    try:
        return _parse_kernel_source(text, path)
    except RecursionError:
        raise KernelSourceError(f"{path}: expressions or statements nested too deeply to "
                                "interpret") from None


def _parse_kernel_source(text: str, path: str) -> KernelStepFunction:
    toks, defines = _lex(text)
    found = _find_function(toks, FUNCTION)
    if found is None:
        raise KernelSourceError(f"{path}: no definition of {FUNCTION}() found "
                                "(expected in drivers/vfio/vfio_main.c or drivers/vfio/vfio.c)")
    params, start, end, _ret = found
    if len(params) != 4:
        raise KernelSourceError(
            f"{path}:{toks[start - 1].line}: {FUNCTION}() has {len(params)} parameters; "
            "expected (device, cur_fsm, new_fsm, next_fsm)")
    roles = {params[0].name: "dev", params[1].name: "cur", params[2].name: "new",
             params[3].name: "nxt"}
    if not params[3].is_pointer:
        raise KernelSourceError(f"{path}:{toks[start - 1].line}: the fourth parameter of "
                                f"{FUNCTION}() ({params[3].name}) is not a pointer")
    r = _Resolver(path, toks, defines)
    scope = _Scope(roles, {}, f"{FUNCTION}()")
    body = r.body(toks, start, end, scope)
    tables = dict(r.tables)
    tables.update(scope.tables)
    if FSM_TABLE not in tables:
        t = r.table(FSM_TABLE, toks[start].line if start < len(toks) else 0, scope)
        if t is None:
            raise KernelSourceError(f"{path}: no definition of {FSM_TABLE} "
                                    f"({_TABLE_ROLES[FSM_TABLE]}) in {FUNCTION}() or at file "
                                    "scope")
        tables[FSM_TABLE] = t
    fsm = tables[FSM_TABLE]
    if len(fsm.dims) != 2 or fsm.dims[0] != fsm.dims[1]:
        raise KernelSourceError(f"{path}:{fsm.line}: {FSM_TABLE} has shape {fsm.dims}; "
                                "expected a square [states][states] table")
    if fsm.dims[0] > NUM_STATES:
        raise KernelSourceError(f"{path}:{fsm.line}: {FSM_TABLE} has {fsm.dims[0]} states; "
                                f"this model knows the {NUM_STATES} states of uAPI v2")
    for name in (FSM_TABLE, FLAGS_TABLE):
        if name in tables:
            _mention_table_flags(r, tables[name], name == FLAGS_TABLE)
    notes = []
    missing = int((~fsm.initialised).sum())
    if missing:
        notes.append(f"{missing} cell(s) of {FSM_TABLE} are not initialised; C fills them "
                     "with 0, i.e. ERROR")
    return KernelStepFunction(path, _Function(FUNCTION, [], body), tables, r.mentioned, notes)


def _mention_table_flags(r: _Resolver, t: Table, is_flags: bool) -> None:
    if not is_flags:
        return
    for v in t.values.ravel():
        v = int(v)
        if v & ~int(ALL_FLAGS) == 0:
            r.mentioned |= MigFlag(v)


def load_kernel(path: str | Path) -> KernelStepFunction:
    """Read ``vfio_mig_get_next_state()`` from a kernel source file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise KernelSourceError(f"{p}: cannot read the kernel source: {e.strerror or e}") from None
    return parse_kernel_source(text, str(p))


# =========================================================================== built-in
_ = DeviceState
# vfio_from_fsm_table of Linux 6.2 .. 7.1 (vfio-facts §2.2): rows = current state, columns
# = requested state, in enum order ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P,
# PRE_COPY, PRE_COPY_P2P.
_E, _S, _R, _SC, _RS, _RP, _PC, _PP = (
    _.ERROR, _.STOP, _.RUNNING, _.STOP_COPY, _.RESUMING, _.RUNNING_P2P, _.PRE_COPY, _.PRE_COPY_P2P,
)
BUILTIN_FSM_TABLE: tuple[tuple[DeviceState, ...], ...] = (
    (_E, _E, _E, _E, _E, _E, _E, _E),  # ERROR
    (_E, _S, _RP, _SC, _RS, _RP, _RP, _RP),  # STOP
    (_E, _RP, _R, _RP, _RP, _RP, _PC, _RP),  # RUNNING
    (_E, _S, _S, _SC, _S, _S, _E, _E),  # STOP_COPY
    (_E, _S, _S, _S, _RS, _S, _S, _S),  # RESUMING
    (_E, _S, _R, _S, _S, _RP, _R, _PP),  # RUNNING_P2P
    (_E, _R, _R, _PP, _R, _R, _PC, _PP),  # PRE_COPY
    (_E, _RP, _RP, _SC, _RP, _RP, _PC, _PP),  # PRE_COPY_P2P
)
# state_flags_table of Linux 6.2 .. 7.1: the VFIO_MIGRATION_* bits each state needs;
# ERROR needs ~0U, so it is never supported.
BUILTIN_FLAGS_TABLE: tuple[int, ...] = (
    0xFFFFFFFF,
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY | MigFlag.P2P),
    int(MigFlag.STOP_COPY | MigFlag.PRE_COPY),
    int(ALL_FLAGS),
)
BUILTIN_SOURCE = "built-in (Linux 6.2–7.1 vfio_main.c)"
FIXED_SOURCE = ("built-in (Linux 6.2–7.1 vfio_main.c with the skip-loop ERROR exit queued "
                "for 7.2)")


def _builtin(loop_fix: bool) -> KernelStepFunction:
    n = NUM_STATES
    fsm = Table(FSM_TABLE, (n, n), np.array(BUILTIN_FSM_TABLE, dtype=np.int64),
                np.ones((n, n), dtype=bool), CType(8, True))
    flags = Table(FLAGS_TABLE, (n,), np.array(BUILTIN_FLAGS_TABLE, dtype=np.int64),
                  np.ones(n, dtype=bool), UINT)

    def unsupported(x: Expr) -> Expr:
        # (state_flags_table[x] & device->migration_flags) != state_flags_table[x]
        return Binary("!=", Binary("&", TableRef(flags, (x,)), Flags()), TableRef(flags, (x,)))

    def out_of_range(x: Expr) -> Expr:
        return Binary(">=", x, Const(n, CType(64, True)))

    einval = Const(-EINVAL)
    skip = unsupported(NextRef())
    if loop_fix:
        skip = Binary("&&", Binary("!=", NextRef(), Const(int(_E))), skip)
    body: list[Stmt] = [
        # the current state must be known and supported, else WARN_ON and -EINVAL
        If(Warn(Binary("||", out_of_range(Arg("cur")), unsupported(Arg("cur")))),
           [Return(einval, "current-state check (WARN_ON)")], []),
        # the requested state must be known and supported, else -EINVAL
        If(Binary("||", out_of_range(Arg("new")), unsupported(Arg("new"))),
           [Return(einval, "requested-state check")], []),
        Assign(NextRef(), TableRef(fsm, (Arg("cur"), Arg("new")))),
        # skip steps into states the device does not support
        Loop("while", skip, [Assign(NextRef(), TableRef(fsm, (NextRef(), Arg("new"))))], [],
             "skip loop" + (" (with the ERROR exit)" if loop_fix else "")),
        Return(Ternary(Binary("!=", NextRef(), Const(int(_E))), Const(0), einval),
               "final check: step is ERROR"),
    ]
    return KernelStepFunction(FIXED_SOURCE if loop_fix else BUILTIN_SOURCE,
                              _Function(FUNCTION, [], body), {FSM_TABLE: fsm, FLAGS_TABLE: flags},
                              ALL_FLAGS)


@cache
def default_kernel() -> KernelStepFunction:
    """The step function of Linux 6.2 .. 7.1 as released (skip loop without ERROR exit)."""
    return _builtin(loop_fix=False)


@cache
def fixed_kernel() -> KernelStepFunction:
    """The built-in with the fix queued for 7.2: the skip loop also stops at ERROR."""
    return _builtin(loop_fix=True)


BUILTIN_KERNELS: dict[str, Callable[[], KernelStepFunction]] = {
    "builtin": default_kernel,
    "builtin-fixed": fixed_kernel,
}


def resolve_kernel(spec: str | Path | None) -> KernelStepFunction:
    """``None``/``"builtin"`` -> :func:`default_kernel`; ``"builtin-fixed"`` ->
    :func:`fixed_kernel`; anything else is a source file path (:func:`load_kernel`)."""
    if spec is None:
        return default_kernel()
    if isinstance(spec, str) and spec in BUILTIN_KERNELS:
        return BUILTIN_KERNELS[spec]()
    return load_kernel(spec)
