"""Multifd device-state transfer (QEMU 10.0+, [migration].multifd): which devices use it
(x-migration-multifd-transfer), the save threads running alongside RAM's final pass with
the vCPUs paused, the join failing the migration, the load threads vm_start waits for, the
mutation that starts the VM without waiting, and the releases before 10.0 where the key
changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from checker.explore import explore
from checker.lang.layout import View
from checker.trace import render_text
from model.migration.multifd import Thread
from model.migration.multifd_transfer import multifd_transfer
from model.migration.phases import Phase, SrcRun, Status
from model.migration.spec import build_spec
from model.profiles import PROFILES, UNMODELLED_FLAGS, apply_overrides
from model.scenario import scenario_from_dict
from model.spec_table import SpecError

VF0 = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}
VF1 = {"name": "vf1", "features": ["p2p"], "dma_logging": True}


def _data(qemu: Any = "master", multifd: bool = True, props: dict[str, str] | None = None,
          **migration: Any) -> dict[str, Any]:
    vf1 = dict(VF1, properties=props) if props else dict(VF1)
    return {"qemu": qemu, "vm": {"pages": 1}, "devices": [dict(VF0), vf1],
            "migration": {"multifd": multifd, **migration}}


def _scenario(**kw: Any):
    return scenario_from_dict(_data(**kw), Path("specs/t.toml"))


def _graph(spec):
    res = explore(spec, keep_graph=True, check_liveness=False)
    assert res.graph_data is not None
    g = res.graph_data
    return res, g, View(spec.layout, g.rows)


def _edges_of(g, family: str) -> np.ndarray:
    ids = [i for i, f in enumerate(g.families) if f == family]
    return np.isin(g.act, ids)


@pytest.mark.parametrize(("qemu", "multifd", "prop", "expected"), [
    ("master", True, None, (True, True)),
    ("10.0", True, None, (True, True)),
    ("master", False, None, (False, False)),
    ("9.2", True, None, (False, False)),
    ("master", True, "off", (True, False)),
    ("master", True, "on", (True, True)),
])
def test_auto_is_on_exactly_when_multifd_device_state_is_supported(
        qemu: str, multifd: bool, prop: str | None, expected: tuple[bool, ...]) -> None:
    props = {"x-migration-multifd-transfer": prop} if prop else None
    sc = _scenario(qemu=qemu, multifd=multifd, props=props)
    assert multifd_transfer(sc, sc.profile) == expected


def test_the_property_is_refused_before_10_0_and_on_without_multifd() -> None:
    with pytest.raises(SpecError, match=r"does not exist in QEMU 9.2 \(added in 10.0"):
        _scenario(qemu="9.2", props={"x-migration-multifd-transfer": "auto"})
    with pytest.raises(SpecError, match=r"x-migration-multifd-transfer.*needs \[migration\] multifd"):
        _scenario(multifd=False, props={"x-migration-multifd-transfer": "on"})
    with pytest.raises(SpecError, match="multifd"):
        scenario_from_dict({"devices": [VF0], "migration": {"multifd": "yes"}}, Path("t.toml"))


def _stats(data: dict[str, Any]) -> tuple[int, int, int]:
    res = explore(build_spec(scenario_from_dict(data, Path("specs/t.toml"))))
    assert res.outcome == "pass"
    return res.stats.distinct, res.stats.generated, res.stats.depth


@pytest.mark.parametrize("qemu", ["8.2", "9.2"])
def test_before_10_0_multifd_changes_nothing(qemu: str) -> None:
    """The device state stays in the main stream: the same states with and without."""
    assert _stats(_data(qemu=qemu, multifd=True)) == _stats(_data(qemu=qemu, multifd=False))


def test_off_on_every_device_is_the_main_stream_path() -> None:
    off = {"x-migration-multifd-transfer": "off"}
    data = _data(props=off)
    data["devices"][0]["properties"] = off
    assert _stats(data) == _stats(_data(multifd=False))
    assert _stats(_data()) != _stats(_data(multifd=False))


def test_the_save_threads_run_in_rams_final_pass_with_the_vcpus_paused() -> None:
    spec = build_spec(_scenario(cancel=True))
    res, g, v = _graph(spec)
    assert res.outcome == "pass"
    runs = _edges_of(g, "SaveThread")
    src = g.src[runs]
    pcs = set(np.asarray(v.pc)[src].tolist())
    # before the final sync, between it and the remaining pages, at the join: interleaved
    assert {Phase.FINAL_SYNC, Phase.SEND_REST, Phase.SAVE_THREADS_JOIN} <= pcs
    assert set(np.asarray(v.src_run)[src].tolist()) == {SrcRun.FINISH_MIGRATE}
    assert set(np.asarray(v.status)[src].tolist()) == {Status.DEVICE}
    # SaveComplete issues no SET for a multifd device: the thread does
    assert not any(f == "SaveComplete" for f in g.families)
    # every completed migration joined threads that both ran
    done = np.asarray(v.status) == Status.COMPLETED
    for d in (0, 1):
        assert set(np.asarray(v[f"save_thread[{d}]"])[done].tolist()) == {Thread.DONE}


def test_a_failed_save_thread_fails_the_join_and_the_source_recovers() -> None:
    spec = build_spec(_scenario(device_faults=True))
    _, g, v = _graph(spec)
    thr = np.asarray(v["save_thread[0]"]) == Thread.FAILED
    joined = _edges_of(g, "SaveThreadsJoin") & thr[g.src]
    assert joined.any()
    after = g.dst[joined]
    assert set(np.asarray(v.mig_error)[after].tolist()) == {1}
    assert set(np.asarray(v.pc)[after].tolist()) == {Phase.COMPLETE}
    # no completed migration had a failed thread
    done = np.asarray(v.status) == Status.COMPLETED
    assert not (done & thr).any()
    # every failed migration that is over has the source as before (SourceRecovers holds)
    checked = explore(build_spec(scenario_from_dict(
        {**_data(device_faults=True),
         "check": {"invariants": ["SourceRecovers", "LegalDeviceArcs"], "expect": "pass"}},
        Path("specs/t.toml"))))
    assert checked.outcome == "pass"


def test_a_failed_load_thread_keeps_the_destination_from_starting() -> None:
    spec = build_spec(_scenario(device_faults=True))
    _, g, v = _graph(spec)
    failed = np.asarray(v["load_thread[1]"]) == Thread.FAILED
    waited = _edges_of(g, "LoadThreadsWait") & failed[g.src]
    assert waited.any()
    after = g.dst[waited]
    assert set(np.asarray(v.dst_run)[after].tolist()) == {2}  # DstRun.LOAD_FAILED
    assert set(np.asarray(v.pc)[after].tolist()) == {Phase.IDLE}


def test_vm_start_waits_for_the_load_threads() -> None:
    spec = build_spec(_scenario())
    _, g, v = _graph(spec)
    starting = np.isin(np.asarray(v.pc), [Phase.DST_START_PREPARE, Phase.DST_START, Phase.DST_RESUME])
    for d in (0, 1):
        assert set(np.asarray(v[f"load_thread[{d}]"])[starting].tolist()) == {Thread.DONE}


def test_the_mutation_starts_the_vm_before_a_load_thread_ran() -> None:
    sc = scenario_from_dict({**_data(), "mutations": {"no_wait_for_load_threads": True}},
                            Path("specs/t.toml"))
    spec = build_spec(sc)
    res = explore(spec)
    assert res.outcome == "violation"
    assert res.violation is not None and res.violation.name == "DestinationStartsLoaded"
    labels = [s.action or "" for s in res.violation.trace]
    loaded = {lab for lab in labels if lab.startswith("LoadThread(")}
    assert len(loaded) < 2 and labels[-1] == "DstResume"
    text = render_text(res.violation, spec.layout)
    assert "DestinationStartsLoaded reads" in text and "dst_valid" in text


def test_the_multifd_flag_and_the_config_order_may_be_patched() -> None:
    assert "has_multifd_device_state" not in UNMODELLED_FLAGS
    patched = apply_overrides(PROFILES["9.2"], {"has_multifd_device_state": True})
    assert patched.has_multifd_device_state
    sc = _scenario(qemu={"base": "9.2", "has_multifd_device_state": True})
    assert multifd_transfer(sc, sc.profile) == (True, True)
    # The config load ordering is modelled (model/migration/config_load.py): patchable.
    assert not apply_overrides(PROFILES["master"], {"has_load_config_after_iter": False}
                               ).has_load_config_after_iter


def test_two_identical_multifd_devices_reduce_under_symmetry() -> None:
    """The thread variables are per-device control: check --symmetry swaps two identical
    devices only where their threads agree, and keeps the verdict."""
    from checker.symmetry import explore_symmetric

    data = _data(cancel=True)
    data["devices"][1] = dict(VF0, name="vf1")
    data["vm"]["cpu_writes"] = False
    spec = build_spec(scenario_from_dict(data, Path("specs/t.toml")))
    full, reduced = explore(spec), explore_symmetric(spec)
    assert full.outcome == reduced.outcome == "pass"
    assert reduced.stats.depth == full.stats.depth
    assert reduced.stats.distinct < full.stats.distinct
