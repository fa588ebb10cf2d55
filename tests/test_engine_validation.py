"""The engine reproduces TLC's published figures for the tlaplus Examples transaction specs.

The figures of the shipped engine specs (specs/engine/*.toml) are read from their
``[check]`` pins; TwoPhase with 5 and 7 resource managers has no spec file (it would make
``check specs`` and the report slow), so TLC's figures for it are written here.
"""

from pathlib import Path

import pytest

from checker.examples.transaction_commit import tcommit, two_phase
from checker.explore import explore
from cli.load import load_target

ENGINE = Path(__file__).resolve().parent.parent / "specs" / "engine"


def pins(name: str):
    return load_target(ENGINE / f"{name}.toml").expectation.pins


def _figures(name: str) -> tuple[int | None, int | None, int | None]:
    p = pins(name)
    return p.distinct_states, p.generated_states, p.depth


@pytest.mark.parametrize(
    ("spec", "figures"),
    [
        (lambda: tcommit(3), lambda: _figures("tcommit-3")),
        (lambda: two_phase(3), lambda: _figures("twophase-3")),
        (lambda: two_phase(5), lambda: (8832, 58146, 17)),  # TLC, TwoPhase with 5 RMs
        (lambda: two_phase(7), lambda: (296448, 2744706, 23)),  # TLC, TwoPhase with 7 RMs
    ],
    ids=["TCommit-3", "TwoPhase-3", "TwoPhase-5", "TwoPhase-7"],
)
def test_tlc_figures(spec, figures):
    r = explore(spec())
    assert r.outcome == "pass", r.violation
    assert (r.stats.distinct, r.stats.generated, r.stats.depth) == figures()


def test_shipped_engine_specs_pin_tlc_figures():
    # TLC's figures for the 3-RM specs (the files' comments cite them too)
    assert _figures("tcommit-3") == (34, 94, 7)
    assert _figures("twophase-3") == (288, 1146, 11)


def test_every_twophase_action_fires():
    r = explore(two_phase(3))
    assert r.never_fired == []
    assert r.family_coverage["TMCommit"] > 0 and r.family_coverage["TMAbort"] > 0


def test_broken_invariant_shortest_counterexample():
    r = explore(two_phase(3, "commit-too-early"))
    v = r.violation
    assert r.outcome == "violation" and v is not None
    assert (v.name, v.kind) == ("TCConsistent", "invariant")
    assert v.length == pins("twophase-broken-invariant").trace_length
    assert v.trace[0].action is None
    assert v.trace[1].action == "TMCommit"
    last = v.trace[-1].state(r.layout)
    assert "aborted" in last["rmState"] and "committed" in last["rmState"]


def test_broken_liveness_is_a_stuttering_lasso():
    r = explore(two_phase(3, "no-abort-message"))
    v = r.violation
    assert v is not None
    assert (v.name, v.kind) == ("AllDecide", "liveness")
    assert v.length == pins("twophase-broken-liveness").trace_length
    assert v.stutter and v.loop_start == 4
    assert "prepared" in v.trace[-1].state(r.layout)["rmState"]


def test_deadlock_shortest_counterexample():
    r = explore(two_phase(3, "lost-commit"))
    v = r.violation
    assert v is not None
    assert (v.name, v.kind) == ("Deadlock", "deadlock")
    assert v.length == pins("twophase-broken-deadlock").trace_length
    assert v.trace[-1].action == "TMForgetCommit"


def test_no_liveness_for_the_real_twophase():
    # TwoPhase itself declares no liveness here; the same property on the real spec
    # holds, so the liveness checker must not report a false violation.
    from checker.examples.transaction_commit import _all  # noqa: F401

    spec = two_phase(3)
    from checker.lang.spec import Eventually

    decided = lambda s: _all(  # noqa: E731
        (s.rmState[r] == 2) | (s.rmState[r] == 3) for r in range(3)
    )
    spec.liveness = {"AllDecide": Eventually(decided, fair=tuple(spec.families()))}
    # RMChooseToAbort is fair here too; still every behaviour decides.
    r = explore(spec)
    assert r.outcome == "pass", r.violation and r.violation.message
    assert r.properties["AllDecide"] == "ok"
