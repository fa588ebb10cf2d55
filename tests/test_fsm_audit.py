"""The audit of a step function against the uAPI, and the FSM as a checker spec."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from checker.explore import explore
from model.fsm.audit import (
    PROPERTIES,
    allowed_shortest,
    audit,
    audit_report,
    interior_ok,
    strict_ok,
    strict_shortest,
)
from model.fsm.kernel.builtin import default_kernel, fixed_kernel
from model.fsm.kernel.load import load_kernel
from model.fsm.spec import fsm_spec
from model.fsm.uapi import ALL_FLAGS, FEATURE_SETS, DeviceState, MigFlag, supported_states

FIXTURES = Path(__file__).parent / "fixtures" / "kernel"
S = DeviceState
E, ST, R, SC, RS, RP, PC, PP = (S.ERROR, S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING,
                                S.RUNNING_P2P, S.PRE_COPY, S.PRE_COPY_P2P)
SCO = MigFlag.STOP_COPY
P2P = SCO | MigFlag.P2P
PRE = SCO | MigFlag.PRE_COPY
ALL = ALL_FLAGS


def found(kernel) -> set[tuple[str, int, DeviceState, DeviceState]]:
    return {(v.property, int(v.features), v.current, v.requested) for v in audit(kernel)}


def fixture(name: str):
    return load_kernel(FIXTURES / name)


# ------------------------------------------------------------------ the uAPI's own paths
def test_interior_rule_readings() -> None:
    assert interior_ok((PC, PP, SC))  # two arcs: no interior arc (maintainers' reading)
    assert not strict_ok((PC, PP, SC))  # a saving-group state inside the path
    assert not interior_ok((R, PC, PP, SC))  # interior arc PC -> PP
    assert interior_ok((R, RP, ST, SC)) and strict_ok((R, RP, ST, SC))


def test_allowed_shortest_paths() -> None:
    sp = allowed_shortest(ALL)
    assert sp[(R, SC)] == ((R, RP, ST, SC),)
    assert sp[(PC, SC)] == ((PC, PP, SC),)
    assert set(sp[(R, PP)]) == {(R, PC, PP), (R, RP, PP)}  # a tie
    assert (SC, PC) not in sp or len(sp[(SC, PC)][0]) > 2  # no direct arc
    assert strict_shortest(ALL)[(PC, SC)] == 4  # PC -> R -> RP -> ST -> SC
    assert set(allowed_shortest(PRE)[(R, SC)]) == {(R, ST, SC), (R, PC, SC)}
    assert allowed_shortest(SCO)[(R, RS)] == ((R, ST, RS),)


# ------------------------------------------------------------------ the built-ins
def test_fixed_builtin_has_no_violation() -> None:
    rep = audit_report(fixed_kernel())
    assert rep.violations == []
    kinds = Counter(i.kind for i in rep.info)
    assert kinds["tie"] == 8 and kinds["strict-interior"] == 1 and kinds["comment-arcs"] == 1
    assert kinds["refused"] == 133
    cats = Counter(i.category for i in rep.info if i.kind == "refused")
    assert cats == {"error-current": 28, "unsupported-current": 49, "error-requested": 21,
                    "unsupported-requested": 32, "blocked": 3}
    ties = {(int(i.features), i.current, i.requested) for i in rep.info if i.kind == "tie"}
    assert (int(ALL), R, PP) in ties and (int(PRE), R, SC) in ties
    strict = [i for i in rep.info if i.kind == "strict-interior"]
    assert (strict[0].features, strict[0].current, strict[0].requested) == (ALL, PC, SC)
    note = next(i for i in rep.info if i.kind == "comment-arcs")
    assert note.features == PRE and "RUNNING -> STOP" in note.detail
    assert "STOP -> RUNNING" in note.detail
    assert len(rep.paths) == 4 * 56


def test_released_builtin_never_returns_for_blocked_precopy_requests() -> None:
    assert found(default_kernel()) == {
        ("Terminates", int(PRE), SC, PC),
        ("Terminates", int(ALL), SC, PC),
        ("Terminates", int(ALL), SC, PP),
    }


def test_report_json_shape() -> None:
    js = audit_report(default_kernel()).to_json()
    assert js["version"] == 1 and js["kernel"] == "built-in (Linux 6.2–7.1 vfio_main.c)"
    assert js["feature_sets"][-1] == ["stop-copy", "p2p", "pre-copy"]
    v = js["violations"][0]
    assert set(v) == {"property", "features", "current", "requested", "detail"}
    assert v["property"] in PROPERTIES and v["current"] == "STOP_COPY"
    assert v["features"] == ["stop-copy", "pre-copy"]
    assert {"kind", "features", "current", "requested", "category", "detail"} == set(js["info"][0])


# ------------------------------------------------------------------ fixtures
def test_good_fixtures_have_no_violation() -> None:
    for name in ("v6_2_fixed.c", "vfio_v5_18.c", "vfio_v5_18_rc_first_v2.c",
                 "variant_helper_for_loop.c"):
        assert audit(fixture(name)) == [], name
    rep = audit_report(fixture("vfio_v5_18.c"))
    assert any(i.kind == "coverage" and "not checked: stop-copy+pre-copy" in i.detail
               for i in rep.info)


def test_as_released_fixture() -> None:
    assert found(fixture("v6_2_as_released.c")) == found(default_kernel())


def test_non_direct_arc() -> None:
    assert found(fixture("bad_non_direct_arc.c")) == {
        ("DirectArcs", int(P2P), R, ST),
        ("DirectArcs", int(ALL), R, ST),
        ("DirectArcs", int(ALL), PC, ST),  # PRE_COPY -> RUNNING -> STOP
    }


def test_interior_saving_group() -> None:
    k = fixture("bad_interior_saving_group.c")
    assert found(k) == {
        ("SavingGroupAtEnds", int(ALL), R, SC),  # R -> PC -> PP -> SC
        ("DirectArcs", int(SCO), R, SC),  # skipping PC and PP leaves R -> SC
        ("DirectArcs", int(P2P), R, SC),
    }
    v = next(v for v in audit(k) if v.property == "SavingGroupAtEnds")
    assert "PRE_COPY -> PRE_COPY_P2P" in v.detail
    # PRE_COPY only: R -> PC -> SC has no interior arc, so it is allowed (a tie)
    rep = audit_report(k)
    assert any(i.kind == "tie" and i.features == PRE and i.current == R for i in rep.info)


def test_not_shortest() -> None:
    k = fixture("bad_not_shortest.c")
    assert found(k) == {
        ("Shortest", int(ALL), R, ST),
        ("SavingGroupAtEnds", int(ALL), R, ST),
        ("SavingGroupAtEnds", int(ALL), PC, ST),
        ("DirectArcs", int(PRE), R, ST),  # without P2P: PRE_COPY -> STOP is skipped to
        ("DirectArcs", int(PRE), PC, ST),
    }
    v = next(v for v in audit(k) if v.property == "Shortest")
    assert "takes 4 steps; the shortest allowed path takes 2" in v.detail


def test_refused_midway() -> None:
    k = fixture("bad_refused_midway.c")
    assert found(k) == {
        ("ReachesOrRefuses", int(SCO), R, SC),  # skip loop reaches the ERROR cell at once
        ("ReachesOrRefuses", int(PRE), R, SC),
        ("ReachesOrRefuses", int(P2P), R, SC),
        ("ReachesOrRefuses", int(P2P), RP, SC),
        ("ReachesOrRefuses", int(ALL), R, SC),
        ("ReachesOrRefuses", int(ALL), RP, SC),
    }
    details = {(int(v.features), v.current): v.detail for v in audit(k)}
    assert "left in RUNNING_P2P, not in RUNNING" in details[(int(P2P), R)]
    assert "refused although the uAPI allows" in details[(int(P2P), RP)]


def test_loop_that_never_ends() -> None:
    expected = {
        ("Terminates", int(f), c, n)
        for f in FEATURE_SETS
        for c in supported_states(f)
        for n in supported_states(f)
        if c != n
    }
    assert found(fixture("bad_loop_never_ends.c")) == expected


def test_inverted_loop() -> None:
    k = fixture("bad_loop_inverted.c")
    got = found(k)
    assert {p for p, *_ in got} == {"Terminates", "DirectArcs", "SupportedStatesOnly",
                                    "ReachesOrRefuses"}
    # with every feature all states are supported: the loop never ends
    assert ("Terminates", int(ALL), R, SC) in got
    # without P2P the loop stops on RUNNING_P2P, which the device lacks
    assert ("SupportedStatesOnly", int(SCO), R, ST) in got
    assert ("DirectArcs", int(SCO), R, ST) in got
    assert ("ReachesOrRefuses", int(SCO), R, ST) in got


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.c")
                                        if p.name not in ("bad_missing_table.c",
                                                          "bad_uninterpretable_loop.c")))
def test_every_violation_is_well_formed(name: str) -> None:
    rep = audit_report(fixture(name))
    for v in rep.violations:
        assert v.property in PROPERTIES
        assert v.features in FEATURE_SETS and v.current != v.requested and v.detail


# ------------------------------------------------------------------ the FSM as a spec
def test_spec_with_fixed_kernel_passes_and_reaches_every_state() -> None:
    spec = fsm_spec(fixed_kernel(), ALL)
    r = explore(spec)
    assert r.outcome == "pass", r.violation
    assert r.stats.distinct == 49  # 7 states x (6 targets + NONE), never hung
    assert all(d is not None for d in r.witnesses.values())
    assert set(r.witnesses) == {f"Reachable_{s.name}" for s in supported_states(ALL)}
    assert r.properties["RequestsEnd"] == "ok"
    assert r.coverage["KernelStep(dev=0)"] > 0


def test_spec_shows_the_released_loop_as_a_trace() -> None:
    r = explore(fsm_spec(default_kernel(), PRE))
    assert r.outcome == "violation" and r.violation.name == "StepTerminates"
    steps = [(t.action, t.state(r.layout)) for t in r.violation.trace]
    assert steps[-2][0] == "Request(dev=0, target=PRE_COPY)"
    assert steps[-2][1]["kstate"] == "STOP_COPY"
    assert steps[-1][0] == "KernelStep(dev=0)" and steps[-1][1]["hung"] is True


def test_spec_catches_non_direct_arcs() -> None:
    r = explore(fsm_spec(fixture("bad_non_direct_arc.c"), P2P))
    assert r.outcome == "violation" and r.violation.name == "LegalDeviceArcs"
    last = r.violation.trace[-1].state(r.layout)
    assert last["kstate"] == "STOP"


def test_spec_two_devices() -> None:
    r = explore(fsm_spec(fixed_kernel(), P2P, n_devices=2))
    assert r.outcome == "pass"
    assert r.stats.distinct == 25 * 25
    # weak fairness per device's walk: each device's requests end
    assert r.properties["RequestsEnd(dev=0)"] == "ok" and r.properties["RequestsEnd(dev=1)"] == "ok"


def test_spec_rejects_unknown_feature_set() -> None:
    from model.fsm.uapi import FeatureError

    with pytest.raises(FeatureError, match="does not know the feature set stop-copy\\+pre-copy"):
        fsm_spec(fixture("vfio_v5_18.c"), PRE)
