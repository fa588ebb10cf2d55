"""A source file as the compiler sees it: preprocessed, tokenised, its braces balanced.

Both readers start here: the kernel's ``vfio_mig_get_next_state()``
(:mod:`model.fsm.kernel.load`) and a variant driver's step function
(:mod:`model.fsm.driver.source`).  A file whose braces do not balance would not compile,
so it is refused, naming the brace that is never closed (or the ``}`` that closes
nothing) by its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.fsm.kernel.lexer import Tok, lex
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.preprocess import Macro, Preprocessed, preprocess


@dataclass
class Unit:
    path: str
    toks: list[Tok]
    pre: Preprocessed

    @property
    def defines(self) -> dict[str, tuple[str, int]]:
        """Object-like macros of the compiled code (``-D`` options included)."""
        return self.pre.object_macros()


def read_source(path: str | Path, what: str) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise KernelSourceError(f"{p}: cannot read the {what}: {e.strerror or e}",
                                str(p)) from None


def translation_unit(text: str, path: str, defines: dict[str, Macro] | None = None) -> Unit:
    pre = preprocess(text, path, defines)
    toks = lex(pre.text)
    check_braces(toks, path)
    return Unit(path, toks, pre)


def check_braces(toks: list[Tok], path: str) -> None:
    """Refuse unbalanced braces, naming the culprit by its line.

    Kernel code closes a block at the indentation of the line that opened it, so where the
    counts disagree the first ``}`` indented less than its partner's line shows which
    ``{`` lost its ``}``; without such a clue the innermost unclosed ``{`` is named.
    """
    indent: dict[int, int] = {}
    for t in toks:
        indent.setdefault(t.line, t.col)
    stack: list[Tok] = []
    suspect: Tok | None = None  # a '{' closed by a '}' indented less than its line
    extra: Tok | None = None  # a '}' indented more than the line of the '{' it closes
    for t in toks:
        if t.text == "{" and t.kind == "op":
            stack.append(t)
        elif t.text == "}" and t.kind == "op":
            if not stack:
                if extra is not None:
                    raise KernelSourceError.at(path, extra.line, "this '}' is extra: it "
                                               "closes a block early, and the '}' at line "
                                               f"{t.line} then closes no '{{'")
                raise KernelSourceError.at(path, t.line, "this '}' closes no '{' (a '{' "
                                           "is missing before it, or the '}' is extra)")
            opened = stack.pop()
            if suspect is None and indent[t.line] < indent[opened.line]:
                suspect = opened
            if extra is None and indent[t.line] > indent[opened.line]:
                extra = t
    if not stack:
        return
    culprit = suspect if suspect is not None else stack[-1]
    raise KernelSourceError.at(path, culprit.line, "the '{' on this line is never closed "
                               "(a '}' is missing)")
