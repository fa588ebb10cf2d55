"""checker.trace.replay: a list of action labels back to the states it visits."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from checker.examples.transaction_commit import two_phase
from checker.explore import explore
from checker.trace import ReplayError, replay
from cli.load import load_target

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").rglob("*.toml"))


VIOLATING = [p for p in SHIPPED if load_target(p).expectation.kind == "violation"]


@cache
def counterexample(path: Path):
    spec = load_target(path).spec
    v = explore(spec).violation
    assert v is not None and v.trace
    return spec, v


def test_shipped_counterexamples_cover_every_kind():
    kinds = {counterexample(p)[1].kind for p in VIOLATING}
    assert {"invariant", "deadlock", "liveness"} <= kinds, kinds  # no shipped spec breaks an action invariant


@pytest.mark.parametrize("path", VIOLATING, ids=lambda p: p.stem)
def test_a_shipped_counterexample_replays_to_the_same_states(path):
    spec, v = counterexample(path)
    labels = [s.action for s in v.trace[1:]]
    assert all(label is not None for label in labels)
    trace = replay(spec, labels)
    assert [s.action for s in trace] == [s.action for s in v.trace]
    assert all(np.array_equal(a.row, b.row) for a, b in zip(trace, v.trace, strict=True))


def test_a_label_that_is_not_enabled_is_refused_with_its_step():
    spec = two_phase(3, "commit-too-early")
    v = explore(spec).violation
    labels = [s.action for s in v.trace[1:]]
    # the same action twice in a row: the first took it, so it is no longer enabled
    with pytest.raises(ReplayError, match=rf"step 3 of the trace, {labels[0]}, is not enabled in state 2"):
        replay(spec, [labels[0], labels[0], *labels[1:]])
    with pytest.raises(ReplayError, match=r"step 2 of the trace: no action is labelled 'Nope'"):
        replay(spec, ["Nope"])
    assert len(replay(spec, [])) == 1  # the initial state alone


def _walks(path: Path):
    """``(req_to before, device state after)`` of every kernel step in ``path``'s
    counterexample that ends a SET (its ``req`` goes back to idle)."""
    target = load_target(path)
    spec, v = counterexample(path)
    assert target.migration is not None
    names = [d.name for d in target.migration.scenario.devices]
    states = [spec.layout.display(s.row, arrays=True) for s in v.trace]
    out = []
    for k, step in enumerate(v.trace[1:], start=1):
        action = step.action or ""
        before, after = states[k - 1], states[k]
        if "KernelStep(dev=" not in action or before["req"] == "idle" or after["req"] != "idle":
            continue
        dev = names.index(action.split("dev=")[1].rstrip(")"))
        side = "dst_kstate" if action.startswith("Dst") else "kstate"
        out.append((before["req_to"], after[side][dev]))
    return out


@pytest.mark.parametrize("path", [p for p in VIOLATING if load_target(p).migration is not None],
                         ids=lambda p: p.stem)
def test_req_to_names_the_state_the_set_in_flight_reaches(path):
    """Both VMMs: when a kernel step ends a SET, the device is in the state ``req_to``
    showed for it (a target, a recovery state or RUNNING after a reset)."""
    walks = _walks(path)
    assert all(goal == reached for goal, reached in walks), walks


def test_req_to_is_shown_for_both_vmms():
    qemu = _walks(ROOT / "specs" / "mutation-skip-p2p-prepare.toml")
    ch = _walks(ROOT / "specs" / "cloud-hypervisor" / "ch-late-error-split-brain.toml")
    assert {"STOP", "STOP_COPY"} <= {g for g, _ in qemu}
    assert {"STOP", "STOP_COPY", "RESUMING", "RUNNING"} <= {g for g, _ in ch}
