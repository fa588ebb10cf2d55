"""The C preprocessor's conditionals, so the reader sees only the code the compiler compiles.

``#if``/``#ifdef``/``#ifndef``/``#elif``/``#else``/``#endif`` are evaluated the way the C
standard (C11 6.10.1) says: ``defined NAME`` and ``defined(NAME)``, integer constant
expressions, object-like macros expanded; a skipped group is not evaluated at all, and
neither is an ``#elif`` after a group that was taken.  Lines of skipped groups and the
directive lines themselves become empty lines, so every line number stays the one of the
file.

Abstraction: the preprocessor does not open ``#include`` files.  A name that is neither
given with ``-D`` nor ``#define``-d in the file counts as not defined for ``#ifdef`` and
``defined()`` (the kernel built without that option, the default), but a condition that
needs its *value* (``#if LINUX_VERSION_CODE >= ...``) or calls a function-like macro is
refused with the file, line and symbol, instead of silently taking C's value 0.
``IS_ENABLED()``, ``IS_BUILTIN()`` and ``IS_MODULE()`` are evaluated as the kernel defines
them (include/linux/kconfig.h, ``IS_BUILTIN()``/``IS_MODULE()`` through ``__is_defined()``:
an option is built in when ``CONFIG_X`` is defined *to 1*, a module when
``CONFIG_X_MODULE`` is; defined to anything else counts as off).  A macro has one value per file: the last
``#define`` of the compiled code (before that line for conditionals).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from model.fsm.kernel.ctype import CType
from model.fsm.kernel.lexer import Tok, lex, source_text
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.parser import Parser
from model.fsm.kernel.syntax import RBinary, RCall, RName, RNum, RTernary, RUnary

_DIRECTIVE = re.compile(r"[ \t]*#[ \t]*([A-Za-z_]\w*)?(.*)", re.S)
_NAME = re.compile(r"[A-Za-z_]\w*")
_KCONFIG = ("IS_ENABLED", "IS_BUILTIN", "IS_MODULE")
_MAX_INT = CType(64, False)
_MAX_UINT = CType(64, True)


@dataclass(frozen=True)
class Macro:
    body: str
    line: int  # 0 for a -D option
    function_like: bool = False


@dataclass
class Group:
    """One ``#if`` ... ``#endif``: each arm's directive, first and last line, and whether it
    is compiled."""

    arms: list[tuple[str, int, int, bool]] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.arms[0][1]

    @property
    def last(self) -> int:
        return self.arms[-1][2]

    def describe(self) -> str:
        parts = []
        for text, a, b, live in self.arms:
            what = "compiled" if live else "skipped"
            span = f"lines {a + 1}-{b - 1}" if b - a > 2 else f"line {a + 1}" if b - a == 2 else "no lines"
            parts.append(f"line {a}: {text} ({span} {what})")
        return "; ".join(parts)


@dataclass
class Preprocessed:
    text: str  # the compiled code: same lines, skipped groups and directives empty
    macros: dict[str, Macro]
    groups: list[Group]

    def object_macros(self) -> dict[str, tuple[str, int]]:
        return {k: (m.body, m.line) for k, m in self.macros.items() if not m.function_like}

    def notes_for(self, first: int, last: int) -> list[str]:
        """What the conditionals that overlap lines ``first..last`` decided."""
        return [f"preprocessor: {g.describe()}" for g in self.groups
                if g.first <= last and g.last >= first]


def parse_defines(options: Mapping[str, str] | list[str] | tuple[str, ...] | None
                  ) -> dict[str, Macro]:
    """``-D NAME`` (value 1) and ``-D NAME=VALUE`` options as macros; a bad name raises
    ValueError."""
    out: dict[str, Macro] = {}
    if options is None:
        return out
    items = options.items() if isinstance(options, Mapping) else (
        (o.split("=", 1)[0], o.split("=", 1)[1] if "=" in o else "1") for o in options)
    for name, value in items:
        if not _NAME.fullmatch(name):
            raise ValueError(f"-D {name!r}: a macro name is a C identifier (letters, digits, _)")
        out[name] = Macro(value, 0)
    return out


def _strip_comments(text: str) -> str:
    """Comments replaced by a space (their line breaks kept), strings left intact."""
    out = re.sub(
        r"""("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|/\*.*?(?:\*/|\Z)|//[^\n]*""",
        lambda m: m.group(1) or (" " + "\n" * m.group().count("\n")),
        text, flags=re.S)
    return out


def _logical_lines(text: str) -> list[tuple[int, int, str]]:
    """``(first line, number of physical lines, text)``, backslash-newlines joined."""
    phys = text.split("\n")
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(phys):
        start, buf = i, phys[i]
        while buf.rstrip("\r").endswith("\\") and i + 1 < len(phys):
            i += 1
            buf = buf.rstrip("\r")[:-1] + phys[i]
        out.append((start + 1, i - start + 1, buf))
        i += 1
    return out


