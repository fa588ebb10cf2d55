"""What a check produces: verdict, statistics, counterexample, coverage, the reachable graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from checker.lang.layout import Layout

if TYPE_CHECKING:
    import networkx as nx


class Outcome(StrEnum):
    """How an exploration ended."""

    PASS = "pass"  # every property held
    VIOLATION = "violation"
    LIMIT = "limit"  # a bound stopped the search before a verdict
    INTERRUPTED = "interrupted"  # Ctrl-C
    ERROR = "error"  # the exploration raised: a bug in the spec or the checker (Result.error)


class PropertyKind(StrEnum):
    """What kind of property a :class:`Violation` broke."""

    INVARIANT = "invariant"
    ACTION_INVARIANT = "action-invariant"
    DEADLOCK = "deadlock"
    LIVENESS = "liveness"
    WITNESS = "witness"


class Limit(StrEnum):
    """What stopped an exploration before a verdict (``Result.limit``, its bound in
    ``Result.limit_bound``); how to word it is the front end's business."""

    STATES = "states"  # distinct states stored
    SECONDS = "seconds"  # wall time
    MEMORY = "memory"  # growth of the resident set since this exploration started, in MB
    INTERRUPTED = "interrupted"  # Ctrl-C (no bound)


@dataclass
class StateGraph:
    """The reachable graph as arrays: states (rows) and edges (src, dst, action id)."""

    rows: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    act: np.ndarray
    labels: list[str]
    families: list[str]  # family of each action id
    init: np.ndarray  # indices of initial states

    @classmethod
    def of_chunks(cls, rows: np.ndarray, edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  labels: list[str], families: list[str], init: np.ndarray) -> StateGraph:
        """The graph from its edges kept chunk by chunk, as (src, dst, action) arrays."""
        def cat(part: int, dtype: type) -> np.ndarray:
            return np.concatenate([e[part] for e in edges]) if edges else np.zeros(0, dtype=dtype)

        return cls(rows=rows, src=cat(0, np.int64), dst=cat(1, np.int64), act=cat(2, np.int32),
                   labels=labels, families=families, init=init)

    def to_networkx(self, layout: Layout) -> nx.MultiDiGraph:
        import networkx as nx

        g = nx.MultiDiGraph()
        for i in range(len(self.rows)):
            g.add_node(i, **{"state": layout.unpack(self.rows[i]), "init": bool(np.isin(i, self.init))})
        for s, d, a in zip(self.src.tolist(), self.dst.tolist(), self.act.tolist(), strict=True):
            g.add_edge(s, d, action=self.labels[a], family=self.families[a])
        return g


@dataclass
class TraceStep:
    """One state of a counterexample and the action that led to it (None for an initial state).

    ``overflow``: variables (by slot key, ``name`` or ``name[i]``) the action assigned a value
    their field cannot hold; ``row`` holds them cut to their width and :meth:`state` shows
    the value assigned (a TypeOK violation's last step)."""

    action: str | None
    row: np.ndarray
    overflow: dict[str, int] | None = None

    def state(self, layout: Layout) -> dict[str, Any]:
        out = layout.unpack(self.row)
        for key, value in (self.overflow or {}).items():
            slot = layout.slot(key)
            # an enumeration shows "<bad N>", a number N itself
            shown = slot.field.render(value) if slot.field.flags is None else value
            if slot.index is None:
                out[slot.field.name] = shown
            else:
                out[slot.field.name][slot.index] = shown
        return out


@dataclass
class Violation:
    """A property that failed, of the :class:`PropertyKind` ``kind``.

    For liveness, ``trace[loop_start:]`` is the cycle the behaviour repeats
    forever (``loop_start == len(trace) - 1`` with ``stutter`` for a behaviour that stops
    in its last state).  ``reads``: the variables (layout keys) the property reads, which
    readers of the trace look at first (:func:`checker.reads.property_reads`).
    """

    name: str
    kind: PropertyKind
    message: str
    trace: list[TraceStep] = field(default_factory=list)
    loop_start: int | None = None
    stutter: bool = False
    reads: tuple[str, ...] = ()

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
    frontier: int = 0  # states waiting to be expanded (rest of this level and the next)
    phase: str = "search"  # "search", then "liveness" (what the progress callback reports)
    # The visited set keys states wider than one word by a 64-bit fingerprint; every
    # match is confirmed against the stored state, so collisions are only counted.
    fingerprints: bool = False
    fingerprint_collisions: int = 0
    # Whether the actions ran as compiled C (checker/compiled.py) and, when a compile was
    # tried and gave none, why (the search then ran on numpy, with the same result).
    compiled: bool = False
    compile_note: str = ""

    @property
    def states_per_second(self) -> float:
        return self.distinct / self.seconds if self.seconds > 0 else 0.0

    @property
    def collision_probability(self) -> float:
        """TLC's calculated ("optimistic") probability that an unverified 64-bit
        fingerprint set would have merged two distinct states of this run:
        ``distinct * (generated - distinct) / 2**64``."""
        return self.distinct * max(0, self.generated - self.distinct) / float(1 << 64)

    def fingerprint_report(self) -> str | None:
        """One line in TLC's manner, or None when the states themselves were the keys."""
        if not self.fingerprints:
            return None
        return (
            f"64-bit fingerprints, each match checked against the stored state: "
            f"{self.fingerprint_collisions} collisions found and kept apart; an unchecked "
            f"fingerprint set (TLC's) would risk one with probability {self.collision_probability:.1e}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "distinct_states": self.distinct,
            "generated_states": self.generated,
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
            "compiled": self.compiled,
        }


@dataclass
class Result:
    """The outcome of one exploration (see :class:`Outcome`).

    ``violations``: every property found violated, each with its own shortest
    counterexample, in the order a breadth-first search meets them (so the first is the
    one a search that stops at the first violation reports: :attr:`violation`)."""

    spec_name: str
    layout: Layout
    outcome: Outcome
    stats: Stats
    violations: list[Violation] = field(default_factory=list)
    coverage: dict[str, int] = field(default_factory=dict)  # action label -> times fired
    family_coverage: dict[str, int] = field(default_factory=dict)
    witnesses: dict[str, int | None] = field(default_factory=dict)  # name -> depth witnessed
    limit: Limit | None = None  # which limit stopped the run
    limit_bound: int | float | None = None  # the bound it reached (None for INTERRUPTED)
    properties: dict[str, str] = field(default_factory=dict)  # name -> "ok"|"violated"|"unchecked"
    graph_data: StateGraph | None = None  # when kept
    error: str | None = None  # Outcome.ERROR: what was raised, one line

    @property
    def violation(self) -> Violation | None:
        """The first violation (None without one)."""
        return self.violations[0] if self.violations else None

    def violation_of(self, name: str) -> Violation | None:
        return next((v for v in self.violations if v.name == name), None)

    @property
    def never_fired(self) -> list[str]:
        return [label for label, n in self.coverage.items() if n == 0]

    def graph(self) -> nx.MultiDiGraph:
        if self.graph_data is None:
            raise ValueError("the graph was not kept: explore(..., keep_graph=True)")
        return self.graph_data.to_networkx(self.layout)
