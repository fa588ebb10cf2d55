"""How the control flow reads and writes while it settles: the protocols of what
:class:`model.migration.phases.Control` reads and writes, and one unit's pinned view."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from checker.lang.layout import Next
from checker.lang.ops import Term, is_symbolic


class Reads(Protocol):
    """What :meth:`Control.has_work` reads: variables by layout key (a View, a Next, or
    a :class:`Pinned` stand-in for one unit)."""

    def __getitem__(self, key: str) -> Term: ...


class Writes(Reads, Protocol):
    """What :meth:`Control.step` writes: primed variables by layout key."""

    def __setitem__(self, key: str, value: Term) -> None: ...


class Pinned:
    """``t`` as seen from one concrete unit: ``pc``/``cursor`` (and whatever the skipped
    units assigned) are fixed, the rest reads through; writes stay here."""

    def __init__(self, t: Next, assigned: dict[str, Term]) -> None:
        self.base = t
        self.assigned = assigned

    def __getitem__(self, key: str) -> Term:
        return self.assigned[key] if key in self.assigned else self.base[key]

    def __setitem__(self, key: str, value: Term) -> None:
        self.assigned[key] = value


def const_key(v: Term) -> object:
    """A hashable stand-in for a value written while settling (a constant, or a term)."""
    return ("sym", v.get_id()) if is_symbolic(v) else int(np.asarray(v))
