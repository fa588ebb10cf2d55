"""iommufd's set-tracking failing at log_global_start ([migration].hwpt_tracking_faults):
the container's hwpts rolled back (iommufd_set_dirty_page_tracking, 52ce88229c), RAM's
save_setup failing (9.1+, 3688fec892 / 639ec3fbf9), the source recovering with no hwpt
tracking; the ignored-failure mutation losing a device write."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from checker.explore import explore
from checker.trace import replay
from model.fsm.uapi import DeviceState
from model.migration.phases import Phase
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES
from model.scenario import scenario_from_dict

VF = {"features": ["p2p", "pre-copy"]}
FROM_9_1 = PROFILE_NAMES[PROFILE_NAMES.index("9.1"):]


def _data(qemu: Any = "master", **extra: Any) -> dict[str, Any]:
    return {"qemu": qemu, "vm": {"pages": 1, "cpu_writes": False},
            "host": {"iommu": "iommufd", "iommu_dirty_tracking": True},
            "devices": [dict(VF, name="vf0"), dict(VF, name="vf1")],
            "migration": {"hwpt_tracking_faults": True}, **extra}


def _spec(qemu: Any = "master", **extra: Any):
    return build_spec(scenario_from_dict(_data(qemu, **extra), Path("specs/t.toml")))


def _after(spec, labels: list[str]) -> dict[str, Any]:
    return replay(spec, labels)[-1].state(spec.layout)


def test_the_failed_set_leaves_no_hwpt_tracking_and_fails_ram_setup() -> None:
    spec = _spec()
    s = _after(spec, ["HwptSetDirtyTrackingFails(hwpt=vf0)"])
    assert s["hwpt_tracking"] is False and s["dirty_log"] is False
    assert s["mig_error"] is True and s["pc"] == "save_setup"
    s = _after(spec, ["HwptSetDirtyTrackingFails(hwpt=vf0)", "MigrationFails"])
    assert s["status"] == "failed" and s["kstate"] == ["RUNNING", "RUNNING"]


def test_one_fault_action_for_the_shared_dirty_hwpt() -> None:
    """Both capable VFs join one dirty-capable hwpt (hwpt_dirty_tracking()), so there is
    one hwpt whose SET can fail, named by its first device."""
    spec = _spec()
    faults = [a for a in spec.actions if a.family == "HwptSetDirtyTrackingFails"]
    assert [a.params for a in faults] == [{"hwpt": "vf0"}]


@pytest.mark.parametrize("profile", FROM_9_1)
def test_the_source_recovers_in_every_release_with_hwpt_tracking(profile: str) -> None:
    res = explore(_spec(profile))
    assert res.outcome == "pass"
    assert res.family_coverage.get("HwptSetDirtyTrackingFails", 0) > 0


def test_a_patched_9_0_path_sets_only_the_stream_error() -> None:
    """Before log_global_start returned errors (log_global_start_fails_setup=false) the
    listener only set the stream's error: KVM logs on, save_setup fails on the error."""
    spec = _spec({"base": "master", "log_global_start_fails_setup": False})
    s = _after(spec, ["HwptSetDirtyTrackingFails(hwpt=vf0)"])
    assert s["hwpt_tracking"] is False and s["dirty_log"] is True and s["mig_error"] is True
    assert explore(spec).outcome == "pass"


def test_source_recovers_reads_the_hwpt_flag() -> None:
    """"The source as before" includes no hwpt tracking where the flag exists."""
    from model.decision.tracking import decide
    from model.fsm.kernel.builtin import default_kernel
    from model.migration.config import make_config
    from model.migration.dirty import Trackers
    from model.migration.view import QemuView

    spec = _spec()
    assert "SOURCE_RECOVERS" in {inv.name for inv in spec.invariants}
    sc = scenario_from_dict(_data(), Path("specs/t.toml"))
    cfg = make_config(sc, decide(sc), default_kernel())
    view = QemuView(cfg, Trackers(cfg))
    run = int(DeviceState.RUNNING)
    base = {"src_run": 0, "dirty_log": 0, "kstate[0]": run, "kstate[1]": run}

    class Row(dict):
        """Two states as columns, read by attribute or key as the view reads a View."""

        def __getattr__(self, k: str) -> Any:
            return self[k]

    ok = Row({k: np.array([v, v]) for k, v in base.items()}, hwpt_tracking=np.array([0, 1]))
    assert list(view.source_as_before(ok)) == [True, False]