class _State:
    """The conditional stack while the file is read."""

    def __init__(self, path: str, macros: dict[str, Macro]) -> None:
        self.path = path
        self.macros = macros
        # per open #if: (group, compiled before it, an arm was taken, #else seen)
        self.stack: list[tuple[Group, bool, bool, bool]] = []
        self.groups: list[Group] = []

    @property
    def live(self) -> bool:
        return not self.stack or (self.stack[-1][1] and self.stack[-1][0].arms[-1][3])

    def err(self, line: int, msg: str) -> KernelSourceError:
        return KernelSourceError.at(self.path, line, msg)

    def open(self, line: int, text: str, cond: bool | None) -> None:
        outer = self.live
        take = bool(outer and cond)
        g = Group([(text, line, line, take)])
        self.stack.append((g, outer, take, False))

    def next_arm(self, line: int, text: str, kind: str, cond_text: str) -> None:
        if not self.stack:
            raise self.err(line, f"#{kind} without #if")
        g, outer, taken, else_seen = self.stack.pop()
        if else_seen:
            raise self.err(line, f"#{kind} after #else (the #if is at line {g.first})")
        self._close_arm(g, line)
        take = False
        if outer and not taken:
            take = True if kind == "else" else self.condition(cond_text, line)
        g.arms.append((text, line, line, take))
        self.stack.append((g, outer, taken or take, kind == "else"))

    def close(self, line: int) -> None:
        if not self.stack:
            raise self.err(line, "#endif without #if")
        g, outer, _, _ = self.stack.pop()
        self._close_arm(g, line)
        if outer:
            self.groups.append(g)

    @staticmethod
    def _close_arm(g: Group, line: int) -> None:
        text, a, _, live = g.arms[-1]
        g.arms[-1] = (text, a, line, live)

    # ----------------------------------------------------------------- #if expressions
    def condition(self, text: str, line: int) -> bool:
        toks = self.expand(lex(text, line), line, set())
        if not toks:
            raise self.err(line, "#if without a condition")
        p = Parser(toks, self.path)
        try:
            raw = p.expr()
        except KernelSourceError:
            raw = None
        if raw is None or p.peek() is not None:
            raise self.err(line, f"#if `{source_text(toks)}` is not an integer constant "
                           "expression")
        return self.value(raw, line)[0] != 0

    def expand(self, toks: list[Tok], line: int, active: set[str]) -> list[Tok]:
        """``defined``, the kconfig tests and object-like macros replaced by their value."""
        out: list[Tok] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "id" and t.text == "defined":
                name, i = self._operand(toks, i + 1, line, "defined")
                out.append(Tok("num", "1" if name in self.macros else "0", line, True))
                continue
            if t.kind == "id" and t.text in _KCONFIG:
                name, i = self._operand(toks, i + 1, line, t.text, parens=True)
                out.append(Tok("num", "1" if self._kconfig(t.text, name) else "0", line, True))
                continue
            m = self.macros.get(t.text) if t.kind == "id" else None
            if m is not None and t.text not in active:
                if m.function_like:
                    raise self.err(line, f"#if uses the function-like macro {t.text}() "
                                   f"(defined at line {m.line}), which is not evaluated")
                out.extend(self.expand(lex(m.body, line), line, active | {t.text}))
            else:
                out.append(t)
            i += 1
        return out

    def _operand(self, toks: list[Tok], i: int, line: int, what: str,
                 parens: bool = False) -> tuple[str, int]:
        has_paren = i < len(toks) and toks[i].text == "("
        if parens and not has_paren:
            raise self.err(line, f"{what} needs (NAME)")
        j = i + 1 if has_paren else i
        if j >= len(toks) or toks[j].kind != "id":
            raise self.err(line, f"{what} needs a macro name")
        if has_paren:
            if j + 1 >= len(toks) or toks[j + 1].text != ")":
                raise self.err(line, f"{what}( {toks[j].text} ... ): ')' expected")
            return toks[j].text, j + 2
        return toks[j].text, j + 1

    def _kconfig(self, test: str, name: str) -> bool:
        def is_one(n: str) -> bool:
            m = self.macros.get(n)
            return m is not None and m.body.strip() == "1"

        builtin, module = is_one(name), is_one(name + "_MODULE")
        return {"IS_BUILTIN": builtin, "IS_MODULE": module, "IS_ENABLED": builtin or module}[test]

    def value(self, raw: object, line: int) -> tuple[int, bool]:
        """The value of a ``#if`` expression as ``(value, unsigned)`` (intmax_t/uintmax_t)."""
        if isinstance(raw, RNum):
            # #if arithmetic is intmax_t; only a constant above its range is unsigned
            # (a 'u' suffix is not tracked: kernel conditionals compare small numbers)
            return raw.value, raw.value > 0x7FFFFFFFFFFFFFFF
        if isinstance(raw, RName):
            raise self.err(line, f"#if depends on {raw.name}, which is not defined here "
                           f"(give its value with -D {raw.name}=VALUE)")
        if isinstance(raw, RCall):
            raise self.err(line, f"#if calls {raw.func}(), which is not a macro of this file "
                           "(only defined(), IS_ENABLED(), IS_BUILTIN(), IS_MODULE() are known)")
        if isinstance(raw, RUnary):
            return self._unary(raw, line)
        if isinstance(raw, RBinary):
            return self._binary(raw, line)
        if isinstance(raw, RTernary):
            test = self.value(raw.test, line)[0]
            a, b = self.value(raw.then, line), self.value(raw.other, line)
            unsigned = a[1] or b[1]
            v = a[0] if test else b[0]
            return (_MAX_UINT if unsigned else _MAX_INT).wrap(v), unsigned
        raise self.err(line, "#if: this expression is not an integer constant expression")

    def _unary(self, raw: RUnary, line: int) -> tuple[int, bool]:
        v, u = self.value(raw.operand, line)
        t = _MAX_UINT if u else _MAX_INT
        if raw.op == "!":
            return int(v == 0), False
        if raw.op == "-":
            return t.wrap(-v), u
        if raw.op == "~":
            return t.wrap(~v), u
        if raw.op == "+":
            return v, u
        raise self.err(line, f"#if: the operator {raw.op!r} is not allowed in a condition")

    def _binary(self, raw: RBinary, line: int) -> tuple[int, bool]:
        op = raw.op
        a, ua = self.value(raw.left, line)
        if op == "&&" and not a:
            return 0, False
        if op == "||" and a:
            return 1, False
        b, ub = self.value(raw.right, line)
        if op in ("&&", "||"):
            return int(bool(b)), False
        u = ua or ub
        t = _MAX_UINT if u else _MAX_INT
        a, b = t.wrap(a), t.wrap(b)
        if op in ("/", "%") and b == 0:
            raise self.err(line, "#if divides by zero")
        if op in ("<<", ">>"):
            if not 0 <= b < 64:
                raise self.err(line, f"#if shifts by {b} (outside 0..63: undefined in C)")
            return (_MAX_UINT if ua else _MAX_INT).wrap(a << b if op == "<<" else a >> b), ua
        results = {
            "==": int(a == b), "!=": int(a != b), "<": int(a < b), "<=": int(a <= b),
            ">": int(a > b), ">=": int(a >= b),
        }
        if op in results:
            return results[op], False
        if op in ("/", "%"):
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return t.wrap(q if op == "/" else a - q * b), u
        r = {"&": a & b, "|": a | b, "^": a ^ b, "+": a + b, "-": a - b, "*": a * b}[op]
        return t.wrap(r), u


