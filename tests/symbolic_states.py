"""Helpers shared by the tests that compare z3's counterexamples with the explicit engine."""

from __future__ import annotations

from typing import Any

import numpy as np

from checker.lang.layout import Layout


def raw_state(layout: Layout, state: dict[str, Any]) -> dict[str, Any]:
    """A state as z3's counterexamples render it (names, flag-name sets, booleans) back to
    packable values."""

    def one(f: Any, v: Any) -> Any:
        if f.flags is not None:
            return sum(1 << f.flags.index(n) for n in v)
        if isinstance(v, bool):
            return int(v)
        return v

    return {f.name: ([one(f, v) for v in state[f.name]] if f.count > 1 else one(f, state[f.name]))
            for f in layout.fields}


def row_of(layout: Layout, state: dict[str, Any]) -> np.ndarray:
    """The packed row of a rendered state."""
    return layout.pack([raw_state(layout, state)])[0]
