"""Two per-release rules that no contract property can tell apart, and why: the first dirty
sync at SETUP (ram_init_bitmaps; 8.0 and 10.0+, skipped 8.1-9.2 by ff180c6bd7) and the
same-state SET shortcut (vfio_migration_set_state, 9.1+, 64366eddf1).

The house rule asks for a spec or mutation that violates every rule.  These two cannot:

* The SETUP sync runs while every page is still in the migration bitmap (ram_init_bitmaps
  fills it before log_global_start) and before any page is sent (SendPage waits for
  ACTIVE).  Whatever it reports is already marked; the device-log bits it clears belong to
  pages that are marked.  A behaviour with the sync and the same behaviour without it reach
  the same bitmap and the same stale set, so no page can be lost or gained by it.  Its one
  new path, a failed query during SETUP, is checked in test_qemu_releases.py (the
  migration fails cleanly) and again here under faults.
* A SET to the state QEMU caches takes no arc in the driver's loop (the kernel's
  vfio_mig_get_next_state is never asked for a step), and an injected device fault fails
  an arc, so the ioctl the pre-9.1 releases make cannot change a device or fail.

What the rules do change is the explored behaviour, so the pinned counts below differ with
each rule switched by a patch (qemu = { base, <flag> }), and every property holds on both
sides, with device and query faults too (with dst_vm_start_failure_aborts, the fix of the
one known finding those faults show, dst-validation-fault-runs-unloaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.explore import explore
from model.migration.spec import build_spec
from model.scenario import scenario_from_dict

ONE_VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}
FAULTS = {"device_faults": True, "query_faults": True}
FIXED = {"base": "master", "dst_vm_start_failure_aborts": True}
NO_SETUP_SYNC = {"log_sync_gate": "active-or-device"}  # 8.1-9.2's gate: no VFIO sync in SETUP
SAME_STATE_SET = {"set_state_skips_cached": False}  # before 64366eddf1 (9.1)


def _run(qemu: Any, migration: dict[str, bool] | None = None) -> tuple[str, int, int, int, int]:
    data: dict[str, Any] = {"qemu": qemu, "devices": [dict(ONE_VF)]}
    if migration:
        data["migration"] = migration
    res = explore(build_spec(scenario_from_dict(data, Path("specs/t.toml"))))
    cov = res.family_coverage
    return (str(res.outcome), res.stats.distinct, res.stats.generated, res.stats.depth,
            cov.get("SetupSync", 0) + cov.get("SaveComplete", 0))


# (qemu, migration) -> (outcome, distinct, generated, depth, SetupSync + SaveComplete fired)
CASES: list[tuple[str, Any, dict[str, bool] | None, tuple[str, int, int, int, int]]] = [
    ("master", "master", None, ("pass", 1743, 4379, 29, 16)),
    ("master, no SETUP sync", {"base": "master", **NO_SETUP_SYNC}, None,
     ("pass", 1727, 4331, 28, 0)),
    ("master, same-state SET", {"base": "master", **SAME_STATE_SET}, None,
     ("pass", 1747, 4383, 31, 18)),
    ("9.2 (no SETUP sync)", "9.2", None, ("pass", 1727, 4331, 28, 0)),
    ("10.0 (SETUP sync)", "10.0", None, ("pass", 1743, 4379, 29, 16)),
    ("fixed master, faults", FIXED, FAULTS, ("pass", 10284, 18781, 30, 16)),
    ("fixed master, faults, no SETUP sync", {**FIXED, **NO_SETUP_SYNC}, FAULTS,
     ("pass", 10235, 18653, 29, 0)),
    ("fixed master, faults, same-state SET", {**FIXED, **SAME_STATE_SET}, FAULTS,
     ("pass", 10922, 19419, 32, 18)),
]


@pytest.mark.parametrize(("qemu", "migration", "pinned"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_rule_changes_the_behaviour_and_no_property_tells(
        qemu: Any, migration: dict[str, bool] | None,
        pinned: tuple[str, int, int, int, int]) -> None:
    assert _run(qemu, migration) == pinned


def test_each_rule_changes_the_counts() -> None:
    """The pins above differ pairwise for each rule: the rules are read by the model."""
    by_id = {c[0]: c[3][1:4] for c in CASES}
    assert by_id["master"] != by_id["master, no SETUP sync"]
    assert by_id["master"] != by_id["master, same-state SET"]
    assert by_id["9.2 (no SETUP sync)"] != by_id["10.0 (SETUP sync)"]
    assert by_id["fixed master, faults"] != by_id["fixed master, faults, no SETUP sync"]
    assert by_id["fixed master, faults"] != by_id["fixed master, faults, same-state SET"]
