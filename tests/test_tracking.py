"""QEMU's dirty-tracking decision and blockers, per profile, against the QEMU sources.

The table rows were written from hw/vfio/migration.c ``vfio_migration_realize()``,
hw/vfio/common.c (blockers, ``vfio_devices_all_device_dirty_tracking``,
``vfio_get_dirty_bitmap``), hw/vfio/iommufd.c and hw/vfio/container*.c at each profile's
release commit (8.0 c1eb2ddf0f, 8.1 7e5a8bb223, 8.2 1600b9f46b, 9.0 c25df57ae8,
9.1 fd1952d814, 9.2 ae35f033b8, 10.0 7c949c53e9, 10.1 f8b2f64e23, 10.2 698104725e, master
ece408818d); each row cites the commit that makes it so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.contract import BLOCKER_CODES, MUTATIONS
from model.decision.tracking import (
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    NO_DIRTY_TRACKING,
    TYPE1_RAM_LIMIT,
    VIOMMU,
    Method,
    Stage,
    TrackingDecision,
    choose_method,
    decide,
    device_dirty_tracking_enabled,
    realize_blockers,
    unmap_queries_dirty,
)
from model.profiles import PROFILE_NAMES, PROFILES
from model.scenario import Scenario, scenario_from_dict

DEVICE = Method.DEVICE_DMA_LOGGING
TYPE1 = Method.TYPE1
HW = Method.IOMMUFD_HW
ALL = Method.ALL_DIRTY


def dev(name: str = "vf0", *, p2p: bool = False, pre_copy: bool = False, log: bool = False,
        em: str | None = None, ddt: str | None = None, pins: tuple[int, ...] = (),
        dma: tuple[int, ...] | None = None, iommu_dt: bool | None = None) -> dict[str, Any]:
    """A [[devices]] entry: log = DMA logging, em = enable-migration,
    ddt = x-device-dirty-page-tracking, iommu_dt = its IOMMU's dirty capability (iommufd)."""
    entry: dict[str, Any] = {"name": name, "dma_logging": log, "pins": list(pins)}
    if iommu_dt is not None:
        entry["iommu_dirty_tracking"] = iommu_dt
    entry["features"] = [f for f, on in (("p2p", p2p), ("pre-copy", pre_copy)) if on]
    if dma is not None:
        entry["dma_pages"] = list(dma)
    props: dict[str, Any] = {}
    if em is not None:
        props["enable-migration"] = em
    if ddt is not None:
        props["x-device-dirty-page-tracking"] = ddt
    if props:
        entry["properties"] = props
    return entry


def scenario(qemu: str, *devices: dict[str, Any], viommu: bool = False, iommu: str = "type1",
             hw: bool = False, ram: str | None = None, postcopy: bool = False,
             snapshot: bool = False, mutations: tuple[str, ...] = ()) -> Scenario:
    vm: dict[str, Any] = {"pages": 2, "viommu": viommu}
    if ram is not None:
        vm["ram"] = ram
    data = {"qemu": qemu, "vm": vm, "host": {"iommu": iommu, "iommu_dirty_tracking": hw},
            "devices": list(devices),
            "migration": {"postcopy": postcopy, "background_snapshot": snapshot},
            "mutations": {m: True for m in mutations}}
    return scenario_from_dict(data, "specs/table.toml")


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    method: Method
    blocked_by: tuple[str, ...]
    errors: tuple[str, ...] = ()  # devices that fail to realize
    why: str = ""

    def __str__(self) -> str:
        return self.why


LOGGING_VF = dev(log=True)
PLAIN_VF = dev()
ALL_8_1 = ("8.1", "8.2", "9.0", "9.1", "9.2", "10.0", "10.1", "10.2", "master")
IOMMUFD = ("9.0", "9.1", "9.2", "10.0", "10.1", "10.2", "master")
HW_DIRTY = ("9.1", "9.2", "10.0", "10.1", "10.2", "master")