def preprocess(text: str, path: str, defines: Mapping[str, Macro] | None = None
               ) -> Preprocessed:
    """The compiled code of ``text``, with ``defines`` (from ``-D``) as predefined macros."""
    state = _State(path, dict(defines or {}))
    out: list[str] = []
    for line, n, logical in _logical_lines(_strip_comments(text)):
        d = _DIRECTIVE.fullmatch(logical)
        if d is None:
            out.append(logical if state.live else "")
            out.extend([""] * (n - 1))
            continue
        _directive(state, line, d.group(1) or "", d.group(2), logical.strip())
        out.extend([""] * n)
    if state.stack:
        g = state.stack[-1][0]
        raise KernelSourceError.at(path, g.first, f"{g.arms[0][0]} has no #endif")
    return Preprocessed("\n".join(out), state.macros, state.groups)


def _directive(state: _State, line: int, name: str, rest: str, text: str) -> None:
    if name in ("if", "ifdef", "ifndef"):
        cond: bool | None = None
        if state.live:
            if name == "if":
                cond = state.condition(rest, line)
            else:
                m = _NAME.match(rest.strip())
                if m is None:
                    raise state.err(line, f"#{name} needs a macro name")
                cond = (m.group() in state.macros) == (name == "ifdef")
        state.open(line, text, cond)
    elif name in ("elif", "else"):
        state.next_arm(line, text, name, rest)
    elif name == "endif":
        state.close(line)
    elif not state.live:
        return
    elif name == "define":
        m = re.match(r"\s*([A-Za-z_]\w*)(\()?(.*)", rest, re.S)
        if m is None:
            raise state.err(line, "#define needs a macro name")
        state.macros[m.group(1)] = Macro(m.group(3).strip() if not m.group(2) else
                                         m.group(3), line, bool(m.group(2)))
    elif name == "undef":
        state.macros.pop(rest.strip(), None)
    elif name == "error":
        raise state.err(line, f"#error{rest.rstrip()}: the compiler stops here with these "
                        "options (change them with -D)")
