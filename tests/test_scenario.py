"""Spec files: loading, defaults, and one exact line for every kind of user error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.lang.spec import NAME_RULE
from model.contract import MUTATIONS, PROPERTY_KINDS, PROPERTY_NAMES, Mutation, Property
from model.profiles import FLAG_NAMES, PROFILE_NAMES
from model.scenario import (
    DEFAULT_RAM,
    MAX_PAGES,
    CheckConfig,
    Expect,
    SpecError,
    load_scenario,
    load_scenarios,
    scenario_from_dict,
)
from model.units import UnitError, parse_size

FIXTURES = Path(__file__).parent / "fixtures" / "bad_specs"
P = "specs/x.toml"

FULL_SPEC = """\
name = "two-vfs-device-logging"
description = "Two mlx5-like VFs with DMA logging, no vIOMMU."
qemu = "master"

[vm]
pages = 3
viommu = false
cpu_writes = true

[host]
iommu = "type1"
iommu_dirty_tracking = false

[[devices]]
name = "vf0"
features = ["p2p", "pre-copy"]
dma_logging = true
dma_pages = [1, 0]
pins = []
[devices.properties]
x-pre-copy-dirty-page-tracking = "on"
x-device-dirty-page-tracking = "on"
enable-migration = "auto"

[[devices]]
name = "vf1"
features = ["p2p"]
dma_logging = true

[migration]
precopy_rounds = 2
cancel = true
device_faults = false
query_faults = false
attempts = 1

[check]
invariants = ["NoPageLost"]
expect = "pass"