TABLE: list[Row] = [
    # --- one device, DMA logging, type1 ----------------------------------------------------
    # 8.0: x-enable-migration defaults to false -> blocker; no init, so no DMA-logging probe
    # either (dirty_pages_supported is set in vfio_migration_init, 95b29658b6).
    Row(scenario("8.0", LOGGING_VF), TYPE1, ("migration-disabled",),
        why="8.0 default x-enable-migration=off (c1eb2ddf0f)"),
    Row(scenario("8.0", dev(log=True, em="on")), DEVICE, (),
        why="8.0 x-enable-migration=on, DMA logging (5255bbf4ec)"),
    *[Row(scenario(p, LOGGING_VF), DEVICE, (), why=f"{p}: device logging, no blocker")
      for p in ALL_8_1],
    # enable-migration=off is a blocker (never an error) from 8.1 (8bbcb64a71).
    Row(scenario("8.1", dev(log=True, em="off")), TYPE1, ("migration-disabled",),
        why="8.1 enable-migration=off (8bbcb64a71)"),
    Row(scenario("master", dev(log=True, em="off")), TYPE1, ("migration-disabled",),
        why="master enable-migration=off"),
    # --- one device without DMA logging ------------------------------------------------
    # 8.0 migrates on type1 tracking (b051a3f640).
    Row(scenario("8.0", dev(em="on")), TYPE1, (), why="8.0 no dirty-tracking requirement"),
    # 8.1+: AUTO requires device dirty tracking (8bbcb64a71); type1 never counts.
    *[Row(scenario(p, PLAIN_VF), TYPE1, (NO_DIRTY_TRACKING,),
          why=f"{p}: AUTO without DMA logging blocks (8bbcb64a71)")
      for p in ALL_8_1],
    # ON only warns.
    *[Row(scenario(p, dev(em="on")), TYPE1, (), why=f"{p}: ON warns (8bbcb64a71)")
      for p in ALL_8_1],
    # master: ON + type1 + RAM beyond 8 TiB fails realize (46c7633114); 10.2 does not check.
    Row(scenario("master", dev(em="on"), ram="16TiB"), TYPE1, ("type1-large-ram",),
        errors=("vf0",), why="master large-RAM type1 (46c7633114)"),
    Row(scenario("master", dev(em="on"), ram="8TiB"), TYPE1, (),
        why="master: exactly the 8 TiB limit is allowed (ram_size > max_size)"),
    Row(scenario("10.2", dev(em="on"), ram="16TiB"), TYPE1, (),
        why="10.2 has no large-RAM blocker"),
    Row(scenario("master", LOGGING_VF, ram="16TiB"), DEVICE, (),
        why="master: the limit only applies without device tracking"),
    Row(scenario("master", dev(em="on"), iommu="iommufd", ram="16TiB"), ALL, (),
        why="master: the limit only applies to a dirty-capable (type1) container"),
    # --- iommufd -----------------------------------------------------------------------
    # 9.1: iommufd HW dirty tracking (dddfd8d667...) and AUTO accepts it (f48b472450).
    *[Row(scenario(p, PLAIN_VF, iommu="iommufd", hw=True), HW, (),
          why=f"{p}: iommufd HW tracking satisfies AUTO (f48b472450)")
      for p in HW_DIRTY],
    # 9.0: the iommufd backend (5ee3dc7af7) without hwpt dirty tracking: AUTO needs DMA
    # logging (f48b472450 is 9.1), hardware dirty bits are not used.
    Row(scenario("9.0", PLAIN_VF, iommu="iommufd", hw=True), ALL, (NO_DIRTY_TRACKING,),
        why="9.0 iommufd: no hwpt dirty tracking yet, AUTO blocks (f48b472450 is 9.1)"),
    Row(scenario("9.0", dev(em="on"), iommu="iommufd", hw=True), ALL, (),
        why="9.0 iommufd, ON: no container dirty support, all pages dirty"),
    Row(scenario("9.0", LOGGING_VF, iommu="iommufd"), DEVICE, (),
        why="9.0 iommufd: DMA logging works with the cdev (device feature)"),
    *[Row(scenario(p, dev(em="on"), iommu="iommufd"), ALL, (),
          why=f"{p}: ON without any tracking: all-dirty chosen (reports nothing from 10.0)")
      for p in IOMMUFD],
    # iommufd-compat: QEMU's legacy container on the compat /dev/vfio/vfio reports no
    # CAP_MIGRATION (kernel vfio_compat.c), so no container dirty support in any release.
    Row(scenario("8.0", dev(em="on"), iommu="iommufd-compat"), ALL, (),
        why="8.0 compat: migrates, every page dirty (b051a3f640)"),
    *[Row(scenario(p, PLAIN_VF, iommu="iommufd-compat"), ALL, (NO_DIRTY_TRACKING,),
          why=f"{p}: compat without DMA logging: AUTO blocks")
      for p in ALL_8_1],
    *[Row(scenario(p, LOGGING_VF, iommu="iommufd-compat"), DEVICE, (),
          why=f"{p}: compat with DMA logging: device tracking")
      for p in ("8.1", "10.0", "master")],
    Row(scenario("master", dev(em="on"), iommu="iommufd-compat", ram="16TiB"), ALL, (),
        why="master: the large-RAM check needs a dirty-capable container (compat is not)"),
    # Per-device IOMMU capability (iommufd_cdev_autodomains_get, 5b1e96e654): a capable
    # device first creates a dirty hwpt; a later incapable one gets a plain hwpt; the
    # container reports only dirty hwpts.
    *[Row(scenario(p, dev("vf0", p2p=True, iommu_dt=True), dev("vf1", p2p=True, log=True,
                                                                iommu_dt=False),
                   iommu="iommufd"), HW, (),
          why=f"{p}: mixed hwpts, vf1 DMA-logs: AUTO passes both, container tracking used")
      for p in HW_DIRTY],
    Row(scenario("9.1", dev("vf0", p2p=True, iommu_dt=False), dev("vf1", p2p=True,
                                                                  iommu_dt=True),
                 iommu="iommufd"), ALL, (NO_DIRTY_TRACKING,),
        why="9.1: capable vf1 joins vf0's plain hwpt: no IOMMU tracking for either, AUTO "
            "blocks"),
    Row(scenario("9.1", dev("vf0", p2p=True, iommu_dt=True), dev("vf1", p2p=True,
                                                                 iommu_dt=False),
                 iommu="iommufd"), HW, (NO_DIRTY_TRACKING,),
        why="9.1: vf1 on a plain hwpt without DMA logging: AUTO blocks vf1"),
    Row(scenario("9.1", PLAIN_VF, iommu="iommufd"), ALL, (NO_DIRTY_TRACKING,),
        why="9.1 iommufd without HW dirty bits: AUTO blocks"),
    Row(scenario("9.1", dev(em="on"), iommu="iommufd"), ALL, (),
        why="9.1 iommufd without HW, ON: all pages dirty at every sync (b051a3f640)"),
    Row(scenario("9.1", LOGGING_VF, iommu="iommufd", hw=True), DEVICE, (),
        why="device logging is preferred over the container (log_global_start)"),
    Row(scenario("9.1", dev(log=True, ddt="off"), iommu="iommufd", hw=True), HW, (),
        why="x-device-dirty-page-tracking=off falls back to iommufd HW (30b9167785)"),
    Row(scenario("9.1", dev(log=True, ddt="off")), TYPE1, (NO_DIRTY_TRACKING,),
        why="9.1 ddt=off on type1: no device or IOMMU tracking -> AUTO blocks"),
    Row(scenario("10.2", dev(log=True, ddt="auto")), DEVICE, (),
        why="only ddt=off disables device tracking (vfio_device_dirty_pages_disabled)"),
    # --- vIOMMU ------------------------------------------------------------------------
    Row(scenario("8.0", dev(log=True, em="on"), viommu=True), DEVICE, (VIOMMU,),
        why="8.0 global vIOMMU blocker (e46883204c)"),
    *[Row(scenario(p, LOGGING_VF, viommu=True), DEVICE, (VIOMMU,),
          why=f"{p}: per-device vIOMMU blocker (3c26c80a0a)")
      for p in ALL_8_1],
    Row(scenario("10.2", PLAIN_VF, viommu=True, iommu="iommufd", hw=True), HW, (VIOMMU,),
        why="10.2 blocks every device behind a vIOMMU"),
    Row(scenario("master", PLAIN_VF, viommu=True, iommu="iommufd", hw=True), HW, (),
        why="master: no device tracking -> no vIOMMU blocker (0e3c1e2b2b)"),
    Row(scenario("master", dev(log=True, ddt="off"), viommu=True, iommu="iommufd", hw=True),
        HW, (), why="master: ddt=off opts out of device tracking and of the blocker"),
    Row(scenario("master", dev(em="on"), viommu=True), TYPE1, (),
        why="master: type1 + vIOMMU allowed with ON (unmap-with-bitmap)"),
    Row(scenario("master", PLAIN_VF, viommu=True), TYPE1, (NO_DIRTY_TRACKING,),
        why="master: AUTO blocks first (step 3 before the vIOMMU check)"),
    Row(scenario("master", dev(log=True, em="on"), viommu=True), DEVICE, (VIOMMU,),
        errors=("vf0",), why="master: ON turns the vIOMMU blocker into an error"),
    Row(scenario("10.2", dev(em="on"), viommu=True), TYPE1, (VIOMMU,), errors=("vf0",),
        why="10.2: ON + vIOMMU fails realize"),
    Row(scenario("8.0", dev(em="on"), viommu=True), TYPE1, (VIOMMU,),
        why="8.0 has no ON semantics: never a realize error"),
    # --- several devices ---------------------------------------------------------------
    Row(scenario("8.0", dev("vf0", p2p=True, log=True, em="on"),
                 dev("vf1", p2p=True, log=True, em="on")),
        DEVICE, (MULTIPLE_DEVICES,), why="8.0: any second migratable device (29d81b71aa)"),
    Row(scenario("8.0", dev("vf0", log=True, em="on"), dev("vf1", log=True)), TYPE1,
        ("migration-disabled",),
        why="8.0: vf1 not enabled -> no init, no probe -> container falls back to type1"),
    Row(scenario("8.1", dev("vf0", p2p=True, log=True), dev("vf1", p2p=True, log=True)),
        DEVICE, (MULTIPLE_DEVICES,), why="8.1: still at most one device (29d81b71aa)"),
    *[Row(scenario(p, dev("vf0", p2p=True, log=True), dev("vf1", p2p=True, log=True)),
          DEVICE, (), why=f"{p}: all P2P -> allowed (5c7a4b6035)")
      for p in ("8.2", "9.0", "9.1", "9.2", "10.0", "10.1", "10.2", "master")],
    Row(scenario("8.2", dev("vf0", p2p=True, log=True), dev("vf1", log=True)), DEVICE,
        (MULTIPLE_DEVICES_WITHOUT_P2P,), why="8.2: vf1 lacks P2P -> global blocker"),
    Row(scenario("8.2", dev("vf0", log=True), dev("vf1", p2p=True, log=True, em="on")),
        DEVICE, (MULTIPLE_DEVICES_WITHOUT_P2P,), errors=("vf1",),
        why="8.2: ON fails realize (8118349b1b)"),
    # 8.1 accepted an ON device once the global blocker existed (the bug 8118349b1b fixed).
    Row(scenario("8.1", dev("vf0", log=True), dev("vf1", log=True),
                 dev("vf2", log=True, em="on")),
        DEVICE, (MULTIPLE_DEVICES,), why="8.1: ON accepted with blocker present"),
    Row(scenario("8.2", dev("vf0", log=True), dev("vf1", log=True),
                 dev("vf2", log=True, em="on")),
        DEVICE, (MULTIPLE_DEVICES_WITHOUT_P2P,), errors=("vf2",),
        why="8.2: ON fails even with blocker present (8118349b1b)"),
    Row(scenario("8.1", dev("vf0", log=True, em="on"), dev("vf1", log=True, em="on")),
        DEVICE, (MULTIPLE_DEVICES,), errors=("vf1",),
        why="8.1: ON errors while no global blocker exists yet"),
    # A disabled device holds no migration object and does not count.
    Row(scenario("8.2", dev("vf0", log=True, em="off"), dev("vf1", log=True)), TYPE1,
        ("migration-disabled",), why="8.2: disabled device does not count"),
    # A device blocked at step 3 keeps its migration object and counts for later devices.
    Row(scenario("8.2", dev("vf0"), dev("vf1", log=True)), TYPE1,
        (NO_DIRTY_TRACKING, MULTIPLE_DEVICES_WITHOUT_P2P),
        why="8.2: blocked vf0 still counts when vf1 realizes"),
    Row(scenario("8.2", dev("vf0", log=True), dev("vf1")), TYPE1, (NO_DIRTY_TRACKING,),
        why="8.2: vf1 blocked at step 3 never reaches the multi-device check"),
    # Mixed containers: one device without logging drops DMA logging for all (5.2).
    Row(scenario("9.1", dev("vf0", p2p=True, log=True), dev("vf1", p2p=True),
                 iommu="iommufd", hw=True), HW, (), why="9.1 mixed container -> iommufd HW"),
    Row(scenario("9.1", dev("vf0", p2p=True, log=True), dev("vf1", p2p=True)), TYPE1,
        (NO_DIRTY_TRACKING,), why="9.1 mixed on type1: vf1 blocked under AUTO"),
    Row(scenario("master", dev("vf0", p2p=True, log=True), dev("vf1", p2p=True, em="on")),
        TYPE1, (), why="master mixed on type1, vf1 ON: type1 tracking"),
    # --- migration start -----------------------------------------------------------------
    Row(scenario("8.2", LOGGING_VF, postcopy=True), DEVICE, ("postcopy",),
        why="8.2 vfio_save_prepare refuses postcopy (bf7ef7a2da)"),
    Row(scenario("master", LOGGING_VF, viommu=True, postcopy=True), DEVICE, (VIOMMU,),
        why="realize blockers stop migrate_prepare before save_prepare"),
    *[Row(scenario(p, LOGGING_VF, snapshot=True), DEVICE, ("background-snapshot",),
          why=f"{p}: vfio_save_prepare refuses a background snapshot (615379764a)")
      for p in ("8.2", "9.2", "master")],
    Row(scenario("8.2", LOGGING_VF, postcopy=True, snapshot=True), DEVICE, ("postcopy",),
        why="vfio_save_prepare checks postcopy first"),
    # --- mutations touching the decision -------------------------------------------------
    Row(scenario("10.2", LOGGING_VF, viommu=True, mutations=("allow_viommu_device_tracking",)),
        DEVICE, (), why="mutation drops the vIOMMU blocker for device tracking"),
    Row(scenario("10.2", dev(em="on"), viommu=True,
                 mutations=("allow_viommu_device_tracking",)),
        TYPE1, (VIOMMU,), errors=("vf0",),
        why="mutation leaves the blocker of devices without device tracking"),
    Row(scenario("8.0", dev(log=True, em="on"), viommu=True,
                 mutations=("allow_viommu_device_tracking",)),
        DEVICE, (), why="mutation under 8.0's global blocker"),
    Row(scenario("master", dev("vf0", p2p=True, log=True), dev("vf1", p2p=True),
                 iommu="iommufd", hw=True, mutations=("device_logging_for_mixed_container",)),
        DEVICE, (), why="mutation: DMA logging although vf1 lacks it"),
    Row(scenario("9.1", dev("vf0", p2p=True, log=True), dev("vf1", p2p=True, em="on"),
                 mutations=("device_logging_for_mixed_container",)),
        DEVICE, (), why="mutation on type1"),
    Row(scenario("9.1", dev(em="on"), mutations=("device_logging_for_mixed_container",)),
        TYPE1, (), why="mutation needs at least one logging device"),
]


