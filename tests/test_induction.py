"""The induction engine (``checker.smt.Induction``) on the queries the proof tests ask: the
per-page obligation of every page class of every shipped scenario (Inv = Control, the
control invariants and the page strengthening; goal NoPageLost), and the
engine-validation specs' consistency invariants.

Each verdict is checked against the explicit engine: a counterexample to induction is
replayed on numpy (its state before satisfies Inv, the action is enabled there and leads
to the state after, which breaks the conjuncts named), and a query that holds is
consistent with the reachable graph of the per-page instance (no reachable step leaves
Inv; every reachable Inv-state satisfies the goal).

A refuted consecution is also asked again with the first conjunct it names put first:
the engine then reports that conjunct alone, under the same action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from symbolic_states import row_of

from checker import smt
from checker.examples.transaction_commit import tcommit, two_phase
from checker.explore import explore
from checker.lang.layout import View
from checker.lang.spec import Spec, as_mask
from checker.result import StateGraph
from cli.prove import _invariant, _reachable_control
from model.migration.page_proof import obligation, page_classes
from model.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").glob("*.toml"))
TIMEOUT_MS = 120_000


@dataclass
class Case:
    spec: Spec  # its action invariants: the ones the query checks
    inv: Mapping[str, Any]
    goal: Mapping[str, Any]
    graph: StateGraph  # the reachable graph, properties off


def _graph(spec: Spec) -> StateGraph:
    bare = dataclasses.replace(spec, invariants={}, action_invariants={}, liveness={}, witnesses={},
                               check_deadlock=False)
    r = explore(bare, keep_graph=True, check_liveness=False)
    assert r.graph_data is not None
    return r.graph_data


def _engine_cases() -> dict[str, Any]:
    def consistency(spec: Spec) -> Case:
        return Case(spec, {"TCConsistent": spec.invariants["TCConsistent"]}, {}, _graph(spec))

    return {"tcommit-3": lambda: consistency(tcommit(3)), "twophase-3": lambda: consistency(two_phase(3)),
            "twophase-3-commit-too-early": lambda: consistency(two_phase(3, "commit-too-early"))}


def _page_case(path: Path, k: int) -> Case:
    sc = load_scenario(path)
    ob = obligation(sc, page_classes(sc)[k])
    rows, _ = _reachable_control(ob, None)
    inv, goal, act_invs = _invariant(ob, rows)
    spec = dataclasses.replace(ob.spec, action_invariants=act_invs)
    return Case(spec, inv, goal, _graph(spec))


CASE_IDS = list(_engine_cases()) + [
    f"{p.stem}/{k}" for p in SHIPPED for k in range(len(page_classes(load_scenario(p))))
]


@cache
def case(case_id: str) -> Case:
    if case_id in _engine_cases():
        return _engine_cases()[case_id]()
    stem, _, k = case_id.partition("/")
    return _page_case(ROOT / "specs" / f"{stem}.toml", int(k))


def holds_on(spec: Spec, preds: Mapping[str, Any], rows: np.ndarray) -> np.ndarray:
    """Per row: every predicate holds (numpy)."""
    v = View(spec.layout, rows)
    ok = np.ones(len(rows), dtype=bool)
    for p in preds.values():
        ok &= as_mask(p(v), len(rows))
    return ok


def failing(spec: Spec, preds: Mapping[str, Any], row: np.ndarray) -> set[str]:
    return {n for n in preds if not holds_on(spec, {n: preds[n]}, row.reshape(1, -1))[0]}


def assert_genuine(c: Case, q: smt.QueryResult) -> None:
    """A counterexample the explicit engine confirms, state by state."""
    spec, lay = c.spec, c.spec.layout
    assert q.before is not None and q.violated
    before = row_of(lay, q.before)
    if q.query == "initiation":
        assert any((before == r).all() for r in spec.init_rows())
        assert set(q.violated) <= failing(spec, c.inv, before)
        return
    assert failing(spec, c.inv, before) == set(), "the state before must satisfy Inv"
    if q.query == "implication":
        assert set(q.violated) <= failing(spec, c.goal, before)
        return
    assert q.after is not None
    after = row_of(lay, q.after)
    succ = dict(spec.successors(before))
    assert q.action in succ and (succ[q.action] == after).all(), "the step is one the spec takes"
    action = next(a for a in spec.actions if a.label == q.action)
    for name in q.violated:
        if name in c.inv:
            assert name in failing(spec, c.inv, after), name
        else:
            p = spec.action_invariants[name]
            v0, v1 = View(lay, before.reshape(1, -1)), View(lay, after.reshape(1, -1))
            assert not as_mask(p(v0, v1, action), 1)[0], name


def assert_consistent_with_the_graph(c: Case, query: str) -> None:
    """A query that holds says nothing the reachable states contradict."""
    g, spec = c.graph, c.spec
    inv_ok = holds_on(spec, c.inv, g.rows)
    if query == "initiation":
        assert inv_ok[g.init].all()
    elif query == "consecution":
        from_inv = inv_ok[g.src]
        assert inv_ok[g.dst[from_inv]].all()
        for name, p in spec.action_invariants.items():
            for k, a in enumerate(spec.actions):
                sel = from_inv & (g.act == k)
                if sel.any():
                    v0, v1 = View(spec.layout, g.rows[g.src[sel]]), View(spec.layout, g.rows[g.dst[sel]])
                    assert as_mask(p(v0, v1, a), int(sel.sum())).all(), (name, a.label)
    else:
        assert holds_on(spec, c.goal, g.rows[inv_ok]).all()


def conjunct_order(c: Case) -> list[str]:
    return [*c.inv, *c.spec.action_invariants]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_induction_verdicts_agree_with_explicit_search(case_id):
    c = case(case_id)
    spec = c.spec
    engine = smt.Induction(spec, timeout_ms=TIMEOUT_MS)
    results = {"initiation": engine.initiation(c.inv), "consecution": engine.consecution(c.inv)}
    if c.goal:
        results["implication"] = engine.implication(c.inv, c.goal)
    for query, q in results.items():
        if q.holds:
            assert_consistent_with_the_graph(c, query)
        else:
            assert_genuine(c, q)

    q = results["consecution"]
    if not q.holds:
        name = min(q.violated, key=conjunct_order(c).index)
        again = smt.Induction(spec, timeout_ms=TIMEOUT_MS).consecution(c.inv, first=(name,))
        # an earlier action breaking that conjunct would have broken Inv' first
        assert (again.action, again.violated) == (q.action, [name])
        assert_genuine(c, again)
