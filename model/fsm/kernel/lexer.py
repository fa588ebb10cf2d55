"""C tokens of a source file, and its object-like ``#define`` lines."""

from __future__ import annotations

import re
from dataclasses import dataclass


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


def lex(text: str) -> tuple[list[Tok], dict[str, tuple[str, int]]]:
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
            toks.append(Tok("op" if kind == "other" else str(kind), s, line))
        line += s.count("\n")
        pos = end
    return toks, defines