@pytest.mark.parametrize("row", TABLE, ids=[f"{i}:{r.why[:50]}" for i, r in enumerate(TABLE)])
def test_decision_table(row: Row) -> None:
    decision = decide(row.scenario)
    assert decision.method is row.method
    assert decision.blocked_by == row.blocked_by
    assert decision.blocked == bool(row.blocked_by)
    assert tuple(b.device for b in decision.blockers if b.error) == row.errors
    assert decision.realize_failed == bool(row.errors)
    assert decision.profile == row.scenario.qemu
    assert decision.sources, "every decision cites its QEMU sources"


def test_table_covers_every_profile_method_and_code() -> None:
    assert {r.scenario.qemu for r in TABLE} == set(PROFILE_NAMES)
    assert {r.method for r in TABLE} == set(Method)
    codes = {c for r in TABLE for c in r.blocked_by}
    assert codes == set(BLOCKER_CODES)


def test_blocker_details() -> None:
    d = decide(scenario("8.2", LOGGING_VF, postcopy=True))
    (b,) = d.blockers
    assert (b.code, b.device, b.stage, b.error) == ("postcopy", "vf0", Stage.SAVE_PREPARE, False)
    assert "bf7ef7a2da" in b.source

    d = decide(scenario("8.2", dev("vf0", p2p=True, log=True), dev("vf1", log=True)))
    (b,) = d.blockers
    assert b.device is None and b.stage is Stage.REALIZE  # the global blocker
    assert "vf1" in b.message and "5c7a4b6035" in b.source

    d = decide(scenario("master", dev(em="on"), ram="16TiB"))
    (b,) = d.blockers
    assert "16 TiB" in b.message and "8 TiB" in b.message and "46c7633114" in b.source
    assert TYPE1_RAM_LIMIT == 8 << 40

    # A realize error ends QEMU's start-up: later devices are not realized at all.
    d = decide(scenario("master", dev("vf0", em="on", log=True), dev("vf1", log=True),
                        viommu=True))
    assert [(b.code, b.device, b.error) for b in d.blockers] == [(VIOMMU, "vf0", True)]
    assert any("vf1 never realized" in n for n in d.notes)
    assert d.migratable_devices == ()


