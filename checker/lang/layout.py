"""State layout: named bit fields packed into fixed-width ``uint64`` records.

A spec declares its variables once, as fields of a :class:`Layout`.  The explorer stores
every state as a row of ``layout.words`` unsigned 64-bit words; spec code never sees the
packing.  It reads variables through a :class:`View` (``s.status``, ``s.kstate[1]``) and
writes primed variables through a :class:`Next` (``t.status = ACTIVE``).  Every read
returns a whole column (``numpy.int64``, one entry per state in the batch), so guards,
effects and invariants are written once and evaluated on a whole BFS frontier at a time;
a single state is just a batch of one.

Fields never straddle a word boundary (first-fit packing), so reading a field is one shift
and one mask.  A field may be *indexed* (``count > 1``): ``kstate[0]``, ``kstate[1]`` …
are separate fields that share a name, a width and a value domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

Column = np.ndarray  # int64 column, one entry per state in the batch
Value = int | np.integer | np.ndarray


class LayoutError(ValueError):
    """A spec declared or wrote its variables wrongly (a bug in the spec, not a violation)."""


class Kind(StrEnum):
    """What a field's values are, for every reader of a state (traces, ITF, JSON, reports):
    the packing is the same for all of them, the meaning is not."""

    BOOL = "bool"  # one bit, FALSE/TRUE
    INT = "int"  # a number 0 .. 2**bits - 1
    ENUM = "enum"  # one of the named ``values``
    SET = "set"  # a subset of the named ``flags`` (one bit per name)


@dataclass(frozen=True)
class Field:
    """One variable (or one element of an indexed variable).

    ``kind`` says what its values mean (:class:`Kind`): ``values`` names each value of an
    enumeration (for traces and TypeOK; ``bits`` is derived from it when not given);
    ``flags`` names the bits of a set; a bool is one bit; anything else is an integer,
    whatever its width, so a counter that fits one bit in one configuration reads as a
    number there too.  ``array`` marks a variable declared per index (one element per
    device, say): it is a sequence in ITF and JSON even when this configuration has one
    element, so a variable has one type in every spec.
    """

    name: str
    bits: int
    values: tuple[str, ...] | None = None
    flags: tuple[str, ...] | None = None
    count: int = 1
    doc: str = ""
    kind: Kind = Kind.INT
    array: bool = False

    @property
    def domain_size(self) -> int:
        """Number of legal values (TypeOK): the named values, or all 2**bits."""
        if self.values is not None:
            return len(self.values)
        return 1 << self.bits

    @property
    def is_array(self) -> bool:
        """Whether a state shows this variable as a sequence (ITF, JSON)."""
        return self.array or self.count > 1

    def render(self, value: int) -> Any:
        """A value as its kind reads: a name, a sorted list of flag names, a bool, an int."""
        value = int(value)
        if self.kind is Kind.ENUM:
            assert self.values is not None
            return self.values[value] if 0 <= value < len(self.values) else f"<bad {value}>"
        if self.kind is Kind.SET:
            assert self.flags is not None
            return sorted(n for i, n in enumerate(self.flags) if value >> i & 1)
        if self.kind is Kind.BOOL:
            return bool(value)
        return value

    def encode(self, value: Any) -> int:
        """The packed integer of a rendered value (the inverse of :meth:`render`)."""
        if self.kind is Kind.ENUM and isinstance(value, str):
            assert self.values is not None
            if value not in self.values:
                raise LayoutError(f"variable {self.name!r}: unknown value {value!r}")
            return self.values.index(value)
        if self.kind is Kind.SET and not isinstance(value, int | np.integer):
            assert self.flags is not None
            unknown = [n for n in value if n not in self.flags]
            if unknown:
                raise LayoutError(f"variable {self.name!r}: unknown flag {unknown[0]!r}")
            return sum(1 << self.flags.index(n) for n in set(value))
        return int(value)


@dataclass(frozen=True)
class Derived:
    """A value shown with every state of a trace but not stored: a function of the state
    (as TLC's ALIAS adds expressions to its traces).  It explains a state without adding
    to it: the explorer never sees it.  ``fn`` maps a :class:`View` to a column of
    indices into ``values``; ``after`` names the variable it is shown after.
    """

    name: str
    fn: Callable[[View], Any]
    values: tuple[str, ...]
    after: str | None = None
    doc: str = ""

    def render(self, value: int) -> str:
        return self.values[value] if 0 <= value < len(self.values) else f"<bad {value}>"


@dataclass(frozen=True)
class Slot:
    """Where one scalar field lives in the packed record."""

    key: str  # "status" or "kstate[1]"
    field: Field
    index: int | None
    word: int
    shift: int
    mask: int  # (1 << bits) - 1


@dataclass
class Layout:
    """An ordered set of named fields and their packing into uint64 words."""

    fields: list[Field] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._slots: dict[str, Slot] = {}
        self._by_name: dict[str, Field] = {}
        self._word_fill: list[int] = []
        self.derived: list[Derived] = []
        declared = list(self.fields)
        self.fields = []
        for f in declared:
            self.add(f)

    # ------------------------------------------------------------------ declaring
    def add(self, f: Field) -> Field:
        if not f.name.isidentifier():
            raise LayoutError(f"field name {f.name!r} is not a Python identifier")
        if f.name in self._by_name:
            raise LayoutError(f"field {f.name!r} declared twice")
        if not 1 <= f.bits <= 63:
            raise LayoutError(f"field {f.name!r}: width {f.bits} bits is outside 1..63")
        if f.values is not None and len(f.values) > (1 << f.bits):
            raise LayoutError(f"field {f.name!r}: {len(f.values)} values need more than {f.bits} bits")
        if f.count < 1:
            raise LayoutError(f"field {f.name!r}: count must be >= 1")
        _check_kind(f)
        self.fields.append(f)
        self._by_name[f.name] = f
        for i in range(f.count):
            key = f.name if f.count == 1 else f"{f.name}[{i}]"
            word = next((w for w, used in enumerate(self._word_fill) if used + f.bits <= 64), None)
            if word is None:
                word = len(self._word_fill)
                self._word_fill.append(0)
            shift = self._word_fill[word]
            self._word_fill[word] += f.bits
            self._slots[key] = Slot(key, f, None if f.count == 1 else i, word, shift, (1 << f.bits) - 1)
        return f

    def var(
        self,
        name: str,
        bits: int | None = None,
        *,
        values: Sequence[str] | None = None,
        flags: Sequence[str] | None = None,
        count: int = 1,
        doc: str = "",
        kind: Kind | str | None = None,
        array: bool = False,
    ) -> Field:
        """Declare a variable.  Width comes from ``values``/``flags`` (or a bool's one bit)
        when not given; the kind from ``values`` (enum) or ``flags`` (set), else int
        unless ``kind="bool"`` is given."""
        vals = tuple(values) if values is not None else None
        fl = tuple(flags) if flags is not None else None
        if kind is not None:
            k = Kind(kind)
        else:
            k = Kind.ENUM if vals is not None else Kind.SET if fl is not None else Kind.INT
        if bits is None:
            if vals is not None:
                bits = max(1, (len(vals) - 1).bit_length())
            elif fl is not None:
                bits = max(1, len(fl))
            elif k is Kind.BOOL:
                bits = 1
            else:
                raise LayoutError(f"field {name!r}: give bits, values or flags")
        return self.add(Field(name, bits, vals, fl, count, doc, k, array))

    def flag(self, name: str, *, count: int = 1, doc: str = "", array: bool = False) -> Field:
        """Declare a boolean variable (one bit)."""
        return self.var(name, kind=Kind.BOOL, count=count, doc=doc, array=array)

    def derive(
        self, name: str, fn: Callable[[View], Any], *, values: Sequence[str], after: str | None = None,
        doc: str = "",
    ) -> Derived:
        """Declare a value traces show with each state (see :class:`Derived`)."""
        if name in self._by_name or any(d.name == name for d in self.derived):
            raise LayoutError(f"derived value {name!r}: the name is taken")
        if after is not None:
            self.field(after)
        d = Derived(name, fn, tuple(values), after, doc)
        self.derived.append(d)
        return d

    # ------------------------------------------------------------------ queries
    @property
    def words(self) -> int:
        return max(1, len(self._word_fill))

    @property
    def bits(self) -> int:
        return sum(f.bits * f.count for f in self.fields)

    def slot(self, key: str) -> Slot:
        try:
            return self._slots[key]
        except KeyError:
            raise LayoutError(f"no variable {key!r}; declared: {', '.join(self._slots)}") from None

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise LayoutError(f"no variable {name!r}; declared: {', '.join(self._by_name)}") from None

    @property
    def slots(self) -> list[Slot]:
        return list(self._slots.values())

    # ------------------------------------------------------------------ packing
    def pack(self, assignments: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Pack states given as ``{name: value}`` (indexed fields: a sequence) into rows.

        Missing variables are 0.  Values may be ints or, for enumerations, names, or, for
        sets, sequences of flag names.
        """
        rows = list(assignments)
        out = np.zeros((len(rows), self.words), dtype=np.uint64)
        for r, assignment in enumerate(rows):
            for name, value in assignment.items():
                f = self.field(name)
                items = list(value) if f.count > 1 else [value]
                if len(items) != f.count:
                    raise LayoutError(f"variable {name!r} has {f.count} elements, got {len(items)}")
                for i, item in enumerate(items):
                    if isinstance(item, str) and f.kind is not Kind.ENUM:
                        raise LayoutError(f"variable {name!r}: unknown value {item!r}")
                    v = f.encode(item)
                    key = name if f.count == 1 else f"{name}[{i}]"
                    s = self._slots[key]
                    if v < 0 or v > s.mask:
                        raise LayoutError(f"variable {key!r}: value {v} does not fit {f.bits} bits")
                    out[r, s.word] |= np.uint64(v << s.shift)
        return out

    def column(self, rows: np.ndarray, key: str) -> Column:
        s = self.slot(key)
        # One temporary: shift into a fresh array, mask in place, and read it as int64
        # (a field has at most 63 bits, so the value is the same).
        col: np.ndarray = np.right_shift(rows[:, s.word], np.uint64(s.shift))
        np.bitwise_and(col, np.uint64(s.mask), out=col)
        return col.view(np.int64)

    def unpack(self, row: np.ndarray, *, arrays: bool = False) -> dict[str, Any]:
        """One packed state as ``{name: rendered value}`` (indexed fields become lists).

        With ``arrays``, a variable declared per index is a list even when it has one
        element (the typed form of ITF and JSON, :attr:`Field.is_array`)."""
        row = np.asarray(row, dtype=np.uint64).reshape(1, -1)
        out: dict[str, Any] = {}
        for f in self.fields:
            vals = []
            for i in range(f.count):
                key = f.name if f.count == 1 else f"{f.name}[{i}]"
                vals.append(f.render(int(self.column(row, key)[0])))
            listed = f.count > 1 or (arrays and f.is_array)
            out[f.name] = vals if listed else vals[0]
        return out

    def display(self, row: np.ndarray, *, arrays: bool = False) -> dict[str, Any]:
        """:meth:`unpack` with the :class:`Derived` values, each after its variable."""
        state = self.unpack(row, arrays=arrays)
        if not self.derived:
            return state
        view = View(self, np.asarray(row, dtype=np.uint64).reshape(1, -1))
        extra = {d.name: d.render(int(np.asarray(d.fn(view)).reshape(-1)[0])) for d in self.derived}
        out: dict[str, Any] = {}
        for name, value in state.items():
            out[name] = value
            for d in self.derived:
                if d.after == name:
                    out[d.name] = extra[d.name]
        out.update((d.name, extra[d.name]) for d in self.derived if d.after is None)
        return out

    def raw(self, row: np.ndarray) -> dict[str, int]:
        """One packed state as ``{key: int}`` per scalar slot."""
        row = np.asarray(row, dtype=np.uint64).reshape(1, -1)
        return {s.key: int(self.column(row, s.key)[0]) for s in self.slots}

    def type_ok(self, s: Any) -> Any:
        """Every field holds one of its declared values: the generic half of TypeOK.

        ``s`` is a :class:`View` (or a symbolic view of ``checker.smt``).
        """
        from checker.lang.ops import all_of, true_like

        checks = [
            s[slot.key] < len(slot.field.values)
            for slot in self._slots.values()
            if slot.field.values is not None and len(slot.field.values) < slot.mask + 1
        ]
        if not checks:
            return true_like(s[self.slots[0].key] == 0) if self._slots else True
        return all_of(checks)


def _check_kind(f: Field) -> None:
    """A field's kind agrees with what it declares (names for an enum, flags for a set)."""
    wants = {Kind.ENUM: (f.values is not None, f.flags is None),
             Kind.SET: (f.flags is not None, f.values is None),
             Kind.BOOL: (f.bits == 1, f.values is None and f.flags is None),
             Kind.INT: (True, f.values is None and f.flags is None)}
    ok, nothing_else = wants[f.kind]
    if not (ok and nothing_else):
        raise LayoutError(f"field {f.name!r}: kind {f.kind} does not fit its declaration "
                          "(enum: values, set: flags, bool: one bit, int: neither)")


class _Indexed:
    """``s.kstate`` for an indexed field: ``s.kstate[i]`` is a column."""

    def __init__(self, view: View, f: Field) -> None:
        self._view, self._field = view, f

    def __getitem__(self, i: int) -> Column:
        if not 0 <= i < self._field.count:
            raise LayoutError(f"{self._field.name}[{i}]: index out of range 0..{self._field.count - 1}")
        return self._view[f"{self._field.name}[{i}]"]

    def __len__(self) -> int:
        return self._field.count

    def __iter__(self) -> Iterator[Column]:
        return (self[i] for i in range(self._field.count))


class View:
    """Read-only access to the variables of a batch of states, one column per variable."""

    __slots__ = ("_layout", "rows", "_cache")

    def __init__(self, layout: Layout, rows: np.ndarray) -> None:
        self._layout = layout
        self.rows = rows
        self._cache: dict[str, Column] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def layout(self) -> Layout:
        return self._layout

    def __getitem__(self, key: str) -> Column:
        col = self._cache.get(key)
        if col is None:
            col = self._layout.column(self.rows, key)
            self._cache[key] = col
        return col

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        f = self._layout.field(name)
        if f.count > 1:
            return _Indexed(self, f)
        return self[name]

    def subset(self, idx: np.ndarray) -> View:
        return View(self._layout, self.rows[idx])

    def zeros(self, dtype: Any = bool) -> np.ndarray:
        return np.zeros(len(self.rows), dtype=dtype)

    def ones(self, dtype: Any = bool) -> np.ndarray:
        return np.ones(len(self.rows), dtype=dtype)


class _IndexedNext:
    def __init__(self, nxt: Next, f: Field) -> None:
        self._next, self._field = nxt, f

    def __getitem__(self, i: int) -> Column:
        return self._next[f"{self._field.name}[{i}]"]

    def __setitem__(self, i: int, value: Value) -> None:
        if not 0 <= i < self._field.count:
            raise LayoutError(f"{self._field.name}[{i}]: index out of range 0..{self._field.count - 1}")
        self._next[f"{self._field.name}[{i}]"] = value


class Next:
    """The primed variables of an action's effect.  Unassigned variables keep their value.

    Reading ``t.x`` after assigning it returns the new value (as in a sequence of TLA+
    conjuncts that mention ``x'``), so an effect may build a value in steps.
    """

    __slots__ = ("_view", "assigned")
    _view: View
    assigned: dict[str, Value]

    def __init__(self, view: View) -> None:
        object.__setattr__(self, "_view", view)
        object.__setattr__(self, "assigned", {})

    def __getitem__(self, key: str) -> Column:
        if key in self.assigned:
            v = self.assigned[key]
            return np.broadcast_to(np.asarray(v, dtype=np.int64), (len(self._view),))
        return self._view[key]

    def __setitem__(self, key: str, value: Value) -> None:
        self._view.layout.slot(key)
        self.assigned[key] = value

    def __getattr__(self, name: str) -> Any:
        f = self._view.layout.field(name)
        if f.count > 1:
            return _IndexedNext(self, f)
        return self[name]

    def __setattr__(self, name: str, value: Value) -> None:
        f = self._view.layout.field(name)
        if f.count > 1:
            raise LayoutError(f"{name} is indexed: assign {name}[i]")
        self[name] = value


Overflow = dict[str, tuple[np.ndarray, np.ndarray]]  # key -> (rows out of range, values assigned)


def apply_checked(
    layout: Layout, rows: np.ndarray, assigned: Mapping[str, Value], who: str
) -> tuple[np.ndarray, Overflow]:
    """Successor rows: ``rows`` with the assigned fields replaced, and for each variable
    assigned a value its field cannot hold on some rows, those rows (a mask) and the
    values assigned.  Such a value is stored cut to the field's width: the caller must
    not keep those rows (for the explorer they are a TypeOK violation)."""
    out = rows.copy()
    n = len(rows)
    overflow: Overflow = {}
    for key, value in assigned.items():
        s = layout.slot(key)
        v = np.asarray(value)
        if v.dtype == bool:
            v = v.astype(np.int64)
        word = out[:, s.word]
        clear = np.uint64(~(s.mask << s.shift) & 0xFFFFFFFFFFFFFFFF)
        if v.ndim == 0:
            iv = int(v)
            if (iv < 0 or iv > s.mask) and n:
                overflow[key] = (np.ones(n, dtype=bool), np.full(n, iv, dtype=np.int64))
            word &= clear
            word |= np.uint64((iv & s.mask) << s.shift)
            continue
        if v.shape != (n,):
            raise LayoutError(f"{who} assigns an array of shape {v.shape} to {key}; expected ({n},)")
        v = v.astype(np.int64, copy=False)
        if n and (v.min() < 0 or v.max() > s.mask):
            overflow[key] = ((v < 0) | (v > s.mask), v.copy())
            v = v & s.mask
        word &= clear
        word |= v.astype(np.uint64) << np.uint64(s.shift)
    return out, overflow


def apply(layout: Layout, rows: np.ndarray, assigned: Mapping[str, Value], who: str) -> np.ndarray:
    """Successor rows: ``rows`` with the assigned fields replaced (range-checked: a value
    that does not fit its field raises :class:`LayoutError`)."""
    out, overflow = apply_checked(layout, rows, assigned, who)
    if overflow:
        key, (bad, values) = next(iter(overflow.items()))
        mask = layout.slot(key).mask
        raise LayoutError(f"{who} assigns {int(values[bad][0])} to {key}, which holds 0..{mask}")
    return out
