"""What a check produces: verdict, statistics, counterexample, coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.lang.layout import Layout


@dataclass
class TraceStep:
    """One state of a counterexample and the action that led to it (None for an initial state)."""

    action: str | None
    row: np.ndarray

    def state(self, layout: Layout) -> dict[str, Any]:
        return layout.unpack(self.row)


@dataclass
class Violation:
    """A property that failed.

    ``kind`` is one of ``invariant``, ``action-invariant``, ``deadlock``, ``liveness``,
    ``witness``.  For liveness, ``trace[loop_start:]`` is the cycle the behaviour repeats
    forever (``loop_start == len(trace) - 1`` with ``stutter`` for a behaviour that stops
    in its last state).
    """

    name: str
    kind: str
    message: str
    trace: list[TraceStep] = field(default_factory=list)
    loop_start: int | None = None
    stutter: bool = False

    @property
    def length(self) -> int:
        """Number of states in the counterexample (TLC's convention)."""
        return len(self.trace)


@dataclass
class Stats:
    distinct: int = 0
    generated: int = 0
    depth: int = 0
    seconds: float = 0.0
    frontier: int = 0

    @property
    def states_per_second(self) -> float:
        return self.distinct / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "distinct_states": self.distinct,
            "generated_states": self.generated,
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Result:
    """The outcome of one exploration.

    ``outcome``: ``pass`` (every property held), ``violation``, ``limit`` (a bound stopped
    the search before a verdict) or ``interrupted`` (Ctrl-C).
    """

    spec_name: str
    layout: Layout
    outcome: str
    stats: Stats
    violation: Violation | None = None
    coverage: dict[str, int] = field(default_factory=dict)  # action label -> times fired
    family_coverage: dict[str, int] = field(default_factory=dict)
    witnesses: dict[str, int | None] = field(default_factory=dict)  # name -> depth witnessed
    limit: str | None = None  # which limit stopped the run
    properties: dict[str, str] = field(default_factory=dict)  # name -> "ok"|"violated"|"unchecked"
    graph_data: Any = None  # checker.explore.StateGraph when kept

    @property
    def never_fired(self) -> list[str]:
        return [label for label, n in self.coverage.items() if n == 0]

    def graph(self):  # -> networkx.DiGraph
        if self.graph_data is None:
            raise ValueError("the graph was not kept: explore(..., keep_graph=True)")
        return self.graph_data.to_networkx(self.layout)
