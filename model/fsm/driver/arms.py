"""Which (current, target) pairs a driver's step function handles, and on which line.

The step function is followed for one pair at a time, the way the CPU would: the current
state (``cur``, read from the device's state field) and the target (the parameter the
driver loop passes the step of ``vfio_mig_get_next_state()`` to) are known numbers, so a
condition over them is true or false.

Abstraction: everything else the function reads (command results, pointers, flags set at
run time) is *unknown*; a condition over unknown values alone is followed both ways, and
``&&``/``||`` follow C's logic with unknown operands (false ``&&`` unknown is false).  A
pair is *handled* when some path for it reaches a ``return`` that does not return a
constant errno: the arm performs the arc, even if a command may fail at run time
(``return ERR_PTR(ret)``).  It is *not handled* when every path ends in a constant errno
(``WARN_ON(true); return ERR_PTR(-EINVAL);``) or falls off the end.  A condition that
mixes the states with something unknown (``cur == mvdev->x``), passes them to a function,
indexes with them, assigns to them, or control flow the skeleton does not follow (a loop
over the states, a ``goto`` into a nested block) makes the pair *unparsed*: named by line,
never guessed.

The fallback the drivers share -- ``WARN_ON(true); return ERR_PTR(-EINVAL);`` after the
last arm (mlx5 ``mlx5vf_pci_step_device_state_locked()``, hisi_acc, virtio, qat, mtty at the
commits listed in :mod:`model.fsm.driver.source`), pds ``pds_vfio_step_device_state_locked()``
without the WARN, xe ``xe_vfio_set_state()`` with ``WARN(true, ...)`` and its failures
jumping to an ``err:`` label that returns ``ERR_PTR(ret)`` -- is why a constant errno is a
refusal and any other return a handled arc.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from model.fsm.driver.skeleton import (
    Block,
    Case,
    Cond,
    Goto,
    If,
    Jump,
    Label,
    Loop,
    Node,
    Plain,
    Return,
    Switch,
)
from model.fsm.kernel.lexer import Tok
from model.fsm.kernel.syntax import (
    RBinary,
    RCall,
    RCast,
    RIndex,
    RMember,
    RName,
    RNum,
    RTernary,
    RUnary,
)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
Value = int | _Unknown
_PASS_THROUGH = {"likely", "unlikely", "WARN_ON", "WARN_ON_ONCE"}
_ERRNO_RETURN = re.compile(r"(?:ERR_PTR\s*\(\s*)?-\s*(?:E[A-Z0-9]+|\d+)\s*\)?")
_ASSIGN = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "++", "--"}


class Unparsed(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


@dataclass(frozen=True)
class Roles:
    """How the step function names the two states."""

    cur: frozenset[str]  # variables holding the current state
    new: frozenset[str]  # the parameter holding the target of this step
    field: str | None  # the device's state field (``mig_state``): ``x->field`` is cur

    def names(self, toks: list[Tok]) -> bool:
        """Whether these tokens mention either state."""
        for k, t in enumerate(toks):
            if t.kind != "id":
                continue
            if t.text in self.cur or t.text in self.new:
                return True
            if t.text == self.field and k and toks[k - 1].text in ("->", "."):
                return True
        return False


class Evaluator:
    """Three-valued evaluation of a condition for one pair."""

    def __init__(self, roles: Roles, constant: Callable[[str], int | None]) -> None:
        self.roles, self.constant = roles, constant

    def mentions(self, raw: Any) -> bool:
        if isinstance(raw, RName):
            return raw.name in self.roles.cur or raw.name in self.roles.new
        if isinstance(raw, RMember):
            return self._is_field(raw) or self.mentions(raw.obj)
        if dataclasses.is_dataclass(raw):
            return any(self.mentions(getattr(raw, f.name)) for f in dataclasses.fields(raw))
        if isinstance(raw, list | tuple):
            return any(self.mentions(x) for x in raw)
        return False

    def _is_field(self, raw: RMember) -> bool:
        f = self.roles.field
        return f is not None and raw.field in ("->" + f, "." + f)

    def value(self, raw: Any, pair: tuple[int, int]) -> Value:
        if isinstance(raw, RNum):
            return raw.value
        if isinstance(raw, RName):
            return self._name(raw, pair)
        if isinstance(raw, RMember):
            return pair[0] if self._is_field(raw) else self._opaque(raw, "reads a member")
        if isinstance(raw, RCall):
            if raw.func in _PASS_THROUGH and raw.args:
                return self.value(raw.args[0], pair)
            return self._opaque(raw, f"passes the state to {raw.func}()")
        if isinstance(raw, RUnary):
            return self._unary(raw, pair)
        if isinstance(raw, RBinary):
            return self._binary(raw, pair)
        if isinstance(raw, RTernary):
            test = self.value(raw.test, pair)
            if test is UNKNOWN:
                return self._opaque(raw, "chooses between values on something unknown")
            return self.value(raw.then if test else raw.other, pair)
        if isinstance(raw, RCast):
            return self.value(raw.operand, pair)
        if isinstance(raw, RIndex):
            return self._opaque(raw, "indexes with the state")
        return self._opaque(raw, "is an expression the reader does not evaluate")

    def _opaque(self, raw: Any, why: str) -> Value:
        if self.mentions(raw):
            raise Unparsed(raw.line, f"the condition {why}")
        return UNKNOWN

    def _name(self, raw: RName, pair: tuple[int, int]) -> Value:
        if raw.name in self.roles.cur:
            return pair[0]
        if raw.name in self.roles.new:
            return pair[1]
        v = self.constant(raw.name)
        return UNKNOWN if v is None else v

    def _unary(self, raw: RUnary, pair: tuple[int, int]) -> Value:
        if raw.op in ("*", "&"):
            return self._opaque(raw, "dereferences or takes an address")
        v = self.value(raw.operand, pair)
        if v is UNKNOWN:
            return UNKNOWN
        assert isinstance(v, int)
        return {"!": int(v == 0), "-": -v, "~": ~v, "+": v}[raw.op]

    def _binary(self, raw: RBinary, pair: tuple[int, int]) -> Value:
        a = self.value(raw.left, pair)
        if raw.op in ("&&", "||"):
            short = 0 if raw.op == "&&" else 1
            if a is not UNKNOWN and bool(a) == bool(short):
                return short
            b = self.value(raw.right, pair)
            if b is not UNKNOWN and bool(b) == bool(short):
                return short
            return UNKNOWN if UNKNOWN in (a, b) else 1 - short
        b = self.value(raw.right, pair)
        if a is UNKNOWN or b is UNKNOWN:
            return self._opaque(raw, "compares the state with something that is not a "
                                "constant")
        assert isinstance(a, int) and isinstance(b, int)
        return _arith(raw.op, a, b, raw.line)


def _arith(op: str, a: int, b: int, line: int) -> int:
    if op in ("/", "%") and b == 0:
        raise Unparsed(line, "the condition divides by zero")
    if op in ("<<", ">>") and not 0 <= b < 64:
        raise Unparsed(line, f"the condition shifts by {b}")
    table: dict[str, Callable[[], int]] = {
        "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
        "<=": lambda: int(a <= b), ">": lambda: int(a > b), ">=": lambda: int(a >= b),
        "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b, "+": lambda: a + b,
        "-": lambda: a - b, "*": lambda: a * b, "<<": lambda: a << b, ">>": lambda: a >> b,
        "/": lambda: _cdiv(a, b), "%": lambda: a - _cdiv(a, b) * b,
    }
    return table[op]()


def _cdiv(a: int, b: int) -> int:
    """C's integer division: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# ============================================================================ the walk
