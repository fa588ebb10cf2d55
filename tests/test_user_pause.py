"""A user's stop and cont of the source VM during pre-copy ([vm].user_pause): the VM-state
callbacks with PAUSED (pre-copy device -> STOP_COPY), a switchover of the paused VM without
callbacks, the cont that leaves QEMU's data_fd out of sync at save_complete, and the
PRECOPY_FAILED notifier running devices under the paused VM after a cancel."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from checker.explore import explore
from checker.trace import replay
from model.migration.phases import Phase, Status
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES
from model.scenario import scenario_from_dict
from model.spec_file import SpecError

VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}


def _spec(qemu: str = "master", **migration: Any):
    data: dict[str, Any] = {"qemu": qemu, "vm": {"pages": 1, "user_pause": True, "cpu_writes": False},
                            "devices": [VF], "migration": migration}
    return build_spec(scenario_from_dict(data, Path("specs/t.toml")))


def _shortest(spec, name: str, bad) -> list[str]:
    """The shortest path to a state where ``bad`` holds (as its counterexample)."""
    probe = dataclasses.replace(spec, invariants={name: lambda s: ~bad(s)}, action_invariants={},
                                liveness=[], witnesses={})
    res = explore(probe)
    assert res.violation is not None, f"no state where {name}"
    return [st.action for st in res.violation.trace[1:]]


def test_the_stop_puts_the_pre_copy_device_in_stop_copy() -> None:
    spec = _spec()
    path = _shortest(spec, "paused", lambda s: (s.upause == 1) & (s.pc == Phase.ACTIVE))
    s = replay(spec, path)[-1].state(spec.layout)
    assert s["src_run"] == "paused" and s["pc"] == "active"
    # prepare (8.2+: PRE_COPY -> PRE_COPY_P2P), then PAUSED in a pre-copy state -> STOP_COPY
    assert s["kstate"] == "STOP_COPY" and s["qstate"] == "STOP_COPY" and s["data_fd"] is True


def test_a_paused_switchover_runs_no_callback_and_completes() -> None:
    spec = _spec()
    path = _shortest(spec, "completed paused",
                     lambda s: (s.status == Status.COMPLETED) & (s.upause == 1))
    after = path[path.index("Switchover"):]
    assert not any(a.startswith(("VmStop", "VmStopPrepare")) for a in after)


def test_a_cont_in_pre_copy_fails_the_migration_at_save_complete() -> None:
    """The inference of docs/sources.md, run on the model: the cont leaves the device RUNNING
    with QEMU's data_fd open; save_complete's STOP -> STOP_COPY opens a new one: out of sync."""
    spec = _spec()
    path = _shortest(spec, "failed", lambda s: s.status == Status.FAILED)
    assert "QmpStop" in path and "QmpCont" in path and path[-1] == "MigrationFails"
    states = replay(spec, path)
    errs = [i for i, st in enumerate(states) if st.state(spec.layout)["mig_error"]]
    first = states[errs[0]]
    assert first.action == "KernelStep(dev=vf0)" and states[errs[0] - 1].action.startswith("SaveComplete")
    # and no attempt completes after a cont
    def cont_never_completes(s):
        return ~((s.status == Status.COMPLETED) & (s.upause == 2))

    res = explore(dataclasses.replace(spec, invariants={"ContNeverCompletes": cont_never_completes},
                                      action_invariants={}, liveness=[], witnesses={}))
    assert res.outcome == "pass"


@pytest.mark.parametrize("profile", PROFILE_NAMES[PROFILE_NAMES.index("8.1"):])
def test_no_page_is_lost_and_the_source_recovers_in_every_release(profile: str) -> None:
    data = {"qemu": profile, "vm": {"pages": 1, "user_pause": True}, "devices": [VF]}
    res = explore(build_spec(scenario_from_dict(data, Path("specs/t.toml"))))
    assert res.outcome == "pass"
    assert res.family_coverage.get("QmpStop", 0) > 0 and res.family_coverage.get("QmpCont", 0) > 0


def test_a_cancel_after_the_stop_runs_the_device_under_the_paused_vm() -> None:
    res = explore(_spec(cancel=True))
    assert res.violation is not None and res.violation.name == "SourceRecovers"
    labels = [s.action for s in res.violation.trace]
    assert "QmpStop" in labels and "Cancel" in labels and "QmpCont" not in labels
    spec = _spec(cancel=True)
    last = replay(spec, labels[1:])[-1].state(spec.layout)
    assert last["src_run"] == "paused" and last["kstate"] == "RUNNING"


def test_user_pause_and_paused_exclude_each_other() -> None:
    data = {"vm": {"pages": 1, "user_pause": True, "paused": True}, "devices": [VF]}
    with pytest.raises(SpecError, match="user_pause"):
        scenario_from_dict(data, Path("specs/t.toml"))


def test_user_pause_with_switchover_ack_is_refused_as_not_modelled() -> None:
    # after a cont the PRE_COPY device runs without its saving stream, and what
    # vfio_save_iterate then reads is not modelled: the model would wait for the ack forever
    data = {"vm": {"pages": 1, "user_pause": True}, "devices": [VF],
            "migration": {"return_path": True, "switchover_ack": True}}
    refused = r"\[migration\]\.switchover_ack: true is not modelled with \[vm\]\.user_pause"
    with pytest.raises(SpecError, match=refused):
        scenario_from_dict(data, Path("specs/t.toml"))
    del data["vm"]["user_pause"]  # type: ignore[attr-defined]
    scenario_from_dict(data, Path("specs/t.toml"))


def test_without_the_key_no_user_action_exists() -> None:
    data = {"vm": {"pages": 1}, "devices": [VF]}
    spec = build_spec(scenario_from_dict(data, Path("specs/t.toml")))
    assert not any(a.family in ("QmpStop", "QmpCont") for a in spec.actions)
    assert "upause" not in {f.name for f in spec.layout.fields}


def test_a_timed_run_names_the_stop_as_not_exercised() -> None:
    from model.concrete.plan import unexercised_keys

    data = {"vm": {"pages": 1, "user_pause": True}, "devices": [VF]}
    assert unexercised_keys(scenario_from_dict(data, Path("specs/t.toml"))) == ["[vm].user_pause"]


def test_the_notifier_patch_is_refused_with_a_user_pause() -> None:
    """The patch's STOP under a paused VM is a static table entry ([vm].paused only)."""
    data = {"qemu": {"base": "master", "failure_notifier_follows_runstate": True},
            "vm": {"pages": 1, "user_pause": True}, "devices": [VF]}
    with pytest.raises(SpecError, match="failure_notifier_follows_runstate"):
        scenario_from_dict(data, Path("specs/t.toml"))
