"""A VM the user paused before the migration ([vm].paused, QEMU): no VM-state callback at
the switchover (vm_stop_force_state), no restart on failure (migration_stop_vm's old
state; PAUSED back from 8.1, a4c6275aa1), and the PRECOPY_FAILED notifier's RUNNING, which
leaves the devices running under the paused VM and loses pages on a second attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from checker.explore import explore
from checker.lang.layout import View
from checker.trace import replay
from model.migration.phases import Phase, SrcRun, Status
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES, PROFILES
from model.scenario import SpecError, scenario_from_dict

VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}


def _spec(qemu: str = "master", check: dict[str, Any] | None = None, **migration: Any):
    dev = dict(VF)
    if qemu == "8.0":
        dev["properties"] = {"enable-migration": "on"}
    data: dict[str, Any] = {"qemu": qemu, "vm": {"pages": 1, "paused": True, "cpu_writes": False},
                            "devices": [dev], "migration": migration}
    if check:
        data["check"] = check
    return build_spec(scenario_from_dict(data, Path("specs/t.toml")))


def _state(spec, labels: list[str]) -> dict[str, Any]:
    return replay(spec, labels)[-1].state(spec.layout)


def test_a_paused_vm_starts_with_its_devices_in_stop() -> None:
    s = _state(_spec(), [])
    assert s["src_run"] == "paused" and s["kstate"] == "STOP" and s["qstate"] == "STOP"


def test_the_switchover_of_a_paused_vm_runs_no_vm_state_callback() -> None:
    res = explore(_spec())
    assert res.outcome == "pass"
    cov = res.family_coverage
    assert "VmStop" not in cov and "VmStopPrepare" not in cov
    assert cov.get("SaveComplete", 0) > 0  # STOP -> STOP_COPY in save_complete


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_cancel_leaves_the_devices_running_under_the_paused_vm(profile: str) -> None:
    res = explore(_spec(profile, cancel=True))
    assert res.violation is not None and res.violation.name == "SourceRecovers"
    last = res.violation.trace[-1].state(_spec(profile, cancel=True).layout)
    assert last["src_run"] == "paused" and last["kstate"] == "RUNNING"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_second_attempt_of_a_paused_vm_loses_a_device_write(profile: str) -> None:
    res = explore(_spec(profile, check={"invariants": ["NoPageLost"]}, cancel=True, attempts=2))
    assert res.violation is not None and res.violation.name == "NoPageLost"
    labels = [s.action or "" for s in res.violation.trace]
    assert "MigrateRetry" in labels
    # the write lands after RAM's last sync and before save_complete stops the device
    write = max(i for i, a in enumerate(labels) if a.startswith("DmaWrite"))
    assert labels.index("FinalSync", labels.index("MigrateRetry")) < write
    assert write < max(i for i, a in enumerate(labels) if a.startswith("SaveComplete"))


def test_a_failure_after_the_switchover_gives_paused_back_from_8_1() -> None:
    for profile, back in (("8.0", SrcRun.POSTMIGRATE), ("8.1", SrcRun.PAUSED),
                          ("master", SrcRun.PAUSED)):
        assert PROFILES[profile].failure_restores_paused is (back == SrcRun.PAUSED)
        spec = _spec(profile, check={"invariants": ["NoPageLost"]}, cancel=True)
        res = explore(spec, keep_graph=True, check_liveness=False)
        assert res.outcome == "pass" and res.graph_data is not None
        v = View(spec.layout, res.graph_data.rows)
        over = (np.asarray(v.status) == Status.CANCELLED) & (np.asarray(v.pc) == Phase.IDLE)
        ends = set(np.asarray(v.src_run)[over].tolist())
        # cancelled before the switchover: still PAUSED; after it: the release's choice
        assert ends == {SrcRun.PAUSED, back}


def test_paused_takes_a_boolean_in_a_qemu_spec() -> None:
    with pytest.raises(SpecError):
        scenario_from_dict({"vm": {"paused": "yes"}, "devices": [VF]}, Path("specs/t.toml"))


def test_the_proposed_fix_keeps_the_devices_stopped_and_no_page_is_lost() -> None:
    """failure_notifier_follows_runstate (no release): STOP under the paused VM, so the
    second attempt's save_setup leaves the device in STOP and nothing DMAs."""
    fixed = {"base": "master", "failure_notifier_follows_runstate": True}
    data: dict[str, Any] = {"qemu": fixed, "vm": {"pages": 1, "paused": True, "cpu_writes": False},
                            "devices": [dict(VF)], "migration": {"cancel": True, "attempts": 2}}
    res = explore(build_spec(scenario_from_dict(data, Path("specs/t.toml"))))
    assert res.outcome == "pass"
    # without a paused VM the flag changes nothing: the notifier's RUNNING is right there
    running = dict(data, vm={"pages": 1, "cpu_writes": False})
    plain = dict(running, qemu="master")
    a = explore(build_spec(scenario_from_dict(running, Path("specs/t.toml"))))
    b = explore(build_spec(scenario_from_dict(plain, Path("specs/t.toml"))))
    assert (a.outcome, a.stats.distinct, a.stats.generated) == (b.outcome, b.stats.distinct,
                                                                 b.stats.generated)