@dataclass(frozen=True)
class Path:
    decided: int | None  # line of the innermost if/case that chose this pair's arm
    opaque: bool = False  # the path passed a condition on unknown values


@dataclass(frozen=True)
class Outcome:
    kind: str  # handled | refused | end | unparsed
    line: int  # the deciding arm's line (handled, when known), else the statement's
    detail: str = ""
    decided: bool = True  # handled: a condition over the states chose the arm


@dataclass
class _Flow:
    """What a statement does to the paths that reach it."""

    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    conts: list[Path] = dataclasses.field(default_factory=list)  # fall through
    breaks: list[Path] = dataclasses.field(default_factory=list)
    gotos: list[tuple[str, int, Path]] = dataclasses.field(default_factory=list)

    def add(self, other: _Flow) -> None:
        self.outcomes += other.outcomes
        self.conts += other.conts
        self.breaks += other.breaks
        self.gotos += other.gotos


class Walker:
    """Follows the step function for one pair."""

    def __init__(self, body: list[Node], ev: Evaluator, end_line: int) -> None:
        self.body, self.ev, self.end_line = body, ev, end_line
        self.labels = {n.name: k for k, n in enumerate(body) if isinstance(n, Label)}

    def outcomes(self, pair: tuple[int, int]) -> list[Outcome]:
        return list(self._run(0, Path(None), pair, frozenset()))

    def _run(self, start: int, path: Path, pair: tuple[int, int],
             seen: frozenset[str]) -> Iterator[Outcome]:
        flow = self.seq(self.body[start:], [path], pair)
        yield from flow.outcomes
        if flow.conts or flow.breaks:
            yield Outcome("end", self.end_line, "falls off the end of the function")
        for label, line, p in flow.gotos:
            if label not in self.labels:
                yield Outcome("unparsed", line, f"goto {label}: the label is not at the top "
                              "level of the function")
            elif label in seen:
                yield Outcome("unparsed", line, f"goto {label} comes back to a label it "
                              "passed (a loop)")
            else:
                yield from self._run(self.labels[label] + 1, p, pair, seen | {label})

    def seq(self, nodes: list[Node], paths: list[Path], pair: tuple[int, int]) -> _Flow:
        flow = _Flow()
        live = list(dict.fromkeys(paths))
        for node in nodes:
            if not live:
                break
            step = _Flow()
            for p in live:
                step.add(self.node(node, p, pair))
            flow.outcomes += step.outcomes
            flow.breaks += step.breaks
            flow.gotos += step.gotos
            live = list(dict.fromkeys(step.conts))
        flow.conts = live
        return flow

    def node(self, node: Node, path: Path, pair: tuple[int, int]) -> _Flow:
        handler = _NODES.get(type(node))
        assert handler is not None, type(node)
        try:
            return handler(self, node, path, pair)
        except Unparsed as e:
            return _Flow(outcomes=[Outcome("unparsed", e.line, e.reason)])

    def truth(self, cond: Cond, line: int, pair: tuple[int, int]) -> Value:
        if cond.raw is None:
            if self.ev.roles.names(cond.toks):
                raise Unparsed(line, f"the condition `{cond.text}` is not C the reader parses")
            return UNKNOWN
        return self.ev.value(cond.raw, pair)

    def if_(self, node: If, path: Path, pair: tuple[int, int]) -> _Flow:
        v = self.truth(node.cond, node.line, pair)
        decides = self.ev.mentions(node.cond.raw)
        flow = _Flow()
        if v is UNKNOWN or v:
            p = Path(node.line if decides and v is not UNKNOWN else path.decided,
                     path.opaque or v is UNKNOWN)
            flow.add(self.seq([node.then], [p], pair))
        if v is UNKNOWN or not v:
            p = Path(path.decided, path.opaque or v is UNKNOWN)
            if node.other is None:
                flow.conts.append(p)
            else:
                p = Path(node.line if decides and v is not UNKNOWN else p.decided, p.opaque)
                flow.add(self.seq([node.other], [p], pair))
        return flow

    def switch(self, node: Switch, path: Path, pair: tuple[int, int]) -> _Flow:
        v = self.truth(node.cond, node.line, pair)
        decides = self.ev.mentions(node.cond.raw)
        starts: list[int] = []
        default = None
        for k, n in enumerate(node.body):
            if not isinstance(n, Case):
                continue
            if n.value is None:
                default = k
                continue
            c = self.truth(n.value, n.line, pair)
            if c is UNKNOWN:
                raise Unparsed(n.line, f"case {n.value.text}: not a constant")
            if v is UNKNOWN or c == v:
                starts.append(k)
        if default is not None and (v is UNKNOWN or not starts):
            starts.append(default)
        flow = _Flow()
        if v is UNKNOWN or not starts:
            flow.conts.append(Path(path.decided, path.opaque or v is UNKNOWN))
        for k in starts:
            line = node.body[k].line if decides and v is not UNKNOWN else path.decided
            inner = self.seq(node.body[k + 1:], [Path(line, path.opaque or v is UNKNOWN)],
                             pair)
            flow.outcomes += inner.outcomes
            flow.gotos += inner.gotos
            flow.conts += inner.conts + inner.breaks
        return flow

    def return_(self, node: Return, path: Path, pair: tuple[int, int]) -> _Flow:
        if _ERRNO_RETURN.fullmatch(node.text):
            return _Flow(outcomes=[Outcome("refused", node.line, f"return {node.text}")])
        line = path.decided if path.decided is not None else node.line
        return _Flow(outcomes=[Outcome("handled", line, f"return {node.text}",
                                       path.decided is not None)])

    def plain(self, node: Plain, path: Path, pair: tuple[int, int]) -> _Flow:
        toks = node.toks
        for k, t in enumerate(toks):
            if t.text in self.ev.roles.cur | self.ev.roles.new and (
                    (k + 1 < len(toks) and toks[k + 1].text in _ASSIGN)
                    or (k and toks[k - 1].text in ("++", "--"))) and not _declares(toks, k):
                raise Unparsed(node.line, f"the statement changes {t.text}")
        return _Flow(conts=[path])

    def loop(self, node: Loop, path: Path, pair: tuple[int, int]) -> _Flow:
        if self.ev.roles.names(node.toks) or any(t.text in ("return", "goto")
                                                 for t in node.toks):
            raise Unparsed(node.line, "a loop over the states, or one that returns, is not "
                           "followed")
        return _Flow(conts=[path])

    def block(self, node: Block, path: Path, pair: tuple[int, int]) -> _Flow:
        return self.seq(node.body, [path], pair)

    def goto(self, node: Goto, path: Path, pair: tuple[int, int]) -> _Flow:
        return _Flow(gotos=[(node.label, node.line, path)])

    def jump(self, node: Jump, path: Path, pair: tuple[int, int]) -> _Flow:
        if node.kind == "continue":
            raise Unparsed(node.line, "continue outside a followed loop")
        return _Flow(breaks=[path])

    def marker(self, node: Node, path: Path, pair: tuple[int, int]) -> _Flow:
        return _Flow(conts=[path])


def _declares(toks: list[Tok], k: int) -> bool:
    """``u32 cur = ...``: the name is declared here (its initialiser is the state)."""
    return k > 0 and toks[k - 1].kind == "id" and k + 1 < len(toks) and toks[k + 1].text == "="


_NODES: dict[type, Callable[[Walker, Any, Path, tuple[int, int]], _Flow]] = {
    If: Walker.if_, Switch: Walker.switch, Return: Walker.return_, Plain: Walker.plain,
    Loop: Walker.loop, Block: Walker.block, Goto: Walker.goto, Jump: Walker.jump,
    Label: Walker.marker, Case: Walker.marker,
}
