"""The migration model on z3 terms: the same spec code, evaluated symbolically, agrees with
the explicit checker.

* every guard, effect, invariant, action invariant, witness, end-state and liveness
  predicate of the migration spec evaluates on z3 terms (no ``NotSymbolic``);
* evaluated symbolically and then read at a concrete reachable state, each of them gives
  what the explicit (numpy) evaluation gives at that state;
* bounded model checking (``checker.smt.bmc``) finds a violation exactly where the
  explicit BFS does (the same property, a counterexample of the same length) and none in
  passing specs within a few steps.

The specs are shipped ones (for solving, ones small enough for z3: each tracking method,
with and without a vIOMMU, two P2P devices, device faults, cancel).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import z3

from checker import smt
from checker.explore import explore
from checker.lang.layout import Next, View, apply
from checker.lang.spec import Eventually, LeadsTo, Spec
from checker.result import Result
from model.decision.tracking import decide
from model.fsm.kernel.builtin import default_kernel
from model.migration.config import make_config
from model.migration.phases import Control, Phase, PhasePlan
from model.migration.spec import build_spec
from model.scenario import load_scenario

SPECS = Path(__file__).resolve().parent.parent / "specs"

# Every shipped spec: each piece is evaluated symbolically (cheap: no solving).
EVERY_PIECE = tuple(sorted(p.stem for p in SPECS.glob("*.toml")))



@pytest.fixture(autouse=True, scope="module")
def _own_z3_context():
    """A fresh z3 context for this module, the previous one restored after it.  Which of
    several equally short counterexamples z3 returns depends on every term created in
    its context before; the many terms made here must not change what other test modules
    (e.g. tests/test_smt.py, which pins one counterexample) get from z3."""
    saved = z3.z3._main_ctx
    z3.z3._main_ctx = None  # z3.main_ctx() makes a new one on first use
    yield
    z3.z3._main_ctx = saved


@cache
def spec_of(name: str) -> Spec:
    return build_spec(load_scenario(SPECS / f"{name}.toml"))


@cache
def explicit(name: str) -> Result:
    return explore(spec_of(name))


# ------------------------------------------------------------------------ every piece
@pytest.mark.parametrize("name", EVERY_PIECE)
def test_every_piece_evaluates_symbolically(name: str) -> None:
    spec = spec_of(name)
    enc = smt.Encoding(spec)
    s, t = smt.SymView(spec.layout, "s"), smt.SymView(spec.layout, "t")
    for a in spec.actions:
        assert isinstance(enc.transition(a, s, t), z3.BoolRef), a.label
        for pname, p in spec.action_invariants.items():
            assert isinstance(smt._as_bool(p(s, t, a), pname), z3.BoolRef)
    for pname, p in {**spec.invariants, **spec.witnesses}.items():
        assert isinstance(enc.pred(pname, p, s), z3.BoolRef), pname
    assert spec.end_states is not None
    assert isinstance(enc.pred("end_states", spec.end_states, s), z3.BoolRef)
    for pname, prop in spec.liveness.items():
        preds = [prop.predicate] + ([prop.trigger] if isinstance(prop, LeadsTo) else [])
        assert isinstance(prop, Eventually | LeadsTo)
        for p in preds:
            assert isinstance(enc.pred(pname, p, s), z3.BoolRef)


# ------------------------------------------------------------------------ state by state
class _Symbolic:
    """A spec's pieces as z3 terms over one symbolic state ``s`` (and its successor ``t``
    for action invariants), read at concrete states through a z3 model."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.s = smt.SymView(spec.layout, "s")
        self.t = smt.SymView(spec.layout, "t")
        self.guards = [smt._as_bool(a.guard(self.s), a.label) for a in spec.actions]
        self.effects: list[dict[str, Any]] = []
        for a in spec.actions:
            nxt = smt.SymNext(self.s)
            a.effect(self.s, nxt)
            self.effects.append({k: smt._as_bv(v) for k, v in nxt.assigned.items()})
        preds = {**spec.invariants, **spec.witnesses}
        assert spec.end_states is not None
        preds["<end_states>"] = spec.end_states
        for lname, prop in spec.liveness.items():
            preds[f"<{lname}>"] = prop.predicate
        self.preds = {n: smt._as_bool(p(self.s), n) for n, p in preds.items()}
        self.action_invs = {
            (n, k): smt._as_bool(p(self.s, self.t, a), n)
            for n, p in spec.action_invariants.items()
            for k, a in enumerate(spec.actions)
        }

    def model(self, row: np.ndarray, succ: np.ndarray | None = None) -> z3.ModelRef:
        solver = z3.Solver()
        for view, r in ((self.s, row), (self.t, succ)):
            if r is None:
                continue
            raw = self.spec.layout.raw(r)
            solver.add(*(var == raw[key] for key, var in view.vars.items()))
        assert solver.check() == z3.sat
        return solver.model()