[mutations]
no_final_sync = false
skip_p2p_prepare = true
"""


def one_device(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"devices": [{"name": "vf0"}]}
    data.update(extra)
    return data


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        scenario_from_dict(data, P)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- loading ----------------------------------------------------------------------------


def test_full_spec_from_design_loads(tmp_path: Path) -> None:
    spec = tmp_path / "two.toml"
    spec.write_text(FULL_SPEC)
    s = load_scenario(spec)
    assert s.path == spec
    assert s.name == "two-vfs-device-logging"
    assert s.qemu == "master" and s.profile.name == "master"
    assert s.vm.pages == 3 and not s.vm.viommu and s.vm.cpu_writes
    assert s.host.iommu == "type1" and not s.host.iommu_dirty_tracking
    vf0, vf1 = s.devices
    assert vf0.features == frozenset({"p2p", "pre-copy"}) and vf0.has_p2p and vf0.has_pre_copy
    assert vf0.dma_pages == (0, 1)  # sorted
    assert vf1.dma_pages == (0, 1, 2)  # default: all pages
    assert vf0.p2p_dma and vf1.p2p_dma  # default with a peer device
    assert vf1.features == frozenset({"p2p"}) and not vf1.has_pre_copy
    assert vf0.properties.enable_migration == "auto"
    assert s.migration.precopy_rounds == 2 and s.migration.cancel and s.migration.attempts == 1
    assert s.check == CheckConfig(invariants=("NoPageLost",), expect=Expect("pass"))
    assert s.mutations == frozenset({"skip_p2p_prepare"})
    assert s.has_mutation("skip_p2p_prepare") and not s.has_mutation("no_final_sync")
    assert s.device("vf1") is vf1


def test_defaults() -> None:
    s = scenario_from_dict(one_device(), "specs/minimal.toml")
    assert s.name == "minimal"  # file stem
    assert s.description == ""
    assert s.qemu == "master"
    assert (s.vm.pages, s.vm.viommu, s.vm.cpu_writes, s.vm.ram) == (2, False, True, DEFAULT_RAM)
    assert (s.host.iommu, s.host.iommu_dirty_tracking) == ("type1", False)
    (dev,) = s.devices
    assert dev.features == frozenset() and not dev.dma_logging
    assert dev.dma_pages == (0, 1) and dev.pins == () and not dev.p2p_dma
    props = dev.properties
    assert props.x_pre_copy_dirty_page_tracking
    assert props.x_device_dirty_page_tracking == "on" and props.enable_migration == "auto"
    m = s.migration
    assert (m.precopy_rounds, m.cancel, m.device_faults, m.query_faults, m.attempts,
            m.postcopy) == (1, False, False, False, 1, False)
    assert s.check.invariants is None and s.check.expect is None
    assert s.mutations == frozenset()


def test_default_device_names_and_qemu_8_0_default_is_disabled() -> None:
    s = scenario_from_dict({"qemu": "8.0", "devices": [{}, {}]}, P)
    assert [d.name for d in s.devices] == ["dev0", "dev1"]
    # QEMU 8.0: x-enable-migration defaults to off.
    assert all(d.properties.enable_migration == "off" for d in s.devices)


def test_ram_sizes() -> None:
    assert scenario_from_dict(one_device(vm={"ram": "16TiB"}), P).vm.ram == 16 << 40
    assert scenario_from_dict(one_device(vm={"ram": "512 GiB"}), P).vm.ram == 512 << 30
    assert scenario_from_dict(one_device(vm={"ram": 1 << 33}), P).vm.ram == 1 << 33
    # the one size parser (model.units), as the command line's flags read sizes
    assert scenario_from_dict(one_device(vm={"ram": "16GB"}), P).vm.ram == 16 * 10**9
    assert parse_size("4G") == 4 << 30 and parse_size("16 TB") == 16 * 10**12
    with pytest.raises(UnitError, match="cannot read 'x' as a size"):
        parse_size("x")


def test_expect_forms() -> None:
    def expect(value: Any) -> Expect | None:
        return scenario_from_dict(one_device(check={"expect": value}), P).check.expect

    assert expect("pass") == Expect("pass")
    assert expect("blocked") == Expect("blocked")
    violation = expect({"violation": "NoPageLost"})
    assert violation == Expect("violation", ("NoPageLost",))
    assert expect({"violations": ["NoPageLost", "TypeOK"]}) == Expect(
        "violation", ("NoPageLost", "TypeOK"), several=True)
    assert violation is not None and str(violation) == "violation(NoPageLost)"
    # what the verdict makes of them (checker.verdict judges; tests/test_verdict.py)
    from cli.load import expectation_of

    def judged(value: Any) -> tuple[str, str | None]:
        e = expectation_of(scenario_from_dict(one_device(check={"expect": value}), P))
        return e.kind, e.name

    assert judged({"violation": "NoPageLost"}) == ("violation", "NoPageLost")
    assert judged("blocked") == ("blocked", None)
    assert expectation_of(scenario_from_dict(one_device(), P)).kind == "no-violation"


def test_check_pins() -> None:
    check = scenario_from_dict(one_device(check={
        "expect": {"violation": "NoPageLost"}, "distinct_states": 1860, "generated_states": 4491,
        "depth": 27, "trace_length": 27}), P).check
    assert (check.distinct_states, check.generated_states, check.depth, check.trace_length) == (
        1860, 4491, 27, 27)
    bare = scenario_from_dict(one_device(), P).check
    assert (bare.distinct_states, bare.generated_states, bare.depth, bare.trace_length) == (
        None, None, None, None)


def test_load_scenarios_directory_sorted(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        (tmp_path / f"{name}.toml").write_text('[[devices]]\nname = "vf0"\n')
    (tmp_path / "notes.txt").write_text("not a spec")
    loaded = load_scenarios([tmp_path])
    assert [s.name for s in loaded] == ["a", "b", "c"]
    single = load_scenarios([tmp_path / "c.toml", tmp_path / "a.toml"])
    assert [s.name for s in single] == ["c", "a"]


def test_load_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SpecError) as info:
        load_scenarios([missing])
    assert str(info.value) == f"{missing}: no such file or directory"
    with pytest.raises(SpecError) as info:
        load_scenario(missing)
    assert str(info.value) == f"{missing}: no such file"


def test_contract_names() -> None:
    assert PROPERTY_NAMES == (
        "TypeOK", "NoPageLost", "DirtyTrackingSound", "NoDeviceTrackingWithViommu",
        "LegalDeviceArcs", "P2PQuiescedBeforeStop", "SourceRecovers",
        "DestinationStartsLoaded", "NoSplitBrain", "VcpusStoppedForStopCopy",
        "ConfigLoadAfterInterruptController", "MigrationEnds", "MigrationCanComplete",
    )
    assert set(MUTATIONS) == {
        "no_final_sync", "sync_before_devices_stop", "allow_viommu_device_tracking",
        "no_unmap_dirty_query", "type1_ignores_unpinned_groups",
        "device_logging_for_mixed_container", "skip_p2p_prepare", "retry_keeps_cleared_bits",
        "no_recovery_on_cancel", "vcpus_run_in_stop_copy", "ignore_log_start_failure",
        "no_wait_for_load_threads",
    }
    for name, mutation in MUTATIONS.items():
        assert mutation.value == name and mutation.violates in PROPERTY_NAMES
        assert mutation is Mutation(name) and mutation.description
    assert MUTATIONS["skip_p2p_prepare"].violates == "P2PQuiescedBeforeStop"
    assert MUTATIONS["no_recovery_on_cancel"].violates == "SourceRecovers"
    assert MUTATIONS["vcpus_run_in_stop_copy"].violates == "VcpusStoppedForStopCopy"
    assert MUTATIONS["no_wait_for_load_threads"].violates == "DestinationStartsLoaded"
    assert PROPERTY_KINDS == {
        "TypeOK": "invariant", "NoPageLost": "invariant", "DirtyTrackingSound": "invariant",
        "NoDeviceTrackingWithViommu": "invariant", "LegalDeviceArcs": "action-invariant",
        "P2PQuiescedBeforeStop": "invariant", "SourceRecovers": "invariant",
        "DestinationStartsLoaded": "invariant", "NoSplitBrain": "invariant",
        "VcpusStoppedForStopCopy": "invariant", "ConfigLoadAfterInterruptController": "invariant",
        "MigrationEnds": "liveness", "MigrationCanComplete": "witness",
    }


def test_contract_members_are_their_spec_file_names() -> None:
    """Code names properties and mutations by enum member: a typo fails at import time,
    and a member is interchangeable with its spec-file string."""
    with pytest.raises(AttributeError):
        Mutation.NO_FINAL_SYNCH  # type: ignore[attr-defined]  # noqa: B018
    assert Mutation.NO_FINAL_SYNC == "no_final_sync" and f"{Mutation.NO_FINAL_SYNC}" == "no_final_sync"
    assert "no_final_sync" in {Mutation.NO_FINAL_SYNC}
    assert Property.NO_PAGE_LOST == "NoPageLost" and Property.LEGAL_DEVICE_ARCS.is_safety
    assert not Property.MIGRATION_ENDS.is_safety
    sc = scenario_from_dict({"devices": [{"name": "vf0"}], "mutations": {"no_final_sync": True}}, P)
    assert sc.mutations == {Mutation.NO_FINAL_SYNC} and sc.has_mutation("no_final_sync")


# --- errors from fixture files ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("dma_page_out_of_range.toml",
         "[devices.1].dma_pages: page 5 is out of range 0..2 (vm.pages = 3)"),
        ("unknown_key.toml",
         "[vm].pagez: unknown key; allowed: pages, viommu, cpu_writes, ram, paused, "
         "user_pause, arch; did you mean 'pages'?"),
        ("unknown_profile.toml",
         'qemu: unknown profile "7.2"; allowed: "8.0", "8.1", "8.2", "9.0", "9.1", "9.2", '
         '"10.0", "10.1", "10.2", "master"'),
        ("wrong_type.toml", '[vm].pages: expected an integer, got string "3"'),
        ("type1_hw_dirty.toml",
         '[host].iommu_dirty_tracking: true needs iommu = "iommufd" '
         "(type1 has no hardware dirty bits, and the compat container uses the type1 interface)"),
        ("unknown_override_flag.toml",
         '[qemu].log_sync_needs_tracking_started: unknown behaviour flag '
         '"log_sync_needs_tracking_started"; allowed: ' + ", ".join(FLAG_NAMES)),
        ("unchecked_expectation.toml",
         '[check].expect: violation of "NoPageLost" is expected but [check].invariants '
         "does not check it"),
    ],
)
def test_fixture_errors(fixture: str, expected: str) -> None:
    path = FIXTURES / fixture
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {expected}"


def test_toml_syntax_error_names_the_line() -> None:
    path = FIXTURES / "toml_syntax.toml"
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML at line 5, column 7: ")
    assert "\n" not in message and "(at line" not in message


def test_fixture_directory_holds_only_bad_specs() -> None:
    for path in sorted(FIXTURES.glob("*.toml")):
        with pytest.raises(SpecError):
            load_scenario(path)


# --- errors from dicts ------------------------------------------------------------------


DEV = {"name": "vf0"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # unknown keys, with the allowed ones and a close match
        ({"vms": {}, "devices": [DEV]},
         "vms: unknown key; allowed: name, description, vmm, qemu, vm, host, devices, migration, "
         "check, mutations; did you mean 'vm'?"),
        ({"vmm": {}, "devices": [DEV]},
         'vmm: expected a string, one of "qemu", "cloud-hypervisor", got a table'),
        ({"devices": [{"name": "vf0", "dma_loging": True}]},
         "[devices.0].dma_loging: unknown key; allowed: name, features, dma_logging, dma_pages, "
         "pins, p2p_dma, iommu_dirty_tracking, properties; did you mean 'dma_logging'?"),
        ({"devices": [{"name": "vf0", "properties": {"enable_migration": "on"}}]},
         "[devices.0.properties].enable_migration: unknown key; allowed: "
         "x-pre-copy-dirty-page-tracking, x-device-dirty-page-tracking, enable-migration, "
         "x-migration-multifd-transfer, x-migration-load-config-after-iter; did you mean "
         "'enable-migration'?"),
        ({"devices": [DEV], "migration": {"rounds": 2}},
         "[migration].rounds: unknown key; allowed: precopy_rounds, cancel, device_faults, "
         "query_faults, log_start_faults, hwpt_tracking_faults, log_stop_faults, attempts, "
         "postcopy, background_snapshot, return_path, switchover_ack, load_faults, multifd; "
         "did you mean 'precopy_rounds'?"),
        ({"devices": [DEV], "host": {"iommu_dirty": True}},
         "[host].iommu_dirty: unknown key; allowed: iommu, iommu_dirty_tracking; "
         "did you mean 'iommu_dirty_tracking'?"),
        ({"devices": [DEV], "mutations": {"no_finl_sync": True}},
         "[mutations].no_finl_sync: unknown mutation; allowed: " + ", ".join(MUTATIONS)
         + "; did you mean 'no_final_sync'?"),
        # wrong types
        ({"devices": [DEV], "vm": {"viommu": "yes"}},
         '[vm].viommu: expected a boolean (true or false), got string "yes"'),
        ({"devices": [DEV], "vm": {"pages": True}},
         "[vm].pages: expected an integer, got boolean true"),
        ({"devices": [DEV], "vm": {"pages": 2.5}}, "[vm].pages: expected an integer, got float 2.5"),
        ({"devices": [DEV], "vm": 3}, "vm: expected a table, got integer 3"),
        ({"devices": {"name": "vf0"}},
         "devices: expected an array of tables ([[devices]]), got a table"),
        ({"devices": ["vf0"]},
         'devices: entry 0: expected a table ([[devices]]), got string "vf0"'),
        ({"name": 7, "devices": [DEV]}, "name: expected a string, got integer 7"),
        ({"devices": [{"name": "vf0", "features": "p2p"}]},
         '[devices.0].features: expected an array of strings, got string "p2p"'),
        ({"devices": [{"name": "vf0", "dma_pages": [0, "1"]}]},
         '[devices.0].dma_pages: expected an array of page numbers, got string "1" in it'),
        ({"devices": [DEV], "mutations": {"no_final_sync": "yes"}},
         '[mutations].no_final_sync: expected a boolean (true or false), got string "yes"'),
        ({"devices": [DEV], "check": {"invariants": "NoPageLost"}},
         '[check].invariants: expected an array of strings, got string "NoPageLost"'),
        ({"devices": [DEV], "vm": {"ram": 1.5}},
         '[vm].ram: expected bytes or a size string such as "16GiB", got float 1.5'),
        # unknown values
        ({"devices": [DEV], "host": {"iommu": "vfio"}},
         '[host].iommu: unknown value "vfio"; allowed: "type1", "iommufd", "iommufd-compat"'),
        ({"devices": [{"name": "vf0", "features": ["p2p", "pre_copy"]}]},
         '[devices.0].features: unknown feature "pre_copy"; allowed: "p2p", "pre-copy" '
         "(VFIO_MIGRATION_STOP_COPY is implied); did you mean 'pre-copy'?"),
        ({"devices": [{"name": "vf0", "features": ["stop-copy"]}]},
         '[devices.0].features: "stop-copy" is implied (VFIO_MIGRATION_STOP_COPY is '
         'mandatory); list only "p2p", "pre-copy"'),
        ({"devices": [{"name": "vf0", "properties": {"enable-migration": "yes"}}]},
         '[devices.0.properties].enable-migration: unknown value "yes"; allowed: "on", '
         '"off", "auto"'),
        ({"devices": [{"name": "vf0", "properties": {"x-device-dirty-page-tracking": "of"}}]},
         '[devices.0.properties].x-device-dirty-page-tracking: unknown value "of"; allowed: '
         "\"on\", \"off\", \"auto\"; did you mean 'off'?"),
        ({"devices": [DEV], "vm": {"ram": "16 TBs"}},
         "[vm].ram: cannot read '16 TBs' as a size; use bytes, or a number with KiB, MiB, GiB, "
         'TiB, PiB or K, M, G, T (binary) or KB, MB, GB, TB (decimal), e.g. "16GiB"'),
        ({"devices": [DEV], "vm": {"ram": "0.3K"}}, "[vm].ram: '0.3K' is not a whole number of bytes"),
        ({"devices": [DEV], "vm": {"ram": 0}}, "[vm].ram: 0 must be positive"),
        ({"devices": [DEV], "vm": {"pages": 3, "ram": 8192}},
         "[vm].ram: 8192 bytes is less than vm.pages = 3 pages of 4096 bytes"),
        # bounds
        ({"devices": [DEV], "vm": {"pages": 0}}, "[vm].pages: 0 is out of range 1..8"),
        ({"devices": [DEV], "vm": {"pages": MAX_PAGES + 1}}, "[vm].pages: 9 is out of range 1..8"),
        ({"devices": [DEV], "migration": {"attempts": 0}},
         "[migration].attempts: 0 is out of range 1..3"),
        ({"devices": [DEV], "migration": {"precopy_rounds": 4}},
         "[migration].precopy_rounds: 4 is out of range 0..3"),
        ({"devices": [DEV], "migration": {"precopy_rounds": -1}},
         "[migration].precopy_rounds: -1 is out of range 0..3"),
        ({}, "devices: at least one [[devices]] entry is required"),
        ({"devices": [{"name": f"vf{i}"} for i in range(4)]},
         "devices: 4 devices; at most 3 can be modelled"),
        ({"devices": [{"name": "vf0", "pins": [2]}]},
         "[devices.0].pins: page 2 is out of range 0..1 (vm.pages = 2)"),
        ({"devices": [{"name": "vf0", "dma_pages": [1, 1]}]},
         "[devices.0].dma_pages: page 1 is listed twice"),
        ({"devices": [{"name": "vf0", "features": ["p2p", "p2p"]}]},
         '[devices.0].features: "p2p" is listed twice'),
        # impossible combinations
        ({"devices": [{"name": "vf0"}, {"name": "vf1"}, {"name": "vf0"}]},
         '[devices.2].name: duplicate device name "vf0" (also [devices.0])'),
        ({"devices": [{"name": " "}]}, "[devices.0].name: ' ' holds ' '; a name is made of " + NAME_RULE),
        ({"name": "", "devices": [DEV]}, "name: '' is empty"),
        ({"name": "../../etc/evil", "devices": [DEV]},
         "name: '../../etc/evil' holds '/'; a name is made of " + NAME_RULE),
        ({"devices": [{"name": "vf0\nstep 2"}]},
         "[devices.0].name: 'vf0\\nstep 2' holds the character U+000A; a name is made of " + NAME_RULE),
        ({"devices": [{"name": "vf\u202e0"}]},
         "[devices.0].name: 'vf\\u202e0' holds the character U+202E (RIGHT-TO-LEFT OVERRIDE); "
         "a name is made of " + NAME_RULE),
        ({"description": "a\u2066b", "devices": [DEV]},
         "description: holds the character U+2066 (LEFT-TO-RIGHT ISOLATE); only printable text, newlines "
         "and tabs are allowed"),
        ({"devices": [{"name": "vf0", "p2p_dma": True}]},
         "[devices.0].p2p_dma: true needs another device to target (the VM has one device)"),
        ({"qemu": "8.2", "host": {"iommu": "iommufd"}, "devices": [DEV]},
         '[host].iommu: "iommufd" needs QEMU 9.0 or later (iommufd backend, 5ee3dc7af7); '
         "profile is 8.2"),
        ({"qemu": "8.2", "devices": [
            {"name": "vf0", "properties": {"x-device-dirty-page-tracking": "off"}}]},
         "[devices.0.properties].x-device-dirty-page-tracking: property does not exist in "
         "QEMU 8.2 (added in 9.1, 30b9167785)"),
        ({"qemu": "8.0", "devices": [{"name": "vf0", "properties": {"enable-migration": "auto"}}]},
         '[devices.0.properties].enable-migration: unknown value "auto"; allowed: "on", "off" '
         "(QEMU 8.0 has only the experimental boolean x-enable-migration, default off)"),
        ({"qemu": "8.1", "devices": [DEV], "migration": {"postcopy": True}},
         "[migration].postcopy: QEMU 8.1 does not refuse postcopy with VFIO devices (the "
         "destination fails; refused since 8.2, bf7ef7a2da) and postcopy is not modelled"),
        # [check]
        ({"devices": [DEV], "check": {"invariants": ["NoPageLots"]}},
         '[check].invariants: unknown property "NoPageLots"; allowed: '
         + ", ".join(PROPERTY_NAMES) + "; did you mean 'NoPageLost'?"),
        ({"devices": [DEV], "check": {"invariants": []}},
         "[check].invariants: empty list; leave the key out to check all that apply"),
        ({"devices": [DEV], "check": {"invariants": ["TypeOK", "TypeOK"]}},
         '[check].invariants: "TypeOK" is listed twice'),
        ({"devices": [DEV], "check": {"expect": "passes"}},
         '[check].expect: unknown value "passes"; allowed: "pass", "blocked", '
         '{ violation = "<property>" } or { violations = ["<property>", ...] }; did you mean \'pass\'?'),
        ({"devices": [DEV], "check": {"expect": "violation"}},
         '[check].expect: "violation" needs the property: { violation = "<property>" }'),
        ({"devices": [DEV], "check": {"expect": {"violation": "NoPagesLost"}}},
         '[check].expect: unknown property "NoPagesLost"; allowed: ' + ", ".join(PROPERTY_NAMES)
         + "; did you mean 'NoPageLost'?"),
        ({"devices": [DEV], "check": {"expect": {"violated": "NoPageLost"}}},
         '[check].expect: unknown key "violated" in the inline table; allowed: violation or '
         "violations (one of them)"),
        ({"devices": [DEV], "check": {"expect": {"violations": []}}},
         "[check].expect: violations: expected a non-empty array of property names, got an array"),
        ({"devices": [DEV], "check": {"expect": {"violations": ["NoPageLost", "NoPageLost"]}}},
         '[check].expect: violations: "NoPageLost" is listed twice'),
        ({"devices": [DEV],
          "check": {"expect": {"violations": ["NoPageLost"]}, "trace_length": {"TypeOK": 3}}},
         "[check.trace_length].TypeOK: is not among the violations expect names (NoPageLost)"),
        ({"devices": [DEV],
          "check": {"expect": {"violations": ["NoPageLost", "TypeOK"]}, "trace_length": 3}},
         "[check].trace_length: several violations are expected: give one length each, "
         "{ NoPageLost = 30, ... }"),
        ({"devices": [DEV], "check": {"tracking_method": "dirty-bitmap"}},
         '[check].tracking_method: unknown tracking method "dirty-bitmap"; allowed: "device-dma-logging", '
         '"type1", "iommufd-hw", "all-dirty"'),
        ({"devices": [DEV], "check": {"blocked_by": ["viommmu"]}},
         '[check].blocked_by: unknown blocker "viommmu"; allowed: "migration-disabled", "no-dirty-tracking", '
         '"multiple-devices", "multiple-devices-without-p2p", "viommu", "type1-large-ram", "postcopy", '
         '"background-snapshot"; '
         "did you mean 'viommu'?"),
        ({"devices": [DEV], "check": {"expect": "pass", "blocked_by": ["viommu"]}},
         '[check].blocked_by: names blockers, so the migration is refused: expect must be "blocked"; '
         "use [] to state that nothing blocks it"),
        ({"devices": [DEV], "check": {"depth": 2**64}},
         f"[check].depth: expected an integer >= 1, got integer {2**64}"),
        ({"vm": {"ram": 2**65}, "devices": [DEV]},
         f"[vm].ram: {2**65} bytes is more than QEMU can address (2^64 - 1 bytes)"),
        ({"devices": [DEV], "check": {"expect": {"violation": 3}}},
         "[check].expect: violation: expected a property name string, got integer 3"),
        ({"devices": [DEV], "check": {"expect": 1}},
         '[check].expect: expected "pass", "blocked", { violation = "<property>" } or '
         '{ violations = ["<property>", ...] }, got integer 1'),
        ({"devices": [DEV], "check": {"invariants": ["TypeOK"],
                                      "expect": {"violation": "MigrationEnds"}}},
         '[check].expect: violation of "MigrationEnds" is expected but [check].invariants '
         "does not check it"),
        ({"devices": [DEV], "check": {"distinct_states": 0}},
         "[check].distinct_states: expected an integer >= 1, got integer 0"),
        ({"devices": [DEV], "check": {"depth": "28"}},
         '[check].depth: expected an integer >= 1, got string "28"'),
        ({"devices": [DEV], "check": {"generated_states": True}},
         "[check].generated_states: expected an integer >= 1, got boolean true"),
        ({"devices": [DEV], "check": {"expect": "pass", "trace_length": 4}},
         '[check].trace_length: only an expected violation has a counterexample; expect is "pass"'),
        ({"devices": [DEV], "check": {"trace_length": 4}},
         "[check].trace_length: only an expected violation has a counterexample; expect is "
         "not given"),
        ({"devices": [DEV], "check": {"distinct": 3}},
         "[check].distinct: unknown key; allowed: invariants, expect, distinct_states, "
         "generated_states, depth, trace_length, tracking_method, blocked_by; did you mean "
         "'distinct_states'?"),
    ],
)
def test_dict_errors(data: dict[str, Any], expected: str) -> None:
    assert error_of(data) == f"{P}: {expected}"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_iommufd_hw_dirty_tracking_per_profile(profile: str) -> None:
    data = one_device(qemu=profile, host={"iommu": "iommufd", "iommu_dirty_tracking": True})
    if profile in ("8.0", "8.1", "8.2"):
        assert "needs QEMU 9.0 or later" in error_of(data)
    else:
        s = scenario_from_dict(data, P)
        assert s.host.iommu == "iommufd" and s.host.iommu_dirty_tracking


def test_profile_8_0_accepts_on_and_off() -> None:
    for value in ("on", "off"):
        s = scenario_from_dict({"qemu": "8.0", "devices": [
            {"name": "vf0", "properties": {"enable-migration": value}}]}, P)
        assert s.devices[0].properties.enable_migration == value


# --- any TOML-shaped garbage gives a SpecError, never another exception -------------------

_scalars = st.one_of(st.booleans(), st.integers(-3, 12), st.text(max_size=6),
                     st.floats(allow_nan=False, width=16))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "pages", "iommu", "expect", "violation", "x"]),
                    inner, max_size=3)), max_leaves=8)
_keys = {
    "": ["name", "qemu", "vm", "host", "devices", "check", "mutations", "bogus"],
}


@st.composite
def _spec_like(draw: st.DrawFn) -> dict[str, Any]:
    device = draw(st.dictionaries(
        st.sampled_from(["name", "features", "dma_logging", "dma_pages", "pins", "p2p_dma",
                         "properties"]), _values, max_size=4))
    data: dict[str, Any] = {"devices": draw(st.lists(st.just(device), min_size=0, max_size=4))}
    data.update(draw(st.dictionaries(st.sampled_from(_keys[""]), _values, max_size=4)))
    return data


@settings(max_examples=300, deadline=None)
@given(_spec_like())
def test_garbage_never_crashes(data: dict[str, Any]) -> None:
    try:
        scenario_from_dict(data, P)
    except SpecError as exc:
        text = str(exc)
        assert text.startswith(f"{P}: ") and "\n" not in text


def test_control_characters_in_a_value_stay_on_one_line() -> None:
    """A quoted TOML string may hold a newline; the error still is one line (escaped)."""
    with pytest.raises(SpecError) as info:
        scenario_from_dict({"qemu": "9.1\nmaster", "devices": [{}]}, P)
    assert str(info.value) == (f'{P}: qemu: unknown profile "9.1\\nmaster"; allowed: '
                               '"8.0", "8.1", "8.2", "9.0", "9.1", "9.2", "10.0", "10.1", '
                               '"10.2", "master"')
