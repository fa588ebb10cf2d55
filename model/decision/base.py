"""What QEMU's dirty-tracking decision is made of: blockers, the decision record and the
QEMU sources the rules cite (the method names and blocker codes are contract names, in
:mod:`model.contract`).

:mod:`model.decision.tracking` holds the rules and :mod:`model.decision.notes` the
explanations; both build on the types here (re-exported by ``tracking``, which callers
import them from).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# The method names and blocker codes are contract names (the JSON output and the spec
# files' [check].tracking_method / blocked_by use them): they live in model.contract.
from model.contract import (
    PAGE_SIZE,
    Method,
)
from model.scenario import DeviceConfig


class Stage(StrEnum):
    REALIZE = "realize"  # vfio_migration_realize(): blocker installed or realize error
    SAVE_PREPARE = "save_prepare"  # vfio_save_prepare(): migration start refused


# type1's unmap_bitmap limit: DIRTY_BITMAP_SIZE_MAX (kernel vfio_iommu_type1.c) is the bytes
# for INT_MAX pages rounded to u64 words = 256 MiB, i.e. 2^31 pages; QEMU compares guest RAM
# with max_dirty_bitmap_size * 8 * smallest dirty page size (vfio_dirty_tracking_exceed_limit,
# master 46c7633114 + e3c659fee0).  With 4 KiB pages: 8 TiB.
TYPE1_DIRTY_BITMAP_BYTES = 1 << 28
TYPE1_RAM_LIMIT = TYPE1_DIRTY_BITMAP_BYTES * 8 * PAGE_SIZE


@dataclass(frozen=True)
class Blocker:
    """One reason QEMU will not migrate this VM."""

    code: str  # one of BLOCKER_CODES
    device: str | None  # None: a global blocker
    message: str
    source: str
    stage: Stage
    error: bool  # the device fails to realize (enable-migration=on), QEMU does not start


@dataclass(frozen=True)
class TrackingDecision:
    profile: str
    method: Method
    blockers: tuple[Blocker, ...]
    blocked: bool
    # type1 GET_BITMAP reports only pinned pages (every IOMMU-backed group pins).
    type1_pinned_scope: bool
    # a vIOMMU unmap during tracking fetches the range's dirty bits (before the mapping
    # disappears, or, for device logs and all-dirty, for the translated range right after).
    unmap_queries_dirty: bool
    notes: tuple[str, ...]
    sources: tuple[str, ...]
    # devices that start DMA logging and are asked for reports (method device-dma-logging).
    logging_devices: frozenset[str] = frozenset()
    # devices holding a migration object after realize (they get save/load handlers).
    migratable_devices: tuple[str, ...] = ()
    # union of the devices' pinned pages (what type1 reports under pinned scope).
    pinned_pages: frozenset[int] = frozenset()
    # devices with x-pre-copy-dirty-page-tracking=off: while any of them is in one of
    # profile.precopy_sync_suppressing_states, the container skips log_sync.
    precopy_sync_opt_out: tuple[str, ...] = ()
    mutations_applied: tuple[str, ...] = ()
    # per device (scenario order): its iommufd hwpt was allocated dirty-capable
    # (vbasedev->iommu_dirty_tracking); all false off iommufd or before 9.1.
    hwpt_dirty: tuple[bool, ...] = ()

    @property
    def blocked_by(self) -> tuple[str, ...]:
        """Reason codes, each once, in the order QEMU meets them."""
        return tuple(dict.fromkeys(b.code for b in self.blockers))

    @property
    def realize_failed(self) -> bool:
        return any(b.error for b in self.blockers)

    def type1_reported_pages(self, mapped: Iterable[int]) -> frozenset[int]:
        """Pages a type1 GET_BITMAP (or unmap-with-bitmap) reports for ``mapped`` pages.

        vfio_iova_dirty_bitmap()/update_user_bitmap() in vfio_iommu_type1.c: while any
        IOMMU-backed group is outside pinned scope every mapped page is reported; else the
        per-mapping bitmap, re-populated with the pinned pages after every report.
        """
        mapped = frozenset(mapped)
        return mapped & self.pinned_pages if self.type1_pinned_scope else mapped


# --- sources (cited in decisions) --------------------------------------------------------

SRC_REALIZE = "hw/vfio/migration.c vfio_migration_realize()"
SRC_8_0_REALIZE = f"{SRC_REALIZE} + hw/vfio/pci.c x-enable-migration (QEMU 8.0, c1eb2ddf0f)"
SRC_ENABLE_MIGRATION = f"{SRC_REALIZE}: enable-migration OnOffAuto (8.1, 8bbcb64a71)"
SRC_NO_DIRTY_8_1 = f"{SRC_REALIZE}: AUTO requires device dirty tracking (8.1, 8bbcb64a71)"
SRC_NO_DIRTY_9_1 = (f"{SRC_REALIZE}: AUTO accepts IOMMU dirty tracking (9.1, f48b472450); "
                    "x-device-dirty-page-tracking (9.1, 30b9167785)")
SRC_LARGE_RAM = ("hw/vfio/migration.c vfio_dirty_tracking_exceed_limit() "
                 "(master, 46c7633114, e3c659fee0)")
SRC_MULTI_8_0 = "hw/vfio/common.c vfio_block_multiple_devices_migration() (8.0, 29d81b71aa)"
SRC_MULTI_8_1 = ("hw/vfio/common.c vfio_block_multiple_devices_migration(): "
                 "enable-migration=on errors (8.1, 8bbcb64a71)")
SRC_MULTI_P2P = ("vfio_multiple_devices_migration_is_supported(): all P2P (8.2, 5c7a4b6035); "
                 "enable-migration=on fails even with the blocker present (8.2, 8118349b1b)")
SRC_VIOMMU_8_0 = "hw/vfio/common.c vfio_block_giommu_migration() (8.0, e46883204c)"
SRC_VIOMMU_8_1 = f"{SRC_REALIZE} vfio_viommu_preset(): per device (8.1, 3c26c80a0a)"
SRC_VIOMMU_MASTER = (f"{SRC_REALIZE}: vIOMMU blocks only device dirty tracking users "
                     "(master, 0e3c1e2b2b)")
SRC_POSTCOPY = "hw/vfio/migration.c vfio_save_prepare() (8.2, bf7ef7a2da)"
SRC_BACKGROUND_SNAPSHOT = "hw/vfio/migration.c vfio_save_prepare() (8.2, 615379764a)"
SRC_HWPT = ("hw/vfio/iommufd.c iommufd_cdev_autodomains_get(): join the newest compatible "
            "hwpt, else allocate one dirty-capable iff the IOMMU can (9.1, 5b1e96e654); "
            "kernel: a dirty hwpt refuses a device whose IOMMU cannot track")
SRC_COMPAT = ("kernel drivers/iommu/iommufd/vfio_compat.c iommufd_vfio_iommu_get_info(): no "
              "VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, so QEMU's legacy container has no dirty "
              "support (vfio_get_iommu_info_migration)")
SRC_METHOD_DEVICE = ("log_global_start: DMA logging when every device supports it "
                     "(vfio_devices_all_device_dirty_tracking, 8.0, 5255bbf4ec/b153402a89); "
                     "9.1+ also honours x-device-dirty-page-tracking=off (30b9167785)")
SRC_METHOD_TYPE1 = ("type1 container tracking VFIO_IOMMU_DIRTY_PAGES "
                    "(vfio_set_dirty_page_tracking / vfio_query_dirty_bitmap, QEMU 5.1+)")
SRC_METHOD_IOMMUFD = ("iommufd hwpt dirty tracking (hw/vfio/iommufd.c set_dirty_tracking / "
                      "query_dirty_bitmap, 9.1, 52ce88229c/7c30710bd9)")
SRC_METHOD_ALL_DIRTY = ("vfio_get_dirty_bitmap / vfio_container_query_dirty_bitmap: no "
                        "container support and not all devices log -> mark range dirty "
                        "(8.0, b051a3f640)")
SRC_TYPE1_SCOPE = ("kernel vfio_iommu_type1.c: num_non_pinned_groups, "
                   "pinned_page_dirty_scope, update_user_bitmap()")
SRC_UNMAP_TYPE1 = ("hw/vfio unmap: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP for container "
                   "tracking, unmap-then-query otherwise (9e7b0442f2, 9a04fe0957)")
SRC_UNMAP_IOMMUFD_OLD = ("hw/vfio/iommufd.c iommufd_cdev_unmap(): no dirty query on "
                         "vIOMMU unmap (9.0..10.2)")
SRC_UNMAP_IOMMUFD_MASTER = ("hw/vfio/iommufd.c iommufd_cdev_unmap(): GET_DIRTY_BITMAP "
                            "NO_CLEAR before unmap (master, 31ec4aadd0/f051dbeb91/e98a1c7049)")
SRC_PRECOPY_SYNC = ("vfio_devices_all_dirty_tracking / vfio_log_sync_needed: "
                    "x-pre-copy-dirty-page-tracking=off skips log_sync (bb0990d174)")


class Collector:
    """Accumulates blockers, notes and sources while rules fire."""

    def __init__(self) -> None:
        self.blockers: list[Blocker] = []
        self.notes: list[str] = []
        self.sources: list[str] = []

    def cite(self, source: str) -> None:
        if source not in self.sources:
            self.sources.append(source)

    def note(self, text: str, source: str | None = None) -> None:
        self.notes.append(text)
        if source:
            self.cite(source)

    def block(self, code: str, device: str | None, message: str, source: str,
              stage: Stage = Stage.REALIZE, error: bool = False) -> None:
        self.blockers.append(Blocker(code, device, message, source, stage, error))
        self.cite(source)




def groups_pin(devices: Iterable[DeviceConfig]) -> bool:
    """The kernel's pinned scope: every IOMMU-backed group has pinned pages.

    A group counts in ``num_non_pinned_groups`` until its driver calls vfio_pin_pages()
    (vfio_iommu_type1.c); each modelled device is its own group and pins iff its ``pins``
    list is non-empty.
    """
    return all(d.pins for d in devices)