def test_8_0_blockers_are_global() -> None:
    d = decide(scenario("8.0", dev("vf0", log=True, em="on"), dev("vf1", log=True, em="on"),
                        viommu=True))
    assert [(b.code, b.device) for b in d.blockers] == [(VIOMMU, None), (MULTIPLE_DEVICES, None)]
    assert d.migratable_devices == ("vf0", "vf1")


def test_realize_blockers_matches_decide() -> None:
    s = scenario("8.2", dev("vf0"), dev("vf1", log=True))
    blockers, migratable = realize_blockers(s)
    assert blockers == decide(s).blockers
    assert migratable == ("vf0", "vf1")


# --- type1 pinned scope, unmap queries ------------------------------------------------


def test_type1_pinned_scope() -> None:
    # Every IOMMU-backed group counts as non-pinned until its driver pins
    # (num_non_pinned_groups in vfio_iommu_type1.c).
    both = decide(scenario("master", dev("vf0", p2p=True, em="on", pins=(0,)),
                           dev("vf1", p2p=True, em="on", pins=(1,))))
    assert both.method is TYPE1 and both.type1_pinned_scope
    assert both.pinned_pages == frozenset({0, 1})
    assert both.type1_reported_pages([0, 1]) == frozenset({0, 1})
    one = decide(scenario("master", dev("vf0", p2p=True, em="on", pins=(0,)),
                          dev("vf1", p2p=True, em="on")))
    assert not one.type1_pinned_scope
    assert one.type1_reported_pages([0, 1]) == frozenset({0, 1})  # every mapped page
    assert one.type1_reported_pages([1]) == frozenset({1})
    single = decide(scenario("master", dev(em="on", pins=(1,))))
    assert single.type1_pinned_scope and single.type1_reported_pages([0, 1]) == frozenset({1})
    assert any("does not pin" in n for n in single.notes)  # writes page 0 outside its pins
    mutated = decide(scenario("master", dev("vf0", p2p=True, em="on", pins=(0,)),
                              dev("vf1", p2p=True, em="on"),
                              mutations=("type1_ignores_unpinned_groups",)))
    assert mutated.type1_pinned_scope
    assert mutated.type1_reported_pages([0, 1]) == frozenset({0})
    iommufd = decide(scenario("master", dev(em="on", pins=(0,)), iommu="iommufd", hw=True))
    assert not iommufd.type1_pinned_scope


