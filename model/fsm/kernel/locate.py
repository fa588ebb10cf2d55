"""Finding a function definition or a file-scope array declaration among a file's tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from model.fsm.kernel.ctype import CType, ctype_of
from model.fsm.kernel.lexer import Tok
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.parser import Parser, is_decl_prefix
from model.fsm.kernel.syntax import RDeclarator


@dataclass
class Param:
    name: str
    words: list[str]
    is_pointer: bool


def match_bracket(toks: list[Tok], i: int, open_: str, close: str) -> int:
    """Index of the token closing the bracket at ``i``, or -1."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j].text
        if t == open_:
            depth += 1
        elif t == close:
            depth -= 1
            if depth == 0:
                return j
    return -1


@dataclass
class FunctionDef:
    """A function definition: its parameters, the token range of its body (between the
    braces) and its return type."""

    name: str
    params: list[Param]
    start: int
    end: int
    ret: CType


def file_scope_ids(toks: list[Tok], name: str) -> Iterator[int]:
    """Indices of the identifier ``name`` outside every brace."""
    depth = 0
    for i, t in enumerate(toks):
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
        elif not depth and t.text == name and t.kind == "id":
            yield i


def find_function(toks: list[Tok], name: str) -> FunctionDef | None:
    """The first *definition* of ``name`` at file scope."""
    for i in file_scope_ids(toks, name):
        found = _definition_at(toks, i)
        if found is not None:
            return found
    return None


def _definition_at(toks: list[Tok], i: int) -> FunctionDef | None:
    """The definition whose name is ``toks[i]``, or None for a call or a declaration."""
    if i + 1 >= len(toks) or toks[i + 1].text != "(":
        return None
    close = match_bracket(toks, i + 1, "(", ")")
    if close < 0 or close + 1 >= len(toks) or toks[close + 1].text != "{":
        return None
    end = match_bracket(toks, close + 1, "{", "}")
    if end < 0:
        return None
    return FunctionDef(toks[i].text, _parameters(toks[i + 2:close]), close + 2, end,
                       _return_type(toks, i))


def _parameters(toks: list[Tok]) -> list[Param]:
    params: list[Param] = []
    cur: list[Tok] = []
    for tok in [*toks, Tok("op", ",", 0)]:
        if tok.text == "," and cur:
            ids = [x.text for x in cur if x.kind == "id"]
            if ids and ids != ["void"]:
                params.append(Param(ids[-1], ids[:-1], any(x.text == "*" for x in cur)))
            cur = []
        elif tok.text != ",":
            cur.append(tok)
    return params


def _return_type(toks: list[Tok], i: int) -> CType:
    """The type words before the name ``toks[i]`` (a ``*`` or a previous declaration
    ends them)."""
    k = i - 1
    words: list[str] = []
    while k >= 0 and toks[k].kind == "id" and toks[k].text not in ("EXPORT_SYMBOL_GPL",):
        words.insert(0, toks[k].text)
        k -= 1
    return ctype_of(words)


def find_file_scope_decl(toks: list[Tok], name: str, path: str) -> RDeclarator | None:
    """A file-scope array declaration ``... name[...] = {...};``, parsed."""
    depth = 0
    start = 0
    for i, t in enumerate(toks):
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
            continue
        elif t.text == ";" and depth == 0:
            start = i + 1
            continue
        if depth == 0 and t.text == name and i + 1 < len(toks) and toks[i + 1].text == "[":
            if not is_decl_prefix(toks[start:i]):
                continue
            semi = i
            d = 0
            while semi < len(toks):
                x = toks[semi].text
                d += x in "({["
                d -= x in ")}]"
                if x == ";" and d == 0:
                    break
                semi += 1
            decl = Parser(toks, path, start, semi + 1).declaration()
            for dd in decl.decls:
                if dd.name == name and dd.dims:
                    return dd
    return None




def file_scope_enums(toks: list[Tok], path: str) -> list[list[tuple[str, Any]]]:
    """The enumerators of every ``enum [tag] { ... }`` at file scope, in order; an enum the
    parser cannot read is left out (its names stay unknown if the function uses them)."""
    out: list[list[tuple[str, Any]]] = []
    for i in file_scope_ids(toks, "enum"):
        j = i + 1
        if j < len(toks) and toks[j].kind == "id":
            j += 1
        if j >= len(toks) or toks[j].text != "{":
            continue
        close = match_bracket(toks, j, "{", "}")
        if close < 0:
            continue
        try:
            out.append(Parser(toks, path, j, close + 1).enum_body())
        except KernelSourceError:
            continue
    return out
