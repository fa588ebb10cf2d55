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
