"""The raw syntax tree the parser produces (``R*`` expressions, ``S*`` statements).

Nothing here is checked yet: :mod:`model.fsm.kernel.resolver` resolves every name and turns
these nodes into the executable ones of :mod:`model.fsm.kernel.interpreter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.fsm.kernel.ctype import CType


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