@pytest.mark.parametrize(
    ("profile", "iommu", "hw", "log", "expected"),
    [
        # legacy type1: unmap-with-bitmap (9e7b0442f2) or unmap-then-query, every profile
        *[(p, "type1", False, log, True) for p in PROFILE_NAMES for log in (False, True)],
        # iommufd: no dirty query in iommufd_cdev_unmap() before master (Q9)
        ("9.1", "iommufd", True, False, False),
        ("10.2", "iommufd", True, False, False),
        ("10.2", "iommufd", True, True, False),
        ("10.2", "iommufd", False, False, False),
        # master: NO_CLEAR query before unmap (f051dbeb91), unmap-then-query otherwise
        ("master", "iommufd", True, False, True),
        ("master", "iommufd", True, True, True),
        ("master", "iommufd", False, False, True),
    ],
)
def test_unmap_queries_dirty(profile: str, iommu: str, hw: bool, log: bool,
                             expected: bool) -> None:
    s = scenario(profile, dev(log=log, em="on"), viommu=True, iommu=iommu, hw=hw)
    assert unmap_queries_dirty(s) is expected
    assert decide(s).unmap_queries_dirty is expected
    mutated = scenario(profile, dev(log=log, em="on"), viommu=True, iommu=iommu, hw=hw,
                       mutations=("no_unmap_dirty_query",))
    assert not decide(mutated).unmap_queries_dirty


