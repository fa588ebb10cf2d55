"""check --simulate N --seed S: random behaviours, the same properties, the same traces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from checker.examples.transaction_commit import two_phase
from checker.lang.layout import Layout, View
from checker.lang.spec import Action, Spec
from checker.simulation import simulate
from checker.trace import replay
from cli.load import load_target
from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "specs" / "engine"


def _same(a, b) -> bool:
    if (a.violation is None) != (b.violation is None):
        return False
    rows = (lambda r: [s.row for s in r.violation.trace]) if a.violation else (lambda r: [])
    return (a.stats.distinct, a.stats.generated, a.stats.depth, a.coverage) == (
        b.stats.distinct, b.stats.generated, b.stats.depth, b.coverage) and all(
        np.array_equal(x, y) for x, y in zip(rows(a), rows(b), strict=True))


def test_the_same_seed_draws_the_same_behaviours():
    spec = two_phase(4)
    a, b = simulate(spec, walks=300, seed=7), simulate(spec, walks=300, seed=7)
    assert _same(a, b)
    assert not _same(a, simulate(spec, walks=300, seed=8))
    assert a.outcome == "pass" and a.stats.generated > 300 and 1 < a.stats.distinct <= 8832
    assert all(v == "ok" for v in a.properties.values())


@pytest.mark.parametrize(("spec_file", "violated"), [
    ("specs/engine/twophase-broken-invariant.toml", "TCConsistent"),
    ("specs/engine/twophase-broken-deadlock.toml", "Deadlock"),
    ("specs/mutation-no-final-sync.toml", "NoPageLost"),
    ("specs/mutation-skip-p2p-prepare.toml", "P2PQuiescedBeforeStop"),
])
def test_a_violation_is_found_with_a_behaviour_of_the_spec(spec_file, violated):
    spec = load_target(ROOT / spec_file).spec
    r = simulate(spec, walks=500, seed=1)
    v = r.violation
    assert r.outcome == "violation" and v.name == violated
    again = replay(spec, [s.action for s in v.trace[1:]])  # a behaviour, step by step
    assert all(np.array_equal(a.row, b.row) for a, b in zip(again, v.trace, strict=True))
    if v.kind == "invariant":
        assert not spec.invariants[violated](View(spec.layout, v.trace[-1].row.reshape(1, -1))).all()
        assert v.reads


def test_liveness_is_not_checked_and_witnesses_are_reported_when_reached():
    r = simulate(load_target(ENGINE / "twophase-broken-liveness.toml").spec, walks=50, seed=0)
    assert r.outcome == "pass" and r.properties["AllDecide"] == "unchecked"
    r = simulate(load_target(ROOT / "specs" / "dma-logging-vf.toml").spec, walks=200, seed=0)
    assert r.outcome == "pass" and r.properties["MigrationCanComplete"] == "ok"
    assert r.properties["MigrationEnds"] == "unchecked"


def test_depth_and_the_state_constraint_end_a_behaviour():
    lay = Layout()
    lay.var("x", 8)
    inc = Action("Inc", lambda s: s.x < 200, lambda s, t: setattr(t, "x", s.x + 1))
    spec = Spec("count", lay, [{"x": 0}], [inc], invariants={"Small": lambda s: s.x < 250},
                constraint=lambda s: s.x <= 30, check_deadlock=False)
    r = simulate(spec, walks=3, seed=0, depth=10)
    assert r.stats.depth == 10 and r.stats.distinct == 10
    r = simulate(spec, walks=3, seed=0, depth=100)
    assert r.stats.depth == 31 and r.outcome == "pass"  # x = 31 is outside the constraint: not a state


def test_check_simulate_on_the_command_line(tmp_path):
    r = CliRunner().invoke(main, ["check", str(ENGINE / "twophase-3.toml"), str(ENGINE / "tcommit-3.toml"),
                                  "--simulate", "100", "--seed", "3", "--json", "-"])
    assert r.exit_code == 0, r.output  # pins are not compared
    res = json.loads(r.stdout)["results"]
    assert {x["exploration"] for x in res} == {"simulation"}
    assert "Exploration: simulation: 100 behaviours, seed 3, depth 100" in r.stderr
    r = CliRunner().invoke(main, ["check", str(ENGINE / "twophase-broken-liveness.toml"), "--simulate", "10"])
    assert r.exit_code == 1 and "(AllDecide was not checked in this mode)" in r.stdout
    r = CliRunner().invoke(main, ["check", str(ENGINE / "twophase-broken-invariant.toml"), "--simulate", "50",
                                  "-v"])
    assert r.exit_code == 0 and "TCConsistent reads rmState" in r.stdout
