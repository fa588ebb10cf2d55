"""C's integer types, as far as the step function's arithmetic needs them.

Abstraction: a type is a width, a signedness and C's ``bool`` conversion; pointers, structs
and floating point are not values here (the resolver refuses them), so the interpreter can
compute every expression on Python ints wrapped to the C type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


# =============================================================================== C types
@dataclass(frozen=True)
class CType:
    """An integer type: width and signedness (enough for the arithmetic of this function)."""

    bits: int = 32
    unsigned: bool = False
    boolean: bool = False  # C's bool: any non-zero value converts to 1

    def wrap(self, v: int) -> int:
        if self.boolean:
            return int(v != 0)
        v &= (1 << self.bits) - 1
        if not self.unsigned and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v

    def promoted(self) -> CType:
        return INT if self.bits < 32 else self


INT = CType(32, False)
UINT = CType(32, True)

TYPE_WORDS = {
    "u8": CType(8, True), "s8": CType(8, False), "char": CType(8, False),
    "u16": CType(16, True), "s16": CType(16, False), "short": CType(16, False),
    "u32": UINT, "s32": INT, "int": INT, "bool": CType(8, True, True),
    "_Bool": CType(8, True, True),
    "u64": CType(64, True), "s64": CType(64, False), "long": CType(64, False),
}
QUALIFIERS = {"static", "const", "volatile", "register", "signed", "unsigned", "inline",
               "__always_inline", "noinline", "__maybe_unused", "__read_mostly"}


def ctype_of(words: Sequence[str]) -> CType:
    base: CType | None = None
    for w in words:
        if w in TYPE_WORDS:
            t = TYPE_WORDS[w]
            base = t if base is None or t.bits >= base.bits else base
    if base is None:
        base = INT  # "unsigned", "enum X", "signed" alone are int-sized
    if base.boolean:
        return base
    if "unsigned" in words:
        base = CType(base.bits, True)
    elif "signed" in words:
        base = CType(base.bits, False)
    return base


def common_type(a: CType, b: CType) -> CType:
    """C's usual arithmetic conversions for the integer types used here."""
    a, b = a.promoted(), b.promoted()
    if a.bits != b.bits:
        return a if a.bits > b.bits else b
    return CType(a.bits, a.unsigned or b.unsigned)


