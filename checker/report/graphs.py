"""State graphs for people: the reachable graph, or its quotient over chosen variables.

A small reachable graph is drawn state by state.  A large one is drawn as a *quotient*:
states that agree on the chosen variables (say, a protocol's phase and each process's
state) become one node labelled with those values and the number of states it stands
for; transitions between nodes are merged and labelled with their action families and
counts; transitions that stay inside a node are counted on the node instead of drawn.

Everything here is deterministic: nodes are numbered in BFS order of their first state,
edges are sorted, DOT text is written by hand and graphviz's version banner is removed
from its SVG, so the same graph gives the same bytes on every run.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.lang.layout import Layout, View
from checker.lang.spec import Spec, as_mask
from checker.report.results import format_value, row_values

FULL_GRAPH_MAX_STATES = 60  # draw every state up to this many
PATH_COLOUR = "#c25400"  # the counterexample's nodes and edges (dark orange: red means violating)
QUOTIENT_MAX_NODES = 80  # a quotient with more nodes is coarsened (fewer variables)


class GraphError(Exception):
    """A graph cannot be drawn (graphviz missing, no such variable, ...): one line."""


@dataclass(frozen=True)
class GNode:
    id: int
    lines: tuple[str, ...]  # label, one line per entry
    states: int  # states this node stands for (1 in a full graph)
    init: bool
    bad: int  # states violating an invariant
    ends: int  # states without successors
    internal: int  # transitions inside the node (quotient only; dropped as edges)
    tooltip: str = ""
    steps: tuple[int, ...] = ()  # the counterexample's states (numbered from 1) in this node


@dataclass(frozen=True)
class GEdge:
    src: int
    dst: int
    actions: tuple[tuple[str, int], ...]  # (action or family, transitions), sorted
    on_path: bool = False  # the counterexample takes it


@dataclass
class DrawnGraph:
    name: str
    nodes: list[GNode]
    edges: list[GEdge]
    states: int
    transitions: int
    quotient: tuple[str, ...] | None = None  # the variables of a quotient
    notes: list[str] = field(default_factory=list)
    path: list[int] = field(default_factory=list)  # the node of each counterexample state

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "spec": self.name,
            "quotient": list(self.quotient) if self.quotient is not None else None,
            "states": self.states,
            "transitions": self.transitions,
            "nodes": [
                {
                    "id": n.id,
                    "label": list(n.lines),
                    "states": n.states,
                    "init": n.init,
                    "violating": n.bad,
                    "end_states": n.ends,
                    "internal_transitions": n.internal,
                    "counterexample_states": list(n.steps),
                }
                for n in self.nodes
            ],
            "edges": [
                {"src": e.src, "dst": e.dst, "actions": [{"action": a, "count": c} for a, c in e.actions],
                 "counterexample": e.on_path}
                for e in self.edges
            ],
            "counterexample_path": self.path,
        }


def _bad_mask(spec: Spec | None, layout: Layout, rows: np.ndarray) -> np.ndarray:
    """States violating any invariant (they appear when a graph is drawn without stopping)."""
    bad = np.zeros(len(rows), dtype=bool)
    if spec is None or not len(rows):
        return bad
    v = View(layout, rows)
    for pred in spec.invariants.values():
        bad |= ~as_mask(pred(v), len(rows))
    return bad


def _ends(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    has_succ = np.zeros(n, dtype=bool)
    has_succ[src] = True
    return ~has_succ


def _merge_edges(src: np.ndarray, dst: np.ndarray, names: Sequence[str], act: np.ndarray) -> list[GEdge]:
    """Parallel transitions between two nodes become one edge listing its actions."""
    if len(src) == 0:
        return []
    keys = np.stack([src, dst, act], axis=1).astype(np.int64)
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    merged: dict[tuple[int, int], dict[str, int]] = {}
    for (s, d, a), c in zip(uniq.tolist(), counts.tolist(), strict=True):
        acts = merged.setdefault((s, d), {})
        acts[names[a]] = acts.get(names[a], 0) + c
    return [GEdge(s, d, tuple(sorted(acts.items()))) for (s, d), acts in sorted(merged.items())]


def _fmt(layout: Layout, key: str, raw: int) -> str:
    return format_value(layout.slot(key).field, raw)


def full_graph(
    graph: Any, layout: Layout, *, name: str, spec: Spec | None = None, label_keys: Sequence[str] = ()
) -> DrawnGraph:
    """Every reachable state as a node (labelled by ``label_keys``; the whole state is its
    tooltip), every transition as an edge labelled with its action."""
    rows = graph.rows
    n = len(rows)
    bad = _bad_mask(spec, layout, rows)
    ends = _ends(n, graph.src, graph.dst)
    init = np.zeros(n, dtype=bool)
    init[graph.init] = True
    nodes = []
    for i in range(n):
        vals = row_values(layout, rows[i])
        lines = [f"state {i + 1}"] + [f"{k} = {vals[k]}" for k in label_keys]
        tip = "; ".join(f"{k}={v}" for k, v in vals.items())
        nodes.append(GNode(i, tuple(lines), 1, bool(init[i]), int(bad[i]), int(ends[i]), 0, tip))
    edges = _merge_edges(graph.src, graph.dst, graph.labels, graph.act)
    return DrawnGraph(name, nodes, edges, n, int(len(graph.src)))


def quotient_classes(layout: Layout, rows: np.ndarray, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Class of every state (numbered by first occurrence) and each class's key values."""
    for k in keys:
        layout.slot(k)  # raises for an unknown variable
    if not keys:
        return np.zeros(len(rows), dtype=np.int64), np.zeros((1 if len(rows) else 0, 0), dtype=np.int64)
    cols = np.stack([layout.column(rows, k) for k in keys], axis=1)
    uniq, first, inverse = np.unique(cols, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # class ids in BFS order of their first state
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], uniq[order]


