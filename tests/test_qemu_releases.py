"""QEMU release by release: the ten profiles, a reviewer's patch (flag overrides), and the
per-release paths of the migration model (the SETUP sync, the same-state SET, iommufd hwpts,
the compat container, background snapshots, OnOffAuto properties)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from checker.explore import explore
from model.decision.tracking import Method, decide, hwpt_dirty_tracking
from model.migration.spec import build_spec
from model.profiles import (
    FLAG_NAMES,
    PROFILE_NAMES,
    PROFILES,
    UNMODELLED_FLAGS,
    LogSyncGate,
    OverrideError,
    apply_overrides,
    get_profile,
)
from model.scenario import SpecError, scenario_from_dict

RELEASE_COMMITS = {"8.0": "c1eb2ddf0f", "8.1": "7e5a8bb223", "8.2": "1600b9f46b",
                   "9.0": "c25df57ae8", "9.1": "fd1952d814", "9.2": "ae35f033b8",
                   "10.0": "7c949c53e9", "10.1": "f8b2f64e23", "10.2": "698104725e"}


def sc(data: dict[str, Any]):
    return scenario_from_dict(data, Path("specs/t.toml"))


def test_every_release_is_a_profile_read_at_its_release_commit() -> None:
    assert PROFILE_NAMES == (*RELEASE_COMMITS, "master")
    for name, commit in RELEASE_COMMITS.items():
        assert PROFILES[name].source.startswith(commit), name


def _as_spec_value(value: object) -> object:
    if isinstance(value, frozenset):
        return sorted(value)
    return value.value if hasattr(value, "value") else value


@pytest.mark.parametrize("name", PROFILE_NAMES[1:])
def test_each_release_is_its_predecessor_patched(name: str) -> None:
    """The replace() chain read as patches: the predecessor with the changed flags, written
    as a spec would write them, is the release (every flag type goes through the parser)."""
    before = PROFILES[PROFILE_NAMES[PROFILE_NAMES.index(name) - 1]]
    after = PROFILES[name]
    changed = {f: _as_spec_value(getattr(after, f)) for f in FLAG_NAMES
               if getattr(after, f) != getattr(before, f)}
    patched = apply_overrides(before, changed)
    for f in FLAG_NAMES:
        assert getattr(patched, f) == getattr(after, f), f


def test_a_patch_is_named_after_its_flags_and_only_changes_them() -> None:
    p = apply_overrides(get_profile("master"), {"unsupported_container_counts_as_started": True,
                                                "log_sync_gate": "active-or-device"})
    assert p.name == ("master+unsupported_container_counts_as_started=true"
                      "+log_sync_gate=active-or-device")
    assert "patched" in p.source and str(p).startswith("master+")
    assert p.log_sync_gate is LogSyncGate.ACTIVE_OR_DEVICE
    master = PROFILES["master"]
    diff = [f.name for f in dataclasses.fields(p) if getattr(p, f.name) != getattr(master, f.name)]
    assert diff == ["name", "source", "log_sync_gate", "unsupported_container_counts_as_started"]
    assert apply_overrides(PROFILES["9.1"], {}) is PROFILES["9.1"]


@pytest.mark.parametrize(("flags", "flag", "message"), [
    ({"nope": True}, "nope", 'unknown behaviour flag "nope"; allowed: enable_migration_property'),
    ({"uses_pre_copy": 1}, "uses_pre_copy", "expected true or false, got 1"),
    ({"viommu_rule": "sometimes"}, "viommu_rule", 'expected one of "global", "every-device"'),
    ({"precopy_sync_suppressing_states": ["RUNNING", "RUN"]},
     "precopy_sync_suppressing_states", 'unknown device state "RUN"'),
    ({"precopy_sync_suppressing_states": "RUNNING"}, "precopy_sync_suppressing_states",
     "expected an array of device state names"),
])
def test_override_errors_name_the_flag(flags: dict[str, Any], flag: str, message: str) -> None:
    with pytest.raises(OverrideError) as info:
        apply_overrides(PROFILES["master"], flags)
    assert info.value.flag == flag and message in str(info.value)


def test_a_spec_patch_reaches_the_decision_and_the_model() -> None:
    data = {"qemu": {"base": "master", "unsupported_container_counts_as_started": True},
            "host": {"iommu": "iommufd"},
            "devices": [{"name": "vf0", "properties": {"enable-migration": "on"}}]}
    s = sc(data)
    assert s.qemu == "master" and s.profile.unsupported_container_counts_as_started
    assert decide(s).profile == "master+unsupported_container_counts_as_started=true"
    assert not s.profile.all_dirty_unreachable
    plain = sc({**data, "qemu": "master"})
    assert plain.patched_profile is None and plain.profile.all_dirty_unreachable
    # the patch is validated like a release: iommufd needs has_iommufd_backend
    with pytest.raises(SpecError, match=r"\[host\].iommu: \"iommufd\" needs QEMU 9.0"):
        sc({**data, "qemu": {"base": "master", "has_iommufd_backend": False}})


def test_the_fix_passes_where_the_finding_fails() -> None:
    root = Path(__file__).resolve().parent.parent / "specs"
    from cli.load import load_target

    fix = load_target(root / "fix-all-dirty-started.toml")
    finding = load_target(root / "all-dirty-10.2-loses-pages.toml")
    assert fix.judge(explore(fix.spec)).outcome == "pass"
    assert explore(finding.spec).violation is not None


# --- the first sync at SETUP ----------------------------------------------------------

ONE_VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_setup_sync_reaches_vfio_in_8_0_and_from_10_0(profile: str) -> None:
    """ram_init_bitmaps' first sync: 8.0 (migration_is_setup_or_active), not 8.1-9.2
    (ff180c6bd7), again from 10.0 (0ae05e087f)."""
    qemu_on = profile == "8.0" or PROFILES[profile].log_sync_gate is LogSyncGate.TRACKING_STARTED
    data: dict[str, Any] = {"qemu": profile, "devices": [dict(ONE_VF)]}
    if profile == "8.0":
        data["devices"][0]["properties"] = {"enable-migration": "on"}
    res = explore(build_spec(sc(data)))
    assert (res.family_coverage.get("SetupSync", 0) > 0) is qemu_on
    assert PROFILES[profile].setup_sync_reaches_vfio is qemu_on


def test_a_failed_setup_sync_query_fails_the_migration_cleanly() -> None:
    data = {"qemu": "master", "vm": {"pages": 1, "cpu_writes": False},
            "devices": [dict(ONE_VF, dma_pages=[])], "migration": {"query_faults": True}}
    res = explore(build_spec(sc(data)))
    assert res.outcome == "pass"
    labels = {s.action for s in res.violation.trace} if res.violation else set()
    assert not labels
    # the failure at SETUP is reached: a DirtyQueryFails right after MigrateStart
    from checker.trace import replay

    spec = build_spec(sc(data))
    trace = replay(spec, ["MigrateStart", "DirtyQueryFails", "MigrationFails"])
    assert trace[-1].state(spec.layout)["status"] == "failed"


# --- the same-state SET -----------------------------------------------------------------


@pytest.mark.parametrize(("profile", "ioctl"), [("8.2", True), ("9.0", True), ("9.1", False),
                                                ("master", False)])
def test_a_same_state_set_reaches_the_kernel_before_9_1(profile: str, ioctl: bool) -> None:
    """vfio_save_complete_precopy() asks a PRE_COPY device for STOP_COPY after the VM stop
    already set it: before 9.1 that is a SET ioctl (no arc), from 9.1 none (64366eddf1)."""
    data = {"qemu": profile, "vm": {"pages": 1, "cpu_writes": False},
            "devices": [dict(ONE_VF, dma_pages=[])]}
    res = explore(build_spec(sc(data)))
    assert res.outcome == "pass"
    assert (res.family_coverage.get("SaveComplete", 0) > 0) is ioctl
    assert PROFILES[profile].set_state_skips_cached is not ioctl


# --- iommufd hwpts, the compat container ------------------------------------------------


def _iommufd(*caps: bool | None, host: bool = False, profile: str = "master"):
    devices = [{"name": f"vf{i}", "features": ["p2p"],
                **({} if c is None else {"iommu_dirty_tracking": c})} for i, c in enumerate(caps)]
    return sc({"qemu": profile, "host": {"iommu": "iommufd", "iommu_dirty_tracking": host},
               "devices": devices})


@pytest.mark.parametrize(("caps", "hwpts"), [
    ((True,), (True,)),
    ((False,), (False,)),
    ((True, True), (True, True)),  # the second joins the first's dirty hwpt
    ((True, False), (True, False)),  # refused by the dirty hwpt: a plain one of its own
    ((False, True), (False, False)),  # joins the plain hwpt (any device fits one)
    ((True, False, True), (True, False, False)),  # the newest hwpt is the plain one
    ((None, False), (True, False)),  # None: the host's capability
])
def test_hwpts_follow_realize_order(caps: tuple[bool | None, ...], hwpts: tuple[bool, ...]) -> None:
    assert hwpt_dirty_tracking(_iommufd(*caps, host=True)) == hwpts


def test_hwpts_need_iommufd_hw_dirty_tracking() -> None:
    assert hwpt_dirty_tracking(_iommufd(True, True, profile="9.0")) == (False, False)


def test_only_dirty_capable_hwpts_record_dma() -> None:
    s = _iommufd(True, False)
    d = decide(s)
    assert d.method is Method.IOMMUFD_HW and d.hwpt_dirty == (True, False)
    assert any("mixes hwpts" in n for n in d.notes)


def test_device_iommu_capability_is_an_iommufd_setting() -> None:
    with pytest.raises(SpecError, match=r"\[devices.0\].iommu_dirty_tracking: needs \[host\].iommu"):
        sc({"devices": [{"name": "a", "iommu_dirty_tracking": True}]})
    with pytest.raises(SpecError, match="behind a vIOMMU each get their own container"):
        sc({"vm": {"viommu": True}, "host": {"iommu": "iommufd"},
            "devices": [{"name": "a", "iommu_dirty_tracking": True},
                        {"name": "b", "iommu_dirty_tracking": False}]})


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_compat_container_has_no_dirty_support(profile: str) -> None:
    em = "on"
    s = sc({"qemu": profile, "host": {"iommu": "iommufd-compat"},
            "devices": [{"name": "vf0", "properties": {"enable-migration": em}}]})
    d = decide(s)
    assert d.method is Method.ALL_DIRTY and not d.blocked and not d.type1_pinned_scope
    assert d.unmap_queries_dirty  # the legacy unmap path


# --- save_prepare, properties -------------------------------------------------------------


def test_background_snapshots_are_refused_from_8_2_and_not_modelled_before() -> None:
    data = {"qemu": "8.2", "devices": [dict(ONE_VF)], "migration": {"background_snapshot": True}}
    assert decide(sc(data)).blocked_by == ("background-snapshot",)
    with pytest.raises(SpecError, match="does not refuse background snapshots"):
        sc({**data, "qemu": "8.1"})


@pytest.mark.parametrize(("value", "opt_out"), [("on", False), ("auto", False), ("off", True)])
def test_x_pre_copy_dirty_page_tracking_is_on_off_auto(value: str, opt_out: bool) -> None:
    s = sc({"devices": [{"name": "vf0", "dma_logging": True,
                         "properties": {"x-pre-copy-dirty-page-tracking": value}}]})
    assert s.devices[0].properties.pre_copy_dirty_page_tracking == value
    assert decide(s).precopy_sync_opt_out == (("vf0",) if opt_out else ())


def test_x_pre_copy_dirty_page_tracking_refuses_a_boolean() -> None:
    with pytest.raises(SpecError, match='OnOffAuto property: write "on", "off" or "auto"'):
        sc({"devices": [{"name": "vf0", "properties": {"x-pre-copy-dirty-page-tracking": False}}]})


def test_an_unmodelled_flag_cannot_be_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every recorded flag is modelled today; the refusal stays for the next one recorded
    # before its path is modelled, so the test marks one as such.
    import model.profiles

    flag = UNMODELLED_FLAGS[0] if UNMODELLED_FLAGS else "has_switchover_ack"
    monkeypatch.setattr(model.profiles, "UNMODELLED_FLAGS", (flag,))
    with pytest.raises(OverrideError) as info:
        apply_overrides(PROFILES["master"], {flag: False})
    assert info.value.flag == flag
    assert "no modelled path reads it yet" in str(info.value)


@pytest.mark.parametrize("flag", FLAG_NAMES)
def test_every_patchable_flag_is_read_by_the_model(flag: str) -> None:
    """A flag a patch may set is read somewhere in model/ (``profile.<flag>``), so setting it
    changes what is checked; the unmodelled ones are refused instead."""
    root = Path(__file__).resolve().parent.parent / "model"
    assert any(f".{flag}" in p.read_text() for p in root.rglob("*.py")), flag
    assert flag not in UNMODELLED_FLAGS
