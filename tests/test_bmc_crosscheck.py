"""Cross-check of the two engines on the shipped specs: z3's bounded model checking and the
explicit BFS explorer give the same verdict on every safety property and the same
shortest counterexample length.

BMC unrolls every action at every step, so it is run where the unrolling stays small: the
bound needed (the shortest counterexample's steps, or the reachable diameter when there
is none) times the number of actions at most :data:`BUDGET`.  Within the bound the
comparison is exact: a violation BMC finds at step k is the shortest, and "no violation
within the diameter" means none in any reachable state.  Deadlock and liveness are the
explicit checker's alone and are left out of both runs.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import pytest
from symbolic_states import raw_state

from checker import smt
from checker.explore import explore
from checker.lang.spec import Spec
from checker.result import Result
from cli.load import load_target

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").rglob("*.toml"))
BUDGET = 200  # unrolled action instances (bound x actions) a cross-check may take

# Specs that must stay within the budget (so the cross-check cannot silently shrink).
SMALL = {
    "tcommit-3", "twophase-3", "twophase-broken-deadlock", "twophase-broken-invariant",
    "twophase-broken-liveness", "auto-without-dirty-tracking-blocked",
    "mutation-allow-viommu-device-tracking-rule", "mutation-no-recovery-on-cancel",
    "two-vfs-8.1-blocked", "two-vfs-without-p2p-blocked", "viommu-10.2-blocks-every-device",
    "viommu-device-tracking-blocked", "ch-viommu-refused", "ch-preserve-source-unmigratable",
}


def safety_only(spec: Spec) -> Spec:
    return dataclasses.replace(spec, liveness={}, witnesses={}, check_deadlock=False)


@cache
def explicit(path: Path) -> tuple[Spec, Result, int]:
    spec = safety_only(load_target(path).spec)
    r = explore(spec, check_liveness=False)
    bound = r.violation.length - 1 if r.violation is not None else r.stats.depth - 1
    return spec, r, bound


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_bmc_and_explicit_search_agree(path):
    spec, r, bound = explicit(path)
    assert r.outcome in ("pass", "violation")
    if bound * len(spec.actions) > BUDGET:
        assert path.stem not in SMALL
        pytest.skip(f"BMC to {bound} steps x {len(spec.actions)} actions exceeds the budget")
    b = smt.bmc(spec, depth=bound, timeout_ms=120_000)
    if r.violation is None:
        # every reachable state lies within `bound` steps: none violates a property
        assert b.holds, b.detail
        return
    v = r.violation
    assert not b.holds
    assert len(b.trace) == v.length, (b.detail, v.length)
    assert v.name in b.detail
    # BMC's trace is a real behaviour: its first state is initial, and each step is an
    # action the spec offers with the successor the explicit engine computes
    rows = [spec.layout.pack([raw_state(spec.layout, state)])[0] for _, state in b.trace]
    assert (rows[0] == spec.init_rows()[0]).all()
    for (label, _), before, after in zip(b.trace[1:], rows[:-1], rows[1:], strict=True):
        succ = {lab: nxt for lab, nxt in spec.successors(before)}
        assert label in succ and (succ[label] == after).all(), label


def test_small_specs_fit_the_budget():
    fits = set()
    for path in SHIPPED:
        spec, _, bound = explicit(path)
        if bound * len(spec.actions) <= BUDGET:
            fits.add(path.stem)
    assert SMALL <= fits