def test_the_ignored_failure_loses_a_device_write() -> None:
    res = explore(_spec(mutations={"ignore_log_start_failure": True},
                        check={"invariants": ["NoPageLost"]}))
    assert res.violation is not None and res.violation.name == "NoPageLost"
    labels = [s.action for s in res.violation.trace]
    assert labels[1] == "HwptSetDirtyTrackingFails(hwpt=vf0)" and "MigrationFails" not in labels
    assert any(a and a.startswith("DmaWrite") for a in labels)


def test_only_iommufd_hw_tracking_can_fail_to_set() -> None:
    """DMA logging and type1 issue no IOMMU_HWPT_SET_DIRTY_TRACKING: no action, no flag."""
    data = {"qemu": "master", "vm": {"pages": 1, "cpu_writes": False},
            "devices": [dict(VF, name="vf0", dma_logging=True)],
            "migration": {"hwpt_tracking_faults": True}}
    spec = build_spec(scenario_from_dict(data, Path("specs/t.toml")))
    assert not any(a.family == "HwptSetDirtyTrackingFails" for a in spec.actions)
    assert "hwpt_tracking" not in {f.name for f in spec.layout.fields}


# ------------------------------------------------------------------ log_global_stop fails

def _stop_spec(qemu: Any = "master", **migration: Any):
    data = _data(qemu)
    data["devices"] = [dict(VF, name="vf0")]
    data["migration"] = {"cancel": True, "log_stop_faults": True, **migration}
    return build_spec(scenario_from_dict(data, Path("specs/t.toml")))


@pytest.mark.parametrize("profile", FROM_9_1)
def test_a_failed_stop_leaves_the_hwpt_tracking(profile: str) -> None:
    """The rollback of a failed stop turns tracking back on: SourceRecovers sees it."""
    res = explore(_stop_spec(profile))
    assert res.violation is not None and res.violation.name == "SourceRecovers"
    labels = [s.action for s in res.violation.trace]
    assert labels[-1] == "HwptStopTrackingFails" and "Cancel" in labels
    last = res.violation.trace[-1].state(_stop_spec(profile).layout)
    assert last["hwpt_tracking"] is True and last["dirty_log"] is False and last["pc"] == "idle"


def test_the_retry_after_a_failed_stop_loses_no_page() -> None:
    spec = _stop_spec(attempts=2)
    spec = dataclasses.replace(spec, invariants={k: v for k, v in spec.invariants.items()
                                                 if k != "SourceRecovers"})
    res = explore(spec)
    assert res.outcome == "pass"
    assert res.family_coverage.get("HwptStopTrackingFails", 0) > 0
    assert res.family_coverage.get("MigrateRetry", 0) > 0


def test_no_failed_stop_where_qemu_postpones_or_skips_it() -> None:
    """Not after a failed start (global tracking off: ram_save_cleanup calls no stop), not
    under a VM the user paused (memory_global_dirty_log_stop postpones it)."""
    data = _data()
    data["vm"] = {"pages": 1, "cpu_writes": False, "user_pause": True}
    data["migration"] = {"cancel": True, "log_stop_faults": True, "hwpt_tracking_faults": True}
    spec = build_spec(scenario_from_dict(data, Path("specs/t.toml")))
    fam = next(a for a in spec.actions if a.family == "HwptStopTrackingFails")

    def skipped(s):
        return (s.pc == Phase.FAIL_LOG_STOP) & ((s.dirty_log == 0) | (s.upause == 1))

    def bare(inv):
        return dataclasses.replace(spec, invariants={"Probe": inv}, action_invariants={},
                                   liveness=[], witnesses={})

    for kind in (lambda s: s.dirty_log == 0, lambda s: s.upause == 1):
        res = explore(bare(lambda s, kind=kind: ~(skipped(s) & kind(s))))
        assert res.violation is not None  # both kinds of state are reached ...
    res = explore(bare(lambda s: ~(skipped(s) & fam.guard(s))))
    assert res.outcome == "pass"  # ... and the failed stop is offered in none


def test_a_timed_run_names_the_tracking_faults_as_not_exercised() -> None:
    from model.concrete.plan import unexercised_keys

    data = _data()
    data["migration"] = {"hwpt_tracking_faults": True, "log_stop_faults": True}
    assert unexercised_keys(scenario_from_dict(data, Path("specs/t.toml"))) == [
        "[migration].hwpt_tracking_faults", "[migration].log_stop_faults"]
