"""The control skeleton of a driver's step function: which statement decides what.

A variant driver's step function is ordinary kernel C (pointers, structs, commands to the
device), of which only the control flow over the two states matters for its arcs.  This
parser keeps that flow -- blocks, ``if``/``else``, ``switch``/``case``, ``return``,
``goto`` and labels -- and keeps every other statement as its tokens, to be checked for
whether it touches the states.  Conditions are parsed with the kernel reader's expression
parser; one it cannot read keeps its tokens (``raw`` is None) so the arm can be named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.fsm.kernel.lexer import Tok, source_text
from model.fsm.kernel.locate import match_bracket
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.parser import Parser


@dataclass
class Node:
    line: int


@dataclass
class Cond:
    toks: list[Tok]
    raw: Any  # the parsed expression, or None when the parser cannot read it

    @property
    def text(self) -> str:
        return source_text(self.toks)


@dataclass
class Block(Node):
    body: list[Node]


@dataclass
class If(Node):
    cond: Cond
    then: Node
    other: Node | None


@dataclass
class Switch(Node):
    cond: Cond
    body: list[Node]


@dataclass
class Case(Node):
    value: Cond | None  # None: ``default:``


@dataclass
class Return(Node):
    toks: list[Tok]  # the returned expression

    @property
    def text(self) -> str:
        return source_text(self.toks)


@dataclass
class Goto(Node):
    label: str


@dataclass
class Label(Node):
    name: str


@dataclass
class Jump(Node):
    kind: str  # break | continue


@dataclass
class Loop(Node):
    toks: list[Tok]  # the whole statement: a loop is not followed, only checked


@dataclass
class Plain(Node):
    toks: list[Tok]  # a declaration or an expression statement


class SkeletonParser:
    def __init__(self, toks: list[Tok], path: str) -> None:
        self.t, self.path = toks, path

    def err(self, line: int, msg: str) -> KernelSourceError:
        return KernelSourceError.at(self.path, line, msg)

    def block(self, start: int, end: int) -> list[Node]:
        """The statements of tokens ``start..end`` (between a body's braces)."""
        out: list[Node] = []
        i = start
        while i < end:
            node, i = self.statement(i, end)
            out.append(node)
        return out

    def closing(self, i: int, open_: str, close: str) -> int:
        j = match_bracket(self.t, i, open_, close)
        if j < 0:
            raise self.err(self.t[i].line, f"the {open_!r} on this line is never closed")
        return j

    def cond(self, a: int, b: int) -> Cond:
        p = Parser(self.t, self.path, a, b)
        try:
            raw = p.expr()
            if p.peek() is not None:
                raw = None
        except (KernelSourceError, RecursionError):
            raw = None
        return Cond(self.t[a:b], raw)

    def upto(self, i: int, end: int, stop: str) -> int:
        """Index of the first ``stop`` at bracket depth 0 from ``i``."""
        depth = 0
        for j in range(i, end):
            x = self.t[j].text
            if x in "([{":
                depth += 1
            elif x in ")]}":
                depth -= 1
            elif x == stop and depth == 0:
                return j
        raise self.err(self.t[i].line, f"{stop!r} expected after this statement")

    def statement(self, i: int, end: int) -> tuple[Node, int]:
        t = self.t[i]
        if t.text == "{":
            j = self.closing(i, "{", "}")
            return Block(t.line, self.block(i + 1, j)), j + 1
        if t.kind == "id":
            handler = _KEYWORDS.get(t.text)
            if handler is not None:
                return handler(self, i, end)
            if i + 1 < end and self.t[i + 1].text == ":":
                return Label(t.line, t.text), i + 2
        j = self.upto(i, end, ";")
        return Plain(t.line, self.t[i:j]), j + 1

    def parenthesised(self, i: int) -> tuple[Cond, int]:
        if self.t[i + 1].text != "(":
            raise self.err(self.t[i].line, f"'(' expected after {self.t[i].text}")
        close = self.closing(i + 1, "(", ")")
        return self.cond(i + 2, close), close + 1

    def if_(self, i: int, end: int) -> tuple[Node, int]:
        cond, k = self.parenthesised(i)
        then, k = self.statement(k, end)
        other = None
        if k < end and self.t[k].text == "else":
            other, k = self.statement(k + 1, end)
        return If(self.t[i].line, cond, then, other), k

    def switch(self, i: int, end: int) -> tuple[Node, int]:
        cond, k = self.parenthesised(i)
        if self.t[k].text != "{":
            raise self.err(self.t[k].line, "a switch without braces is not interpreted")
        j = self.closing(k, "{", "}")
        return Switch(self.t[i].line, cond, self.block(k + 1, j)), j + 1

    def case(self, i: int, end: int) -> tuple[Node, int]:
        j = self.upto(i, end, ":")
        return Case(self.t[i].line, self.cond(i + 1, j)), j + 1

    def default(self, i: int, end: int) -> tuple[Node, int]:
        if self.t[i + 1].text != ":":
            raise self.err(self.t[i].line, "':' expected after default")
        return Case(self.t[i].line, None), i + 2

    def return_(self, i: int, end: int) -> tuple[Node, int]:
        j = self.upto(i, end, ";")
        return Return(self.t[i].line, self.t[i + 1:j]), j + 1

    def goto(self, i: int, end: int) -> tuple[Node, int]:
        j = self.upto(i, end, ";")
        if j != i + 2 or self.t[i + 1].kind != "id":
            raise self.err(self.t[i].line, "goto needs a label")
        return Goto(self.t[i].line, self.t[i + 1].text), j + 1

    def jump(self, i: int, end: int) -> tuple[Node, int]:
        j = self.upto(i, end, ";")
        return Jump(self.t[i].line, self.t[i].text), j + 1

    def loop(self, i: int, end: int) -> tuple[Node, int]:
        t = self.t[i]
        if t.text == "do":
            _, k = self.statement(i + 1, end)
            k = self.upto(k, end, ";") + 1
        else:
            _, k = self.parenthesised(i)
            _, k = self.statement(k, end)
        return Loop(t.line, self.t[i:k]), k


_KEYWORDS = {
    "if": SkeletonParser.if_, "switch": SkeletonParser.switch, "case": SkeletonParser.case,
    "default": SkeletonParser.default, "return": SkeletonParser.return_,
    "goto": SkeletonParser.goto, "break": SkeletonParser.jump,
    "continue": SkeletonParser.jump, "while": SkeletonParser.loop,
    "for": SkeletonParser.loop, "do": SkeletonParser.loop,
}


def parse_body(toks: list[Tok], start: int, end: int, path: str) -> list[Node]:
    """The skeleton of a function body (tokens between its braces)."""
    return SkeletonParser(toks, path).block(start, end)