def quotient_graph(
    graph: Any, layout: Layout, keys: Sequence[str], *, name: str, spec: Spec | None = None
) -> DrawnGraph:
    rows = graph.rows
    n = len(rows)
    cls, values = quotient_classes(layout, rows, keys)
    m = len(values)
    bad = _bad_mask(spec, layout, rows)
    ends = _ends(n, graph.src, graph.dst)
    csrc, cdst = cls[graph.src], cls[graph.dst]
    inside = csrc == cdst
    internal = np.bincount(csrc[inside], minlength=m)
    sizes = np.bincount(cls, minlength=m)
    nbad = np.bincount(cls[bad], minlength=m)
    nend = np.bincount(cls[ends], minlength=m)
    is_init = np.zeros(m, dtype=bool)
    is_init[cls[graph.init]] = True
    fam_names = sorted(set(graph.families))
    fam_id = np.array([fam_names.index(f) for f in graph.families], dtype=np.int64)
    act_fam = fam_id[graph.act] if len(graph.act) else np.zeros(0, dtype=np.int64)
    edges = _merge_edges(csrc[~inside], cdst[~inside], fam_names, act_fam[~inside])
    nodes = []
    for c in range(m):
        lines = [f"{k} = {_fmt(layout, k, int(v))}" for k, v in zip(keys, values[c].tolist(), strict=True)]
        lines.append(f"{int(sizes[c]):,} state" + ("s" if sizes[c] != 1 else ""))
        if nbad[c]:
            lines.append(f"{int(nbad[c]):,} violating")
        if nend[c]:
            lines.append(f"{int(nend[c]):,} without successor")
        if internal[c]:
            lines.append(f"{int(internal[c]):,} step" + ("s" if internal[c] != 1 else "") + " inside")
        nodes.append(
            GNode(
                c, tuple(lines), int(sizes[c]), bool(is_init[c]), int(nbad[c]), int(nend[c]), int(internal[c])
            )
        )
    return DrawnGraph(name, nodes, edges, n, int(len(graph.src)), quotient=tuple(keys))


def explore_graph(spec: Spec, *, max_states: int) -> Any:
    """The reachable graph of ``spec`` with its properties switched off, so that a spec
    whose check stops at a violation can still be drawn (violating states included).
    ``None`` when the graph has more than ``max_states`` states."""
    from checker.explore import Limits, explore

    bare = dataclasses.replace(
        spec, invariants={}, action_invariants={}, liveness={}, witnesses={}, check_deadlock=False
    )
    r = explore(bare, keep_graph=True, check_liveness=False, limits=Limits(states=max_states + 1))
    if r.outcome == "interrupted":
        raise KeyboardInterrupt
    if r.outcome != "pass" or r.graph_data is None or len(r.graph_data.rows) > max_states:
        return None
    return r.graph_data


def count_classes(layout: Layout, rows: np.ndarray, keys: Sequence[str]) -> int:
    return len(quotient_classes(layout, rows, keys)[1])


def draw(
    graph: Any,
    layout: Layout,
    *,
    name: str,
    spec: Spec | None = None,
    quotient: Sequence[str] = (),
    full_max: int = FULL_GRAPH_MAX_STATES,
    max_nodes: int = QUOTIENT_MAX_NODES,
    force: str | None = None,
    path: Sequence[np.ndarray] = (),
) -> DrawnGraph:
    """The full graph when small (or ``force="full"``), else a quotient over ``quotient``
    (coarsened by dropping variables from the end until at most ``max_nodes`` nodes).
    ``path``: the states of a counterexample, marked on the drawing (:func:`mark_path`)."""
    n = len(graph.rows)
    if force == "full" or (force is None and n <= full_max):
        g = full_graph(graph, layout, name=name, spec=spec, label_keys=quotient)
        return mark_path(g, _full_nodes(graph.rows, path)) if len(path) else g
    keys = list(quotient)
    dropped: list[str] = []
    while keys and count_classes(layout, graph.rows, keys) > max_nodes:
        dropped.insert(0, keys.pop())
    g = quotient_graph(graph, layout, keys, name=name, spec=spec)
    if dropped:
        g.notes.append(f"Coarsened to at most {max_nodes} nodes: not distinguished by {', '.join(dropped)}.")
    return mark_path(g, _quotient_nodes(layout, graph.rows, keys, path)) if len(path) else g


