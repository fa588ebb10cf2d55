"""Executable nodes: expressions and statements that run one call of a step function.

A call is deterministic, so a loop that comes back to the same variables at its test runs
for ever; :class:`Loop` reports that as :class:`NonTerminatingStep` instead of hanging, and
C's undefined behaviour (a read outside a table, an unset variable) as
:class:`UndefinedStep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.fsm.kernel.ctype import INT, UINT, CType, common_type
from model.fsm.kernel.names import NonTerminatingStep, UndefinedStep
from model.fsm.uapi import NUM_STATES, DeviceState

# a loop that neither ends nor repeats a state within this many iterations is reported as
# non-terminating (a skip loop runs at most once per state)
_MAX_LOOP_ITERATIONS = 100_000


class Returned(Exception):
    def __init__(self, value: int, where: str):
        self.value, self.where = value, where


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class Env:
    flags: int
    cur: int
    new: int
    nxt: int | None = None
    locals: dict[str, int] = field(default_factory=dict)
    warned: bool = False
    iterations: int = 0


def state_name(v: int | None) -> str:
    if v is None:
        return "unset"
    return DeviceState(v).name if 0 <= v < NUM_STATES else str(v)


class Expr:
    ctype: CType = INT

    def eval(self, env: Env) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Const(Expr):
    value: int
    ctype: CType = INT

    def eval(self, env: Env) -> int:
        return self.value


@dataclass
class Arg(Expr):
    """``cur_fsm`` or ``new_fsm`` (an ``enum vfio_device_mig_state``)."""

    role: str

    def eval(self, env: Env) -> int:
        return env.cur if self.role == "cur" else env.new


@dataclass
class Flags(Expr):
    """``device->migration_flags``."""

    ctype: CType = UINT

    def eval(self, env: Env) -> int:
        return env.flags


@dataclass
class NextRef(Expr):
    """``*next_fsm``."""

    def eval(self, env: Env) -> int:
        if env.nxt is None:
            raise UndefinedStep("reads *next_fsm before setting it")
        return env.nxt


@dataclass
class Local(Expr):
    name: str
    ctype: CType = INT

    def eval(self, env: Env) -> int:
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

    def eval(self, env: Env) -> int:
        idx: list[int] = []
        for dim, e in zip(self.table.dims, self.indices, strict=True):
            v = e.eval(env)
            if not 0 <= v < dim:
                shown = "".join(f"[{i}]" for i in [*idx, v])
                raise UndefinedStep(
                    f"reads {self.table.name}{shown} outside its {dim} entries"
                    + (f" ({state_name(v)})" if 0 <= v < NUM_STATES else "")
                )
            idx.append(v)
        return int(self.table.values[tuple(idx)])


@dataclass
class Unary(Expr):
    op: str
    operand: Expr

    def __post_init__(self) -> None:
        self.ctype = INT if self.op == "!" else self.operand.ctype.promoted()

    def eval(self, env: Env) -> int:
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
        self.operand_type = common_type(self.left.ctype, self.right.ctype)
        if self.op in ("&&", "||", "==", "!=", "<", "<=", ">", ">="):
            self.ctype = INT
        elif self.op in ("<<", ">>"):
            self.ctype = self.left.ctype.promoted()
        else:
            self.ctype = self.operand_type

    def eval(self, env: Env) -> int:
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
        self.ctype = common_type(self.then.ctype, self.other.ctype)

    def eval(self, env: Env) -> int:
        v = self.then.eval(env) if self.test.eval(env) else self.other.eval(env)
        return self.ctype.wrap(v)


@dataclass
class Cast(Expr):
    operand: Expr
    ctype: CType = INT

    def eval(self, env: Env) -> int:
        return self.ctype.wrap(self.operand.eval(env))


@dataclass
class Warn(Expr):
    """``WARN_ON(cond)``: the truth of ``cond``, and a kernel warning when true."""

    operand: Expr

    def eval(self, env: Env) -> int:
        v = int(bool(self.operand.eval(env)))
        if v:
            env.warned = True
        return v


@dataclass
class HelperCall(Expr):
    """A call of a function defined in the same source file (e.g. a support test)."""

    helper: Function
    args: tuple[Expr | None, ...]  # None where the device pointer is passed

    def __post_init__(self) -> None:
        self.ctype = self.helper.ret

    def eval(self, env: Env) -> int:
        sub = Env(env.flags, env.cur, env.new)
        for (name, _is_dev, ctype), a in zip(self.helper.params, self.args, strict=True):
            if a is not None:
                sub.locals[name] = ctype.wrap(a.eval(env))
        v = self.helper.run(sub)
        env.warned |= sub.warned
        env.iterations += sub.iterations
        return v


class Stmt:
    def exec(self, env: Env) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def run_body(body: Sequence[Stmt], env: Env) -> None:
    for s in body:
        s.exec(env)


@dataclass
class Assign(Stmt):
    target: Expr  # NextRef or Local
    value: Expr

    def exec(self, env: Env) -> None:
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

    def exec(self, env: Env) -> None:
        if self.init is None:
            env.locals.pop(self.name, None)
        else:
            env.locals[self.name] = self.ctype.wrap(self.init.eval(env))


@dataclass
class Evaluate(Stmt):
    expr: Expr

    def exec(self, env: Env) -> None:
        self.expr.eval(env)


@dataclass
class If(Stmt):
    test: Expr
    then: list[Stmt]
    other: list[Stmt]

    def exec(self, env: Env) -> None:
        run_body(self.then if self.test.eval(env) else self.other, env)


@dataclass
class Loop(Stmt):
    kind: str
    test: Expr | None
    body: list[Stmt]
    step: list[Stmt]
    where: str

    def exec(self, env: Env) -> None:
        seen: set[tuple[Any, ...]] = set()
        first = True
        while True:
            if self.kind != "do" or not first:
                # The call is deterministic: the same variables at the same loop test
                # mean the loop has come round and will run for ever.
                snap = (env.nxt, tuple(sorted(env.locals.items())))
                if snap in seen:
                    raise NonTerminatingStep(
                        f"the {self.where} comes back with *next_fsm = {state_name(env.nxt)} "
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
                run_body(self.body, env)
            except _Break:
                return
            except _Continue:
                pass
            run_body(self.step, env)


@dataclass
class Return(Stmt):
    value: Expr | None
    where: str
    ctype: CType = INT

    def exec(self, env: Env) -> None:
        raise Returned(0 if self.value is None else self.ctype.wrap(self.value.eval(env)),
                      self.where)


@dataclass
class Jump(Stmt):
    kind: str

    def exec(self, env: Env) -> None:
        raise _Break() if self.kind == "break" else _Continue()


@dataclass
class Function:
    name: str
    params: list[tuple[str, bool, CType]]  # (name, is the vfio_device pointer, type)
    body: list[Stmt]
    ret: CType = INT

    def run(self, env: Env) -> int:
        try:
            run_body(self.body, env)
        except Returned as r:
            return self.ret.wrap(r.value)
        raise UndefinedStep(f"reaches the end of {self.name}() without returning a value")


