"""DMA_LOGGING_START failing on one device of several ([migration].log_start_faults): the
rollback of the devices already logging, the migration failing before VFIO's save_setup,
the source recovering; log_global_start's error returned from 9.1 (3688fec892,
639ec3fbf9) and only set on the stream before; the mutation that drops the error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.explore import explore
from checker.trace import replay
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES, PROFILES
from model.scenario import scenario_from_dict

VF = {"features": ["p2p", "pre-copy"], "dma_logging": True}


def _spec(qemu: Any = "master", devices: int = 2, **extra: Any):
    data: dict[str, Any] = {"qemu": qemu, "vm": {"pages": 1, "cpu_writes": False},
                            "devices": [dict(VF, name=f"vf{i}") for i in range(devices)],
                            "migration": {"log_start_faults": True}, **extra}
    return build_spec(scenario_from_dict(data, Path("specs/t.toml")))


def _after(spec, labels: list[str]) -> dict[str, Any]:
    return replay(spec, labels)[-1].state(spec.layout)


@pytest.mark.parametrize("failing", ["vf0", "vf1"])
def test_from_9_1_the_start_fails_ram_setup_before_its_sync(failing: str) -> None:
    spec = _spec()
    s = _after(spec, [f"DmaLoggingStartFails(dev={failing})"])
    # rolled back: no device logs, global dirty tracking off, the SETUP sync skipped
    assert s["dma_logging"] is False and s["dirty_log"] is False
    assert s["mig_error"] is True and s["pc"] == "save_setup"
    s = _after(spec, [f"DmaLoggingStartFails(dev={failing})", "MigrationFails"])
    assert s["status"] == "failed"


def test_before_9_1_only_the_stream_error_is_set() -> None:
    """9.0: vfio_set_migration_error(); KVM's log stays on, save_setup fails on the error."""
    spec = _spec("9.0")
    s = _after(spec, ["DmaLoggingStartFails(dev=vf1)"])
    assert s["dma_logging"] is False and s["dirty_log"] is True
    assert s["mig_error"] is True and s["pc"] == "save_setup"
    # 8.0 runs ram_init_bitmaps' sync after the failed start (its gate is open in SETUP)
    spec80 = build_spec(scenario_from_dict(
        {"qemu": "8.0", "vm": {"pages": 1, "cpu_writes": False},
         "devices": [dict(VF, name="vf0", properties={"enable-migration": "on"})],
         "migration": {"log_start_faults": True}}, Path("specs/t.toml")))
    s = _after(spec80, ["DmaLoggingStartFails(dev=vf0)"])
    assert s["pc"] == "setup_sync" and s["mig_error"] is True


@pytest.mark.parametrize("profile", PROFILE_NAMES[2:])
def test_the_source_recovers_in_every_release(profile: str) -> None:
    """From 8.2 (two devices with migration: 8.0 / 8.1 block a second one)."""
    res = explore(_spec(profile))
    assert res.outcome == "pass"
    assert res.family_coverage.get("DmaLoggingStartFails", 0) > 0
    assert PROFILES[profile].log_global_start_fails_setup is (profile not in ("8.2", "9.0"))


def test_the_end_of_a_failed_start_is_a_running_source() -> None:
    spec = _spec()
    s = _after(spec, ["DmaLoggingStartFails(dev=vf1)", "MigrationFails"])
    res = explore(spec)
    assert res.outcome == "pass"
    assert s["kstate"] == ["RUNNING", "RUNNING"] and s["src_run"] == "running"


def test_the_mutation_loses_a_device_write() -> None:
    res = explore(_spec(mutations={"ignore_log_start_failure": True},
                        check={"invariants": ["NoPageLost"]}))
    assert res.violation is not None and res.violation.name == "NoPageLost"
    labels = [s.action for s in res.violation.trace]
    assert labels[1].startswith("DmaLoggingStartFails") and "MigrationFails" not in labels
    assert any(a and a.startswith("DmaWrite") for a in labels)


def test_only_device_dma_logging_can_fail_to_start() -> None:
    """type1 / all-dirty issue no DMA_LOGGING_START: the key adds nothing there."""
    data = {"qemu": "master", "vm": {"pages": 1, "cpu_writes": False},
            "devices": [{"name": "vf0", "features": ["p2p", "pre-copy"]}],
            "migration": {"log_start_faults": True}}
    spec = build_spec(scenario_from_dict(data, Path("specs/t.toml")))
    assert not any(a.family == "DmaLoggingStartFails" for a in spec.actions)
    assert "dma_logging" not in {f.name for f in spec.layout.fields}
