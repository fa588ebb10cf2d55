"""Turns the raw syntax of a function into executable nodes, checking every name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.fsm.kernel.ctype import INT, CType, ctype_of
from model.fsm.kernel.interpreter import (
    Arg,
    Assign,
    Binary,
    Cast,
    Const,
    Declare,
    Env,
    Evaluate,
    Expr,
    Flags,
    Function,
    HelperCall,
    If,
    Jump,
    Local,
    Loop,
    NextRef,
    Return,
    Stmt,
    Table,
    TableRef,
    Ternary,
    Unary,
    Warn,
    state_name,
)
from model.fsm.kernel.lexer import Tok, lex
from model.fsm.kernel.locate import file_scope_enums, find_file_scope_decl, find_function
from model.fsm.kernel.names import FUNCTION, TABLE_ROLES, UAPI_CONSTANTS, KernelSourceError
from model.fsm.kernel.parser import Parser
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
from model.fsm.uapi import MigFlag


class Resolver:
    """Turns raw syntax into executable nodes, checking every name as it goes."""

    def __init__(self, path: str, toks: list[Tok], defines: dict[str, tuple[str, int]]):
        self.path = path
        self.toks = toks
        self.defines = defines
        self.consts: dict[str, tuple[int, CType]] = dict(UAPI_CONSTANTS)
        self.tables: dict[str, Table] = {}
        self.mentioned = MigFlag.STOP_COPY
        self.helpers: dict[str, Function] = {}
        self._helper_stack: list[str] = []
        self._define_stack: list[str] = []
        self._file_enums: dict[str, list[tuple[str, Any]]] | None = None

    def err(self, line: int, msg: str) -> KernelSourceError:
        return KernelSourceError.at(self.path, line, msg)

    # ------------------------------------------------------------------ constants
    def define(self, name: str, line: int, scope: Scope) -> Expr | None:
        if name not in self.defines or name in self._define_stack:
            return None
        body, dline = self.defines[name]
        toks = [Tok(t.kind, t.text, dline, t.space) for t in lex(body)]
        if not toks:
            return None
        p = Parser(toks, self.path)
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

    def file_enum(self, name: str) -> tuple[int, CType] | None:
        """A constant of a file-scope enum (C 6.7.2.2: each one is the previous plus one
        unless it is given a value), computed when first used."""
        if self._file_enums is None:
            self._file_enums = {n: body for body in file_scope_enums(self.toks, self.path)
                                for n, _ in body}
        body = self._file_enums.get(name)
        if body is None or name in self._define_stack:
            return None
        scope = Scope({}, {}, f"the enumerator {name}")
        nxt = 0
        self._define_stack.append(name)
        try:
            for n, value in body:
                if value is not None:
                    nxt, _ = self.const_in(value, scope, f"the enumerator {n}")
                scope.consts[n] = (nxt, INT)
                if n == name:
                    return nxt, INT
                nxt += 1
        finally:
            self._define_stack.pop()
        return None

    # ------------------------------------------------------------------ tables
    def table(self, name: str, line: int, scope: Scope) -> Table | None:
        if name in scope.tables:
            return scope.tables[name]
        if name in self.tables:
            return self.tables[name]
        decl = find_file_scope_decl(self.toks, name, self.path)
        if decl is None:
            return None
        t = self.make_table(decl, Scope({}, {}, f"the file-scope declaration of {name}"))
        self.tables[name] = t
        return t

    def make_table(self, d: RDeclarator, scope: Scope) -> Table:
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

    def fill(self, d: RDeclarator, scope: Scope, init: Any, dims: list[int | None],
             prefix: tuple[int, ...], cells: dict[tuple[int, ...], int]) -> None:
        if not dims:  # a scalar element
            if isinstance(init, RInit):
                if len(init.items) != 1 or init.items[0][0]:
                    raise self.err(init.line, f"{d.name}: braces around a scalar element")
                init = init.items[0][1]
            v, _ = self.const_in(init, scope, f"the initialiser of {d.name}"
                                 f"{''.join(f'[{state_name(i)}]' for i in prefix)}")
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

    def const_in(self, raw: Any, scope: Scope, what: str) -> tuple[int, CType]:
        e = self.expr(raw, scope.with_what(what))
        if not isinstance(e, Const):
            raise self.err(raw.line, f"{what} is not a constant expression")
        return e.value, e.ctype

    # ------------------------------------------------------------------ expressions
    def expr(self, raw: Any, scope: Scope) -> Expr:
        e = self._expr(raw, scope)
        if not isinstance(e, Const) and _all_const(e):
            return Const(e.eval(Env(0, 0, 0)), e.ctype)
        return e

    def _expr(self, raw: Any, scope: Scope) -> Expr:
        handler = self._EXPRESSIONS.get(type(raw))
        if handler is None:
            raise self.err(getattr(raw, "line", 0), f"cannot interpret {scope.what}")
        return handler(self, raw, scope)

    def _number(self, raw: RNum, scope: Scope) -> Expr:
        return Const(raw.ctype.wrap(raw.value), raw.ctype)

    def _name(self, raw: RName, scope: Scope) -> Expr:
        n, what = raw.name, scope.what
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
        e = self.file_enum(n)
        if e is not None:
            return Const(*e)
        raise self.err(raw.line, f"cannot interpret {what}: unknown name {n!r}")

    def _member(self, raw: RMember, scope: Scope) -> Expr:
        if (isinstance(raw.obj, RName) and scope.roles.get(raw.obj.name) == "dev"
                and raw.field == "->migration_flags"):
            return Flags()
        raise self.err(raw.line, f"cannot interpret {scope.what}: the member access "
                       f"{raw.field!r} (only device->migration_flags is modelled)")

    def _unary(self, raw: RUnary, scope: Scope) -> Expr:
        if raw.op == "*":
            if isinstance(raw.operand, RName) and scope.roles.get(raw.operand.name) == "nxt":
                return NextRef()
            raise self.err(raw.line, f"cannot interpret {scope.what}: a dereference other "
                           "than *next_fsm")
        if raw.op == "&":
            raise self.err(raw.line, f"cannot interpret {scope.what}: taking an address")
        return Unary(raw.op, self.expr(raw.operand, scope))

    def _index(self, raw: RIndex, scope: Scope) -> Expr:
        what = scope.what
        base: Any = raw
        idx: list[Any] = []
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

    def _binary(self, raw: RBinary, scope: Scope) -> Expr:
        return Binary(raw.op, self.expr(raw.left, scope), self.expr(raw.right, scope))

    def _ternary(self, raw: RTernary, scope: Scope) -> Expr:
        return Ternary(self.expr(raw.test, scope), self.expr(raw.then, scope),
                       self.expr(raw.other, scope))

    def _cast(self, raw: RCast, scope: Scope) -> Expr:
        return Cast(self.expr(raw.operand, scope), raw.ctype)

    def _assign(self, raw: RAssign, scope: Scope) -> Expr:
        raise self.err(raw.line, f"cannot interpret {scope.what}: an assignment inside an "
                       "expression")

    def _init(self, raw: RInit, scope: Scope) -> Expr:
        raise self.err(raw.line, f"cannot interpret {scope.what}: a brace initialiser")

    def _call(self, raw: RCall, scope: Scope) -> Expr:
        return self.call(raw, scope)

    _EXPRESSIONS: dict[type, Callable[[Resolver, Any, Scope], Expr]] = {
        RNum: _number, RName: _name, RMember: _member, RUnary: _unary, RIndex: _index,
        RCall: _call, RBinary: _binary, RTernary: _ternary, RCast: _cast, RAssign: _assign,
        RInit: _init,
    }

    @staticmethod
    def missing_table(name: str, what: str) -> str:
        if name in TABLE_ROLES:
            return (f"no definition of {name} ({TABLE_ROLES[name]}) in {FUNCTION}() or at "
                    f"file scope, but {what} uses it")
        return f"cannot interpret {what}: unknown array {name!r}"

    def call(self, raw: RCall, scope: Scope) -> Expr:
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

    def helper(self, name: str, line: int) -> Function | None:
        if name in self.helpers:
            return self.helpers[name]
        if name in self._helper_stack:
            raise self.err(line, f"{name}() is recursive; recursion is not interpreted")
        found = find_function(self.toks, name)
        if found is None:
            return None
        params, body_start, body_end, ret = found.params, found.start, found.end, found.ret
        roles: dict[str, str] = {}
        plist: list[tuple[str, bool, CType]] = []
        for p in params:
            is_dev = p.is_pointer and "vfio_device" in p.words
            if p.is_pointer and not is_dev:
                raise self.err(line, f"{name}(): pointer parameter {p.name} is not interpreted")
            if is_dev:
                roles[p.name] = "dev"
            plist.append((p.name, is_dev, ctype_of(p.words)))
        self._helper_stack.append(name)
        try:
            scope = Scope(roles, {n: t for n, d, t in plist if not d}, f"{name}()")
            body = self.body(self.toks, body_start, body_end, scope)
        finally:
            self._helper_stack.pop()
        fn = Function(name, plist, body, ret)
        self.helpers[name] = fn
        return fn

    # ------------------------------------------------------------------ statements
    def body(self, toks: list[Tok], start: int, end: int, scope: Scope) -> list[Stmt]:
        p = Parser(toks, self.path, start, end)
        out: list[Stmt] = []
        while p.peek() is not None:
            out.extend(self.stmt(p.statement(), scope, ""))
        return out

    def stmt(self, raw: Any, scope: Scope, context: str) -> list[Stmt]:
        """Executable statements for one raw statement; ``context`` names the enclosing
        ``if`` for the ``where`` of a return (what a report says refused the call)."""
        handler = self._STATEMENTS.get(type(raw))
        if handler is None:
            raise self.err(getattr(raw, "line", 0), "cannot interpret this statement")
        return handler(self, raw, scope, context)

    def _block(self, raw: SBlock, scope: Scope, context: str) -> list[Stmt]:
        inner = scope.child()
        out: list[Stmt] = []
        for s in raw.body:
            out.extend(self.stmt(s, inner, context))
        return out

    def _declaration(self, raw: SDecl, scope: Scope, context: str) -> list[Stmt]:
        self.enum(raw, scope)
        out: list[Stmt] = []
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

    def _if(self, raw: SIf, scope: Scope, context: str) -> list[Stmt]:
        test = self.expr(raw.test, scope.with_what(
            f"the condition `{raw.text}` of the if statement at line {raw.line}"))
        ctx = f"line {raw.line}: if ({raw.text})"
        then = self.stmt(raw.then, scope.child(), ctx)
        other = [] if raw.other is None else self.stmt(raw.other, scope.child(), context)
        return [If(test, then, other)]

    def _loop(self, raw: SLoop, scope: Scope, context: str) -> list[Stmt]:
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

    def _return(self, raw: SReturn, scope: Scope, context: str) -> list[Stmt]:
        value = None if raw.value is None else self.expr(
            raw.value, scope.with_what(f"the return value `{raw.text}` at line {raw.line}"))
        return [Return(value, context or f"line {raw.line}: {raw.text}")]

    def _jump(self, raw: SJump, scope: Scope, context: str) -> list[Stmt]:
        return [Jump(raw.kind)]

    def _expression(self, raw: SExpr, scope: Scope, context: str) -> list[Stmt]:
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

    _STATEMENTS: dict[type, Callable[[Resolver, Any, Scope, str], list[Stmt]]] = {
        SBlock: _block, SDecl: _declaration, SIf: _if, SLoop: _loop, SReturn: _return,
        SJump: _jump, SExpr: _expression,
    }

    def enum(self, raw: SDecl, scope: Scope) -> None:
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
class Scope:
    roles: dict[str, str]
    locals: dict[str, CType]
    what: str
    tables: dict[str, Table] = field(default_factory=dict)
    consts: dict[str, tuple[int, CType]] = field(default_factory=dict)

    def child(self) -> Scope:
        return Scope(self.roles, dict(self.locals), self.what, self.tables, self.consts)

    def with_what(self, what: str) -> Scope:
        return Scope(self.roles, self.locals, what, self.tables, self.consts)