def test_precopy_sync_opt_out() -> None:
    s = scenario_from_dict({"qemu": "8.1", "devices": [
        {"name": "vf0", "dma_logging": True,
         "properties": {"x-pre-copy-dirty-page-tracking": "off"}}]}, "specs/t.toml")
    d = decide(s)
    assert d.precopy_sync_opt_out == ("vf0",)
    assert PROFILES["8.1"].precopy_sync_suppressing_states == frozenset({"RUNNING", "PRE_COPY"})
    assert "RUNNING_P2P" in PROFILES["8.2"].precopy_sync_suppressing_states


# --- the profiles: named flags, one replace() per release, documented -------------------


def _flag_cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, frozenset):
        order = ("RUNNING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P")
        assert value <= set(order)
        return ", ".join(s for s in order if s in value)
    return f"`{value}`"


def test_every_profile_flag_is_documented_with_its_value_per_profile() -> None:
    """docs/spec-files.md's profile table states each flag's value for each profile, as
    model/profiles.py has it (and names nothing else)."""
    import dataclasses
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "spec-files.md").read_text()
    section = text.split("## QEMU profiles", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    header = next(line for line in section.splitlines() if line.startswith("| flag |"))
    assert [c.strip() for c in header.strip("|").split("|")][2:-1] == list(PROFILE_NAMES)
    documented = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        documented[cells[0].strip("`")] = cells[2:2 + len(PROFILE_NAMES)]
        assert cells[-1], f"{cells[0]}: no commit"
    flags = [f.name for f in dataclasses.fields(PROFILES["master"]) if f.name not in ("name", "source")]
    assert list(documented) == flags
    for flag in flags:
        assert documented[flag] == [_flag_cell(getattr(PROFILES[p], flag)) for p in PROFILE_NAMES], flag


def test_each_release_changes_something_and_only_flags() -> None:
    """A release differs from its predecessor in at least one named flag (or says why it
    does not); the profiles carry no release ordering for code to compare (no at_least)."""
    import dataclasses

    from model.profiles import UNCHANGED_RELEASES

    chain = list(PROFILES.values())
    for before, after in zip(chain, chain[1:], strict=False):
        changed = [f.name for f in dataclasses.fields(after)
                   if f.name not in ("name", "source") and getattr(before, f.name) != getattr(after, f.name)]
        assert bool(changed) is (after.name not in UNCHANGED_RELEASES), after.name
    assert not hasattr(PROFILES["master"], "at_least")


def test_no_code_compares_release_names() -> None:
    """Behaviour differences are read from the profile's flags, never from the release name."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"""(qemu|profile\.name|\.name)\s*(==|!=|<|>|in)\s*\(?["'](8|9|10|11)\.\d""")
    for path in [*root.glob("model/**/*.py"), *root.glob("cli/**/*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.relative_to(root)}:{number}: {line.strip()}"
            assert "at_least(" not in line, f"{path.relative_to(root)}:{number}"


def test_log_sync_gating_flag_decides_the_all_dirty_fallback() -> None:
    """QEMU 10.0's log_sync gating (0ae05e087f, d77e85dbd7) is one flag: the abstract model's
    all-dirty report and the executor's method 'none' follow it, profile by profile."""
    from model.concrete.plan import stepped_config
    from model.fsm.kernel.builtin import default_kernel
    from model.migration.config import make_config

    for name in PROFILE_NAMES:
        if not PROFILES[name].has_iommufd_backend:
            continue
        s = scenario(name, dev(em="on"), iommu="iommufd")
        d = decide(s)
        assert d.method is Method.ALL_DIRTY
        gated = PROFILES[name].all_dirty_unreachable
        assert make_config(s, d, default_kernel()).all_dirty_reports is not gated
        assert stepped_config(s, d).method == ("none" if gated else "all-dirty")
    assert [p for p in PROFILE_NAMES if PROFILES[p].all_dirty_unreachable] == [
        "10.0", "10.1", "10.2", "master"]


# --- the two mutations that must change the decision ------------------------------------


def test_mutations_change_the_decision() -> None:
    plain = scenario("9.1", LOGGING_VF, viommu=True)
    mutated = scenario("9.1", LOGGING_VF, viommu=True,
                       mutations=("allow_viommu_device_tracking",))
    assert decide(plain).blocked and not decide(mutated).blocked
    assert decide(mutated).method is DEVICE

    args = (dev("vf0", p2p=True, log=True), dev("vf1", p2p=True))
    plain = scenario("master", *args, iommu="iommufd", hw=True)
    mutated = scenario("master", *args, iommu="iommufd", hw=True,
                       mutations=("device_logging_for_mixed_container",))
    assert choose_method(plain) == (HW, frozenset())
    assert choose_method(mutated) == (DEVICE, frozenset({"vf0"}))
    assert decide(mutated).logging_devices == frozenset({"vf0"})


# --- hypothesis: properties over every profile ------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    qemu = draw(st.sampled_from(PROFILE_NAMES))
    profile = PROFILES[qemu]
    pages = draw(st.integers(1, 3))
    count = draw(st.integers(1, 3))
    page_sets = st.lists(st.integers(0, pages - 1), unique=True, max_size=pages)
    em_values = ["on", "off"] if qemu == "8.0" else ["on", "off", "auto"]
    devices = []
    for i in range(count):
        props: dict[str, Any] = {
            "enable-migration": draw(st.sampled_from(em_values)),
            "x-pre-copy-dirty-page-tracking": draw(st.sampled_from(["on", "off", "auto"])),
        }
        if profile.has_device_dirty_page_tracking_property:
            props["x-device-dirty-page-tracking"] = draw(st.sampled_from(["on", "off", "auto"]))
        devices.append({
            "name": f"vf{i}",
            "features": draw(st.lists(st.sampled_from(["p2p", "pre-copy"]), unique=True)),
            "dma_logging": draw(st.booleans()),
            "dma_pages": draw(page_sets),
            "pins": draw(page_sets),
            "properties": props,
        })
    iommu = draw(st.sampled_from(["type1", "iommufd"] if profile.has_iommufd_backend
                                 else ["type1"]))
    data = {
        "qemu": qemu,
        "vm": {"pages": pages, "viommu": draw(st.booleans()),
               "ram": draw(st.sampled_from(["16GiB", "8TiB", "16TiB"]))},
        "host": {"iommu": iommu,
                 "iommu_dirty_tracking": iommu == "iommufd" and draw(st.booleans())},
        "devices": devices,
        "migration": {"postcopy": profile.refuses_postcopy and draw(st.booleans())},
        "mutations": {m: True for m in draw(st.lists(st.sampled_from(sorted(MUTATIONS)),
                                                     unique=True, max_size=2))},
    }
    return scenario_from_dict(data, "specs/generated.toml")


def _without(s: Scenario, mutation: str) -> Scenario:
    from dataclasses import replace
    return replace(s, mutations=s.mutations - {mutation})


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_device_logging_only_when_every_device_logs(s: Scenario) -> None:
    d = decide(_without(s, "device_logging_for_mixed_container"))
    if d.method is DEVICE:
        assert all(device_dirty_tracking_enabled(x, s.profile) for x in s.devices)
        assert all(x.dma_logging for x in s.devices)
        assert d.logging_devices == {x.name for x in s.devices}


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_viommu_never_runs_device_logging(s: Scenario) -> None:
    d = decide(_without(s, "allow_viommu_device_tracking"))
    if s.vm.viommu and d.method is DEVICE:
        assert d.blocked
    if s.vm.viommu and s.qemu != "master":
        assert d.blocked  # every profile up to 10.2 blocks any vIOMMU setup


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_multi_device_without_p2p_always_blocked(s: Scenario) -> None:
    d = decide(s)
    if len(s.devices) > 1 and not all(x.has_p2p for x in s.devices):
        assert d.blocked
    if len(s.devices) > 1 and s.qemu in ("8.0", "8.1"):
        assert d.blocked


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_decision_is_consistent(s: Scenario) -> None:
    d = decide(s)
    assert d == decide(s)  # pure
    assert d.blocked == bool(d.blockers)
    assert set(d.blocked_by) <= set(BLOCKER_CODES)
    _realize_error_is_last(s, d)
    _method_fits_the_host(s, d)
    if not d.blocked:
        _unblocked_devices_are_migratable(s, d)
    if s.qemu != "master":
        assert "type1-large-ram" not in d.blocked_by


def _realize_error_is_last(s: Scenario, d: TrackingDecision) -> None:
    errors = [b for b in d.blockers if b.error]
    assert len(errors) <= 1
    if errors:
        assert d.blockers[-1] is errors[0]  # QEMU stops at the first realize error
        assert s.device(errors[0].device or "").properties.enable_migration == "on"
        assert s.qemu != "8.0"


def _method_fits_the_host(s: Scenario, d: TrackingDecision) -> None:
    if d.method in (HW, ALL):
        assert s.host.iommu == "iommufd"
    if d.method is HW:
        assert s.host.iommu_dirty_tracking
    if d.method is TYPE1:
        assert s.host.iommu == "type1"


def _unblocked_devices_are_migratable(s: Scenario, d: TrackingDecision) -> None:
    # Every device was realized with a migration object ...
    assert d.migratable_devices == tuple(x.name for x in s.devices)
    # ... and (8.1+) under AUTO each has device or IOMMU dirty tracking.
    for x in s.devices:
        if s.qemu != "8.0" and x.properties.enable_migration == "auto":
            iommu_hw = (s.host.iommu_dirty_tracking
                        and s.profile.auto_accepts_iommu_dirty_tracking)
            assert device_dirty_tracking_enabled(x, s.profile) or iommu_hw


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_allow_viommu_device_tracking_only_removes_blockers(s: Scenario) -> None:
    from dataclasses import replace
    base = decide(_without(s, "allow_viommu_device_tracking"))
    mutated = decide(replace(s, mutations=s.mutations | {"allow_viommu_device_tracking"}))
    assert mutated.method is base.method
    assert len(mutated.blockers) <= len(base.blockers) or base.realize_failed
    if not base.realize_failed:  # (an error hides the devices after it)
        assert set(mutated.blocked_by) <= set(base.blocked_by) | {"postcopy"}
    if not s.vm.viommu:
        assert mutated == replace(base, mutations_applied=mutated.mutations_applied,
                                  notes=mutated.notes)
