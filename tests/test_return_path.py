"""The return path ([migration] return_path): the source's migration_completion() waits for
the destination's SHUT, sent after its vm_start (docs/sources.md#qemu-return-path), and the
split brain a cancel in that wait causes (the finding return-path-cancel-split-brain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.explore import explore
from model.decision.tracking import decide
from model.fsm.kernel.builtin import default_kernel
from model.migration.config import make_config
from model.migration.phases import Phase, PhasePlan
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES
from model.scenario import scenario_from_dict

VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True, "dma_pages": []}
DST = [Phase.LOAD_STATE, Phase.DST_START_PREPARE, Phase.DST_START, Phase.DST_RESUME]
SRC_END = [Phase.COMPLETE, Phase.LOG_STOP, Phase.SAVE_CLEANUP]


def _scenario(qemu: str = "master", check: dict[str, Any] | None = None, **migration: Any):
    data: dict[str, Any] = {"qemu": qemu, "vm": {"pages": 1, "cpu_writes": False},
                            "devices": [VF], "migration": migration}
    if check is not None:
        data["check"] = check
    return scenario_from_dict(data, Path("specs/t.toml"))


def _plan(**migration: Any) -> PhasePlan:
    sc = _scenario(**migration)
    return PhasePlan(make_config(sc, decide(sc), default_kernel()))


def test_with_the_return_path_the_source_completes_after_the_destination_started() -> None:
    order = list(_plan(return_path=True).order)
    assert order[-len(DST) - len(SRC_END):] == [*DST, *SRC_END]
    plain = list(_plan().order)
    assert plain[-len(DST) - len(SRC_END):] == [*SRC_END, *DST]
    plan = _plan(return_path=True)
    assert plan.next[Phase.DST_RESUME] == Phase.COMPLETE
    assert plan.next[Phase.SAVE_CLEANUP] == Phase.IDLE


@pytest.mark.parametrize("profile", PROFILE_NAMES[1:])
def test_a_cancel_in_the_wait_for_shut_splits_the_guest(profile: str) -> None:
    res = explore(build_spec(_scenario(profile, return_path=True, cancel=True)))
    assert res.outcome == "violation"
    v = res.violation
    assert v is not None and v.name == "NoSplitBrain"
    labels = [step.action for step in v.trace]
    # the destination's guest runs first, then the cancel restarts the source's
    assert labels.index("DstResume") < labels.index("Cancel") < labels.index("VmResume")
    assert labels[-1] == "VmResume"
    # without the return path the source completed before the destination started
    assert explore(build_spec(_scenario(profile, cancel=True))).outcome == "pass"


@pytest.mark.parametrize("profile", ["8.1", "8.2", "master"])
def test_a_failed_save_keeps_the_destination_from_loading(profile: str) -> None:
    """A device fault on the source's last SETs (8.1: STOP_COPY -> STOP in save_complete)
    is seen at LOAD_STATE, where the source waits: the destination never starts while the
    source recovers."""
    check = {"invariants": ["NoSplitBrain", "SourceRecovers", "MigrationEnds"]}
    res = explore(build_spec(_scenario(profile, check, return_path=True, device_faults=True)))
    assert res.outcome == "pass", res.violation
    assert res.family_coverage.get("MigrationFails", 0) > 0


def _ends(**migration: Any) -> set[tuple[str, str, str]]:
    """(status, source run state, destination) of every state where the migration ended
    after the destination's load failed."""
    spec = build_spec(_scenario(load_faults=True, **migration))
    res = explore(spec, keep_graph=True)
    assert res.outcome == "pass" and res.graph_data is not None
    assert res.family_coverage.get("LoadStateFails", 0) > 0
    states = [spec.layout.unpack(r) for r in res.graph_data.rows]
    return {(s["status"], s["src_run"], s["dst_run"]) for s in states
            if s["pc"] == "idle" and s["dst_run"] == "load-failed"}


def test_a_load_error_reaches_the_source_only_through_the_return_path() -> None:
    """SHUT carries the stream error qemu_loadvm_state_main() set: with the return path the
    waiting source fails and restarts its VM; without it the source had completed."""
    assert _ends(return_path=True) == {("failed", "running", "load-failed")}
    assert _ends() == {("completed", "postmigrate", "load-failed")}


def test_load_faults_is_a_qemu_key() -> None:
    from model.scenario import SpecError

    data = {"vmm": "cloud-hypervisor", "devices": [{"name": "vf0"}], "migration": {"load_faults": True}}
    with pytest.raises(SpecError, match='only with vmm = "qemu"'):
        scenario_from_dict(data, Path("specs/t.toml"))
