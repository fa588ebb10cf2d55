"""Recursive-descent parser for the C subset ``vfio_mig_get_next_state()`` uses:
declarations with designated initialisers, ``if``/``while``/``do``/``for``, ``return``,
``break``/``continue`` and expressions.  Statements it does not model (``switch``,
``goto``, labels) are refused by name rather than skipped."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from model.fsm.kernel.ctype import INT, QUALIFIERS, TYPE_WORDS, CType, ctype_of
from model.fsm.kernel.lexer import Tok, source_text
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.syntax import (
    RAssign,
    RBinary,
    RCall,
    RCast,
    RDeclarator,
    RIndex,
    RInit,
    RMember,
    RName,
    RNum,
    RTernary,
    RUnary,
    SBlock,
    SDecl,
    SExpr,
    SIf,
    SJump,
    SLoop,
    SReturn,
)

_BINARY_PREC = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}
_ASSIGN_OPS = {"=", "|=", "&=", "^=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>="}
_UNSUPPORTED_STMTS = {"switch", "goto", "case", "default", "asm", "__asm__"}


def is_type_word(t: Tok) -> bool:
    return t.kind == "id" and (t.text in TYPE_WORDS or t.text in QUALIFIERS or t.text == "enum")


def is_decl_prefix(toks: Sequence[Tok]) -> bool:
    """Type words only (an identifier is allowed as the tag after ``enum``)."""
    return bool(toks) and all(
        is_type_word(t) or (k and toks[k - 1].text == "enum" and t.kind == "id")
        for k, t in enumerate(toks)
    )


class Parser:
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
            raise KernelSourceError.at(self.path, last, "unexpected end of the function body")
        self.i += 1
        return t

    def expect(self, text: str) -> Tok:
        t = self.peek()
        if t is None or t.text != text:
            got = "end of input" if t is None else repr(t.text)
            line = t.line if t is not None else (self.t[self.end - 1].line if self.end else 0)
            raise KernelSourceError.at(self.path, line, f"expected {text!r}, found {got}")
        self.i += 1
        return t

    def fail(self, msg: str, tok: Tok | None = None) -> KernelSourceError:
        tok = tok or self.peek() or (self.t[self.end - 1] if self.end else Tok("op", "", 0))
        return KernelSourceError.at(self.path, tok.line, msg)

    def text_between(self, a: int, b: int) -> str:
        """The source of tokens ``a..b`` on one line, as written, for messages."""
        return source_text(self.t[a:b])

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
        after = self.peek(1)
        if t.text == "(" and after is not None and is_type_word(after):
            self.take()
            words = []
            while not self.at(")"):
                w = self.take()
                if w.text == "*":
                    raise self.fail("pointer casts are not interpreted", w)
                words.append(w.text)
            self.expect(")")
            return RCast(t.line, ctype_of(words), self.unary())
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
        raise KernelSourceError.at(self.path, t.line, f"unexpected {t.text!r} in an expression")

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
            keyword = self._KEYWORDS.get(t.text)
            if keyword is not None:
                self.take()
                return keyword(self, t)
            if t.text in _UNSUPPORTED_STMTS or (self.at(":", 1) and not self.at("?")):
                raise self.fail(f"the statement {t.text!r} is not interpreted")
            if is_type_word(t) or t.text == "struct":
                return self.declaration()
        s = self.simple()
        self.expect(";")
        return s

    def condition(self) -> tuple[Any, str]:
        """``( expr )``: the expression and its source text."""
        self.expect("(")
        a = self.i
        test = self.expr()
        text = self.text_between(a, self.i)
        self.expect(")")
        return test, text

    def if_statement(self, t: Tok) -> SIf:
        test, text = self.condition()
        then = self.statement()
        other = None
        if self.at("else"):
            self.take()
            other = self.statement()
        return SIf(t.line, test, then, other, text)

    def while_statement(self, t: Tok) -> SLoop:
        test, text = self.condition()
        return SLoop(t.line, "while", None, test, None, self.statement(), text)

    def do_statement(self, t: Tok) -> SLoop:
        body = self.statement()
        self.expect("while")
        test, text = self.condition()
        self.expect(";")
        return SLoop(t.line, "do", None, test, None, body, text)

    def for_statement(self, t: Tok) -> SLoop:
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

    def return_statement(self, t: Tok) -> SReturn:
        a = self.i
        value = None if self.at(";") else self.expr()
        text = "return " + self.text_between(a, self.i)
        self.expect(";")
        return SReturn(t.line, value, text)

    def jump_statement(self, t: Tok) -> SJump:
        self.expect(";")
        return SJump(t.line, t.text)

    _KEYWORDS: dict[str, Callable[[Parser, Tok], Any]] = {
        "if": if_statement, "while": while_statement, "do": do_statement,
        "for": for_statement, "return": return_statement,
        "break": jump_statement, "continue": jump_statement,
    }

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
            if t is None or not (is_type_word(t) or t.text == "struct"):
                break
            self.take()
            if t.text == "struct":
                raise self.fail("struct variables are not interpreted", t)
            words.append(t.text)
            if t.text == "enum":
                tag_tok = self.peek()
                if tag_tok is not None and tag_tok.kind == "id" and not self.at("{", 0):
                    tag = self.take()
                    words.append(tag.text)
                if self.at("{"):
                    enum_consts.extend(self.enum_body())
        ctype = ctype_of(words)
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


