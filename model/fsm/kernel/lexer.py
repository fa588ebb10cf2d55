"""C tokens of a (preprocessed) source file.

Each token remembers whether white space or a comment came before it, so a message can
quote an expression the way it is written (``-EINVAL``, not ``- EINVAL``), and the column
it starts at, so a brace that is never closed can be named by indentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Tok:
    kind: str  # "id" "num" "op" "str"
    text: str
    line: int
    space: bool = False  # white space, a comment or a line break before the token
    col: int = 0  # column of the token's first character (0-based, a tab counts 8)


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


def lex(text: str, first_line: int = 1) -> list[Tok]:
    """Tokens without comments.  Preprocessor lines are skipped: run
    :func:`model.fsm.kernel.preprocess.preprocess` first, which evaluates them."""
    toks: list[Tok] = []
    line = first_line
    line_start = 0
    at_line_start = True
    space = False
    pos = 0
    while pos < len(text):
        m = _LEX.match(text, pos)
        assert m is not None  # "other" matches any character
        kind, s = m.lastgroup, m.group()
        if kind == "pp" and not at_line_start:  # '#' inside a line: an operator token
            kind, s = "op", "#"
        end = pos + len(s)
        if kind == "nl":
            at_line_start = space = True
        elif kind in ("ws", "bc", "lc", "pp"):
            space = True
        else:
            at_line_start = False
            col = len(text[line_start:pos].expandtabs(8))
            toks.append(Tok("op" if kind == "other" else str(kind), s, line, space, col))
            space = False
        if "\n" in s:
            line += s.count("\n")
            line_start = pos + s.rindex("\n") + 1
        pos = end
    return toks


def source_text(toks: list[Tok]) -> str:
    """The tokens on one line as written: a single space where the source has any white
    space or comment between two tokens, none where it has none."""
    return "".join((" " if t.space and k else "") + t.text for k, t in enumerate(toks))