def _reachable(spec: Spec, limit: int) -> np.ndarray:
    """Reachable states (properties dropped, so violating specs are explored whole),
    an evenly spread sample of at most ``limit``."""
    bare = dataclasses.replace(spec, invariants={}, action_invariants={}, liveness={}, witnesses={})
    rows = explore(bare, keep_graph=True, check_liveness=False).graph_data.rows
    if len(rows) > limit:
        rows = rows[np.linspace(0, len(rows) - 1, limit).astype(int)]
    return rows


@pytest.mark.parametrize("name", [
    "iommufd-hw-dirty", "type1-pinned-scope", "all-dirty-10.2-loses-pages", "mutation-skip-p2p-prepare",
    "dst-validation-fault-runs-unloaded", "viommu-iommufd-unmap-query",
    "mutation-allow-viommu-device-tracking", "mutation-no-recovery-on-cancel",
    "log-start-fails-source-recovers", "mutation-ignore-log-start-failure",
    "paused-vm-retry-loses-pages",
])
def test_symbolic_evaluation_matches_explicit_state_by_state(name: str) -> None:
    spec = spec_of(name)
    sym = _Symbolic(spec)
    rows = _reachable(spec, 50)
    view = View(spec.layout, rows)
    n = len(rows)
    exp_guards = [np.broadcast_to(np.asarray(a.guard(view), dtype=bool), (n,)) for a in spec.actions]
    exp_preds = {
        k: np.broadcast_to(np.asarray(p(view), dtype=bool), (n,))
        for k, p in {**spec.invariants, **spec.witnesses, "<end_states>": spec.end_states,
                     **{f"<{ln}>": prop.predicate for ln, prop in spec.liveness.items()}}.items()
    }
    checked = 0
    for i in range(n):
        m = sym.model(rows[i])
        for k, a in enumerate(spec.actions):
            got = z3.is_true(m.eval(sym.guards[k], model_completion=True))
            assert got == bool(exp_guards[k][i]), (a.label, spec.layout.unpack(rows[i]))
            if not got:
                continue
            one = View(spec.layout, rows[i : i + 1])
            nxt = Next(one)
            a.effect(one, nxt)
            succ = apply(spec.layout, one.rows, nxt.assigned, a.label)[0]
            raw_succ = spec.layout.raw(succ)
            for key, term in sym.effects[k].items():
                assert m.eval(term, model_completion=True).as_long() == raw_succ[key], (
                    a.label, key, spec.layout.unpack(rows[i]))
            unassigned = set(raw_succ) - set(sym.effects[k])
            raw_now = spec.layout.raw(rows[i])
            assert all(raw_succ[key] == raw_now[key] for key in unassigned), a.label
            if sym.action_invs:
                m2 = sym.model(rows[i], succ)
                after = View(spec.layout, succ.reshape(1, -1))
                for (pname, kk), term in sym.action_invs.items():
                    if kk != k:
                        continue
                    want = bool(np.asarray(spec.action_invariants[pname](one, after, a)).reshape(-1)[0])
                    assert z3.is_true(m2.eval(term, model_completion=True)) == want, (pname, a.label)
            checked += 1
        for pname, term in sym.preds.items():
            got = z3.is_true(m.eval(term, model_completion=True))
            assert got == bool(exp_preds[pname][i]), (pname, spec.layout.unpack(rows[i]))
    assert checked >= n  # every sampled state has a successor or is an end state


