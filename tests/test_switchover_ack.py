"""Switchover-ack ([migration] switchover_ack, 8.1+, 745c42912a), the serialised iterate
before 9.0 (iterate_serialized, 4e1871c450) and the 9.2 load cleanup after vm_start
(load_cleanup_after_vm_start, 4ce5622908): model.migration.switchover and its call sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.explore import explore
from checker.trace import replay
from cli.main import main
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES, PROFILES
from model.scenario import SpecError, scenario_from_dict

VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}
ACK = {"return_path": True, "switchover_ack": True}
# master: SETUP's sync, vf0 to PRE_COPY, the destination to RESUMING: pre-copy (ACTIVE)
TO_ACTIVE = ["MigrateStart", "SetupSync", "SaveSetup(dev=vf0)", "KernelStep(dev=vf0)",
             "LoadSetup(dev=vf0)", "DstKernelStep(dev=vf0)", "DstKernelStep(dev=vf0)",
             "DstKernelStep(dev=vf0)"]


def _data(qemu: Any = "master", devices: list[dict[str, Any]] | None = None,
          migration: dict[str, Any] | None = None, **vm: Any) -> dict[str, Any]:
    return {"qemu": qemu, "vm": {"pages": 1, **vm}, "devices": devices or [VF],
            "migration": ACK if migration is None else migration}


def _spec(*args: Any, **kw: Any):
    return build_spec(scenario_from_dict(_data(*args, **kw), Path("specs/t.toml")))


def _after(spec, labels: list[str]) -> dict[str, Any]:
    return replay(spec, labels)[-1].state(spec.layout)


# ------------------------------------------------------------------------------ spec keys
@pytest.mark.parametrize(("data", "message"), [
    (_data("8.0", migration=ACK), "[migration].switchover_ack: QEMU 8.0 has no switchover-ack"),
    (_data(migration={"switchover_ack": True}), "[migration].switchover_ack: true needs return_path"),
])
def test_capability_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        scenario_from_dict(data, Path("specs/t.toml"))
    assert message in str(info.value)


def test_a_bad_capability_exits_2_in_one_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('name = "bad"\nqemu = "8.0"\n[[devices]]\nname = "vf0"\n'
                 '[migration]\nreturn_path = true\nswitchover_ack = true\n')
    r = CliRunner().invoke(main, ["check", str(f)])
    assert r.exit_code == 2
    assert "switchover_ack" in r.output and "Traceback" not in r.output


def test_the_capabilities_are_qemu_only() -> None:
    data = {"vmm": "cloud-hypervisor", "devices": [{"name": "vf0"}], "migration": ACK}
    with pytest.raises(SpecError, match='only with vmm = "qemu"'):
        scenario_from_dict(data, Path("specs/t.toml"))


def test_off_by_default_adds_no_variable() -> None:
    names = {f.name for f in _spec(migration={}).layout.fields}
    assert not names & {"init_data_sent", "switchover_acked"}
    assert {"init_data_sent", "switchover_acked"} <= {f.name for f in _spec().layout.fields}


# ------------------------------------------------------------------------------ the rule
def test_the_source_waits_for_the_ack() -> None:
    spec = _spec(cpu_writes=False)
    s = _after(spec, TO_ACTIVE)
    assert s["pc"] == "active" and s["switchover_acked"] is False
    with pytest.raises(ValueError, match="Switchover"):
        replay(spec, [*TO_ACTIVE, "Switchover"])
    # the destination's ack needs vf0's DEV_INIT_DATA_SENT first
    with pytest.raises(ValueError, match="SwitchoverAck"):
        replay(spec, [*TO_ACTIVE, "SwitchoverAck"])
    s = _after(spec, [*TO_ACTIVE, "SaveIterate(dev=vf0)", "SwitchoverAck", "Switchover"])
    assert s["init_data_sent"] is True and s["switchover_acked"] is True
    assert s["status"] == "device"


def test_a_device_without_pre_copy_needs_no_ack() -> None:
    """vfio_switchover_ack_needed() is vfio_precopy_supported(): nothing to wait for, and
    the destination acks at once (loadvm_process_command, MIG_CMD_OPEN_RETURN_PATH)."""
    spec = _spec(devices=[dict(VF, features=["p2p"])], cpu_writes=False)
    assert not any(a.family == "SaveIterate" for a in spec.actions)
    labels = ["MigrateStart", "SetupSync", "LoadSetup(dev=vf0)", "DstKernelStep(dev=vf0)",
              "DstKernelStep(dev=vf0)", "DstKernelStep(dev=vf0)", "SwitchoverAck", "Switchover"]
    assert _after(spec, labels)["status"] == "device"


def test_a_paused_vm_does_not_wait() -> None:
    """migration_can_switchover(): no reason to wait when the VM is not running."""
    spec = _spec(paused=True)
    labels = ["MigrateStart", "SetupSync", "LoadSetup(dev=vf0)", "DstKernelStep(dev=vf0)",
              "DstKernelStep(dev=vf0)", "DstKernelStep(dev=vf0)", "Switchover"]
    s = _after(spec, labels)
    assert s["status"] == "device" and s["switchover_acked"] is False
    assert explore(spec).outcome == "pass"


def test_a_retry_waits_for_a_new_ack() -> None:
    spec = _spec(cpu_writes=False, migration=dict(ACK, cancel=True, attempts=2))
    labels = [*TO_ACTIVE, "SaveIterate(dev=vf0)", "SwitchoverAck", "Cancel"]
    # (a cancel with the return path can split the guest: tests/test_return_path.py; the
    # retry itself ends, and never switches over on the first attempt's ack)
    res = explore(spec)
    assert res.violation is not None and res.violation.name == "NoSplitBrain"
    assert "MigrationEnds" not in {v.name for v in res.violations}
    s = _after(spec, labels)
    assert s["switchover_acked"] is True
    # the failure path runs to IDLE; the retry clears what the first attempt acked
    done = [*labels, "LogGlobalStop", "MigrationFailedNotify(dev=vf0)", "KernelStep(dev=vf0)",
            "MigrateRetry"]
    s = _after(spec, done)
    assert s["status"] == "setup" and s["switchover_acked"] is False
    assert s["init_data_sent"] is False


# ------------------------------------------------------------------------------ liveness
@pytest.mark.parametrize("profile", PROFILE_NAMES[1:])
def test_the_serialised_iterate_starves_the_ack_before_9_0(profile: str) -> None:
    res = explore(_spec(profile))
    serialized = PROFILES[profile].iterate_serialized
    assert serialized is (profile in ("8.1", "8.2"))
    if not serialized:
        assert res.outcome == "pass"
        return
    assert res.outcome == "violation"
    v = res.violation
    assert v is not None and v.name == "MigrationEnds" and v.loop_start is not None
    loop = [step.action for step in v.trace[v.loop_start + 1:]]
    # the guest (a vCPU, or the device's own DMA) keeps writing, RAM syncs while it waits,
    # the page goes out again: vf0's iterate is enabled only between a send and the next
    # write, and never taken
    assert "LogSync(awaiting=switchover-ack)" in loop and "SendPage(page=p0)" in loop
    assert {"CpuWrite(page=p0)", "DmaWrite(dev=vf0, page=p0)"} & set(loop)
    assert "SaveIterate(dev=vf0)" not in loop
    # with nobody writing, RAM's bitmap empties and stays so: the ack comes
    quiet = _spec(profile, devices=[dict(VF, dma_pages=[])], cpu_writes=False)
    assert explore(quiet).outcome == "pass"


def test_without_the_capability_the_serialised_iterate_ends() -> None:
    assert explore(_spec("8.2", migration={})).outcome == "pass"


def test_the_serialisation_as_a_patch_of_master() -> None:
    res = explore(_spec({"base": "master", "iterate_serialized": True}))
    assert res.violation is not None and res.violation.name == "MigrationEnds"


# ------------------------------------------------------------------------------ 9.2 load cleanup
def _dst_fd_open_in_vm_start(profile: str) -> tuple[bool, int]:
    spec = _spec(profile, migration={}, cpu_writes=False)
    res = explore(spec, keep_graph=True)
    assert res.outcome == "pass" and res.graph_data is not None
    states = [spec.layout.unpack(r) for r in res.graph_data.rows]
    held = any(s["pc"] == "dst_vm_start" and s["dst_fd"] for s in states)
    return held, res.stats.distinct


def test_from_9_2_the_destination_holds_its_data_fd_through_vm_start() -> None:
    """4ce5622908 moved qemu_loadvm_state_cleanup() (vfio_load_cleanup: close data_fd) into
    migration_incoming_state_destroy(), after vm_start.  No arc of vm_start opens a new data
    FD, so no property can tell: the state count is the same."""
    held91, n91 = _dst_fd_open_in_vm_start("9.1")
    held92, n92 = _dst_fd_open_in_vm_start("9.2")
    assert (held91, held92) == (False, True)
    assert n91 == n92
