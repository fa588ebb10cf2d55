"""The z3 back end on the engine-validation specs: BMC agrees with the explicit checker,
induction proves what is inductive and returns a counterexample to induction otherwise."""

import pytest

from checker import smt
from checker.examples.transaction_commit import tcommit, two_phase
from checker.explore import explore
from checker.lang.layout import Layout
from checker.lang.spec import Action, Spec


def test_bmc_finds_the_same_shortest_counterexample_as_bfs():
    spec = two_phase(3, "commit-too-early")
    explicit = explore(spec).violation
    symbolic = smt.bmc(spec, depth=6)
    assert not symbolic.holds
    assert len(symbolic.trace) == explicit.length == 4
    # z3 may pick any of the equally short counterexamples: replay it on the explicit
    # successor relation instead of pinning which one.
    layout = spec.layout
    row = spec.init_rows()[0]
    assert layout.unpack(row) == symbolic.trace[0][1]
    for label, state in symbolic.trace[1:]:
        row = next(nxt for lab, nxt in spec.successors(row) if lab == label and layout.unpack(nxt) == state)
    last = symbolic.trace[-1][1]["rmState"]
    assert "aborted" in last and "committed" in last


def test_bmc_holds_up_to_the_diameter():
    spec = tcommit(3)
    depth = explore(spec).stats.depth  # 7 levels: every state within 6 steps
    assert smt.bmc(spec, depth=depth - 1).holds


def test_tcommit_consistency_is_inductive():
    spec = tcommit(3)
    inv = {"TCConsistent": spec.invariants["TCConsistent"]}
    engine = smt.Induction(spec)
    assert engine.initiation(inv).holds
    assert engine.consecution(inv).holds


def test_twophase_consistency_alone_is_not_inductive():
    spec = two_phase(3)
    r = smt.Induction(spec).consecution({"TCConsistent": spec.invariants["TCConsistent"]})
    assert not r.holds and r.action is not None and r.violated == ["TCConsistent"]
    assert r.before is not None and r.after is not None
    # the state after really violates it, the state before really satisfies it
    both = r.after["rmState"]
    assert "aborted" in both and "committed" in both


def test_implication():
    spec = tcommit(2)
    inv = {"AllWorking": lambda s: (s.rmState[0] == 0) & (s.rmState[1] == 0)}
    engine = smt.Induction(spec)
    assert engine.implication(inv, spec.invariants).holds
    r = engine.implication({}, {"AllWorking": inv["AllWorking"]})
    assert not r.holds and r.violated == ["AllWorking"]


def test_numpy_only_specs_are_reported_not_symbolic():
    import numpy as np

    layout = Layout()
    layout.var("x", 2)
    spec = Spec(
        name="np",
        layout=layout,
        init=[{"x": 0}],
        actions=[
            Action("Inc", lambda s: s.x < 3, lambda s, t: setattr(t, "x", np.where(s.x > 1, 0, s.x + 1)))
        ],
        invariants={"Small": lambda s: s.x < 3},
    )
    with pytest.raises(smt.NotSymbolic, match="effect of Inc"):
        smt.bmc(spec, depth=2)