# ------------------------------------------------------------------------ BMC
# (spec, BMC depth for a passing spec).  Each tracking method, a vIOMMU, two P2P devices,
# device faults.  Depths are small because z3's incremental solver (checker.smt.bmc)
# slows down quickly with depth; the explicit checker covers every depth.
PASSING = [
    ("dma-logging-vf", 6),  # device DMA logging
    ("iommufd-hw-dirty", 6),  # iommufd hardware dirty tracking
    ("type1-unpinned", 6),  # type1 container tracking
    ("all-dirty-9.1", 6),  # the all-dirty fallback
    ("viommu-type1-unmap-query", 5),  # vIOMMU map/unmap with unmap-time dirty queries
    ("two-vfs-p2p-8.2", 5),  # two P2P devices
    ("device-faults-source-recovers", 5),  # injected device faults, cancel
]

# Specs with a violation short enough for BMC: (spec, restrict BMC to the violated
# invariant).  The restriction only saves solver time on the longer one: no invariant is
# violated earlier (the explicit BFS would have stopped there), so the violated one's
# shortest counterexample is the overall shortest.
VIOLATING = [
    ("mutation-allow-viommu-device-tracking-rule", False),  # vIOMMU + device logging
    ("mutation-no-recovery-on-cancel", False),  # cancel without recovery
    ("mutation-no-unmap-dirty-query-early", True),  # vIOMMU unmap loses dirty bits
]


@pytest.mark.parametrize(("name", "depth"), PASSING)
def test_bmc_finds_nothing_in_a_passing_spec(name: str, depth: int) -> None:
    result = explicit(name)
    assert result.outcome == "pass" and result.stats.depth > depth + 1  # not vacuous
    assert smt.bmc(spec_of(name), depth=depth).holds


@pytest.mark.parametrize(("name", "restrict"), VIOLATING)
def test_bmc_finds_the_shortest_counterexample_the_explicit_checker_finds(name: str, restrict: bool) -> None:
    spec = spec_of(name)
    violation = explicit(name).violation
    assert violation is not None and violation.kind == "invariant"
    props = {violation.name: spec.invariants[violation.name]} if restrict else None
    steps = violation.length - 1
    r = smt.bmc(spec, props, depth=steps)
    assert not r.holds
    assert r.detail == f"{violation.name} is violated after {steps} steps"
    assert len(r.trace) == violation.length
    # the symbolic counterexample is a real behaviour: replay it on the explicit engine
    _replay(spec, r.trace, violation.name)


def _replay(spec: Spec, trace: list[tuple[str | None, dict[str, Any]]], violated: str) -> None:
    by_label = {a.label: a for a in spec.actions}
    row = spec.layout.pack([_packable(spec, trace[0][1])])
    assert (row == spec.init_rows()).all(axis=1).any()
    for label, state in trace[1:]:
        assert label is not None
        succ = dict(spec.successors(row[0]))
        assert label in succ, (label, list(succ))
        row = succ[label].reshape(1, -1)
        assert (row == spec.layout.pack([_packable(spec, state)])).all()
        assert label in by_label
    ok = np.asarray(spec.invariants[violated](View(spec.layout, row)), dtype=bool).reshape(-1)
    assert not ok[0]


def _packable(spec: Spec, values: dict[str, Any]) -> dict[str, Any]:
    """A trace state (rendered values) as ``Layout.pack`` takes it."""
    out: dict[str, Any] = {}
    for f in spec.layout.fields:
        v = values[f.name]
        items = v if f.count > 1 else [v]
        raw = []
        for x in items:
            if f.flags is not None:
                raw.append(sum(1 << f.flags.index(n) for n in x))
            else:
                raw.append(int(x) if isinstance(x, bool) else x)
        out[f.name] = raw if f.count > 1 else raw[0]
    return out


# ------------------------------------------------------------------------ unit claims
def test_an_action_claiming_the_wrong_unit_is_caught_explicitly() -> None:
    """The phases an action's effect claims to run at (which let the symbolic case split
    leave out the others) are checked on every explicitly explored state."""
    scenario = load_scenario(SPECS / "dma-logging-vf.toml")
    cfg = make_config(scenario, decide(scenario), default_kernel())
    ctl = Control(cfg, PhasePlan(cfg))
    spec = spec_of("dma-logging-vf")
    view = View(spec.layout, spec.init_rows())  # QEMU is idle here
    with pytest.raises(RuntimeError, match="not at phases"):
        ctl.finish(Next(view), view.ones(), phases=(Phase.COMPLETE,))
    with pytest.raises(RuntimeError, match="device 1"):
        ctl.settle(Next(view), view.ones(), dev=1)
    ctl.settle(Next(view), view.ones(), phases=(Phase.IDLE,), dev=0)  # a true claim