def _full_nodes(rows: np.ndarray, path: Sequence[np.ndarray]) -> list[int]:
    where = {row.tobytes(): i for i, row in enumerate(np.asarray(rows, dtype=np.uint64))}
    return [where[np.asarray(r, dtype=np.uint64).tobytes()] for r in path]


def _quotient_nodes(
    layout: Layout, rows: np.ndarray, keys: Sequence[str], path: Sequence[np.ndarray]
) -> list[int]:
    """The quotient node of each state of ``path`` (numbered as :func:`quotient_classes`)."""
    _, values = quotient_classes(layout, rows, keys)
    node = {tuple(v): c for c, v in enumerate(values.tolist())}
    trace = np.stack([np.asarray(r, dtype=np.uint64) for r in path])
    cols = [layout.column(trace, k).tolist() for k in keys]
    return [node[tuple(c[i] for c in cols)] for i in range(len(trace))]


def _ranges(steps: Sequence[int]) -> str:
    """``1, 3-5, 9`` for the sorted numbers ``steps``."""
    out: list[str] = []
    start = prev = steps[0]
    for n in [*steps[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def mark_path(g: DrawnGraph, nodes: Sequence[int]) -> DrawnGraph:
    """``g`` with a counterexample marked: ``nodes`` is the node of each of its states in
    order; each node on it is labelled with the state numbers it holds, each edge the path
    takes is flagged."""
    g.path = list(nodes)
    steps: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        steps.setdefault(n, []).append(i + 1)
    g.nodes = [
        dataclasses.replace(n, steps=tuple(steps[n.id]),
                            lines=(*n.lines, f"counterexample: {_ranges(steps[n.id])}"))
        if n.id in steps else n
        for n in g.nodes
    ]
    taken = {(a, b) for a, b in zip(nodes, nodes[1:], strict=False) if a != b}
    g.edges = [dataclasses.replace(e, on_path=True) if (e.src, e.dst) in taken else e for e in g.edges]
    return g


# ----------------------------------------------------------------------------- DOT / SVG


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines: Sequence[str]) -> str:
    """Left-justified multi-line DOT label."""
    body = "".join(line.replace("\\", "\\\\").replace('"', '\\"') + "\\l" for line in lines)
    return '"' + body + '"'


def to_dot(g: DrawnGraph) -> str:
    out = [
        f"digraph {_q(g.name)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, nodesep=0.3, ranksep=0.45];',
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#5b6770", '
        'fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#6c7a86", fontcolor="#333333", arrowsize=0.6];',
    ]
    for n in g.nodes:
        attrs = [f"label={_label(n.lines)}"]
        if n.tooltip:
            attrs.append(f"tooltip={_q(n.tooltip)}")
        if n.bad:
            attrs.append('fillcolor="#fbe0e0"')
        elif n.init:
            attrs.append('fillcolor="#dcebfa"')
        if n.init:
            attrs.append("penwidth=2")
        if n.ends:
            attrs.append("peripheries=2")
        if n.steps:
            attrs.append(f'color="{PATH_COLOUR}", penwidth=3')
        out.append(f"  n{n.id} [{', '.join(attrs)}];")
    for e in g.edges:
        text = [a if c == 1 else f"{a} ×{c:,}" for a, c in e.actions]
        path = f', color="{PATH_COLOUR}", fontcolor="{PATH_COLOUR}", penwidth=2.5' if e.on_path else ""
        out.append(f"  n{e.src} -> n{e.dst} [label={_label(text)}{path}];")
    out.append("}")
    return "\n".join(out) + "\n"


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


_BANNER = re.compile(r"<!-- Generated by graphviz.*?-->\n?", re.S)


def render_svg(dot: str) -> str:
    """``dot -Tsvg``, with the version banner removed so output does not name the build."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError("graphviz's dot is not installed (Debian: apt-get install graphviz)")
    proc = subprocess.run([exe, "-Tsvg"], input=dot.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise GraphError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
    return _BANNER.sub("", proc.stdout.decode())


def legend(g: DrawnGraph) -> str:
    """One sentence on how to read the drawing."""
    what = (
        f"Quotient of {g.states:,} states and {g.transitions:,} transitions over "
        f"{', '.join(g.quotient) if g.quotient else 'nothing (one node)'}: each node stands for the states "
        "with those values; edges list the action families and how many transitions they merge"
        if g.quotient is not None
        else f"All {g.states:,} reachable states and {g.transitions:,} transitions "
        "(hover a state for its variables)"
    )
    path = (
        " Orange border and orange edges: the path of the counterexample (each node names its "
        "states, numbered as in the table above)."
        if g.path
        else ""
    )
    return (
        f"{what}. Blue, thick border: initial; double border: has states without successors; "
        f"red: contains states that violate an invariant.{path}"
    )
