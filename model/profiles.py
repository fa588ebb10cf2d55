"""QEMU behaviour profiles: what changed between the QEMU releases the model covers.

A scenario names a profile (``qemu = "9.1"``); everything in the model that depends on the
QEMU version reads a named behaviour flag of the :class:`Profile` here, never the release
name, so the per-version differences live in one place: each release is the previous one
with what changed in it (``replace(previous, ...)``).  Each flag cites the QEMU commit
that introduced the behaviour (commits from docs/sources.md#qemu-releases,
checked against the QEMU history; release commits are the "Update version for vX.Y.0
release" commits); docs/spec-files.md lists every flag with its value per profile.

"master" is upstream development towards QEMU 11.0 (version 10.2.50, February 2026): it adds
the "relax the vIOMMU check" series on top of 10.2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class EnableMigrationProperty(StrEnum):
    """How the device opts in to migration."""

    # 8.0: experimental boolean ``x-enable-migration``, default off
    # (hw/vfio/pci.c property table at the 8.0 release c1eb2ddf0f).
    EXPERIMENTAL_BOOL = "x-enable-migration"
    # 8.1+: OnOffAuto ``enable-migration``, default auto (8bbcb64a71).
    ON_OFF_AUTO = "enable-migration"


class MultiDeviceRule(StrEnum):
    """When more than one migratable VFIO device is a blocker."""

    # 8.0/8.1: any second migratable device blocks (29d81b71aa).
    ANY = "any"
    # 8.2+: allowed when every migratable device has VFIO_MIGRATION_P2P (5c7a4b6035).
    ALL_P2P = "all-p2p"


class MultiDeviceOnError(StrEnum):
    """When ``enable-migration=on`` turns the multi-device condition into a realize error."""

    NEVER = "never"  # 8.0: no "on" semantics at all
    # 8.1: only while the global blocker is not yet installed; a device hot-added after
    # the blocker exists was accepted (vfio_block_multiple_devices_migration, 8bbcb64a71).
    FIRST_ONLY = "first-only"
    # 8.2+: every device with enable-migration=on fails while the condition holds
    # (8118349b1b, "Fail adding device with enable-migration=on and existing blocker").
    ALWAYS = "always"


class ViommuRule(StrEnum):
    """Which devices a vIOMMU blocks."""

    # 8.0: one global blocker when any VFIO address space is not system memory
    # (vfio_block_giommu_migration, e46883204c).
    GLOBAL = "global"
    # 8.1..10.2: a per-device blocker for every migratable device behind a vIOMMU
    # (vfio_viommu_preset in vfio_migration_realize, 3c26c80a0a).
    EVERY_DEVICE = "every-device"
    # master: only devices that would use device dirty tracking (0e3c1e2b2b).
    DEVICE_TRACKING_ONLY = "device-tracking-only"


@dataclass(frozen=True)
class Profile:
    """The behaviour of one QEMU release, as far as the model needs it.

    Every difference between releases is one of these named flags; the model reads the
    flag, never the release name (docs/spec-files.md lists each flag per profile).
    """

    name: str
    source: str  # release commit (or master snapshot) the flags were read at

    enable_migration_property: EnableMigrationProperty
    # Under enable-migration=auto a device needs a usable dirty-tracking method (8.1+,
    # 8bbcb64a71); 8.0 migrated without one and marked every page dirty (b051a3f640).
    auto_requires_dirty_tracking: bool
    # AUTO accepts IOMMU (iommufd hardware) dirty tracking in lieu of device DMA logging
    # (9.1, f48b472450); before, only device DMA logging counted.
    auto_accepts_iommu_dirty_tracking: bool
    # The -device property x-device-dirty-page-tracking exists (9.1, 30b9167785).
    has_device_dirty_page_tracking_property: bool
    # The iommufd backend exists (first released in 9.0, 5ee3dc7af7, so first in 9.1 among
    # the profiles) and uses hardware dirty tracking (9.1, dddfd8d667 / 52ce88229c /
    # 7c30710bd9).
    has_iommufd_backend: bool
    iommufd_hw_dirty_tracking: bool
    multi_device_rule: MultiDeviceRule
    multi_device_on_error: MultiDeviceOnError
    viommu_rule: ViommuRule
    # type1 container + guest RAM beyond the unmap_bitmap limit is a realize error under
    # enable-migration=on (master, 46c7633114, page-size fix e3c659fee0).
    type1_large_ram_blocker: bool
    # iommufd queries the hwpt dirty bits (NO_CLEAR) before a vIOMMU unmap (master,
    # 31ec4aadd0 / f051dbeb91 / e98a1c7049); before, iommufd_cdev_unmap() did not query.
    iommufd_unmap_queries_dirty: bool
    # vfio_save_prepare() refuses postcopy-ram and background snapshot (8.2, bf7ef7a2da).
    refuses_postcopy: bool
    # The device states in which a device with x-pre-copy-dirty-page-tracking=off
    # suppresses the container's log_sync (vfio_devices_all_dirty_tracking /
    # vfio_log_sync_needed): 8.0 RUNNING only; 8.1 adds PRE_COPY (eda7362af9); 8.2 uses
    # vfio_device_state_is_running/_is_precopy, adding the P2P states (3d4d0f0e06).
    precopy_sync_suppressing_states: frozenset[str]
    # The source moves PRE_COPY-capable devices to PRE_COPY at save_setup (8.1, eda7362af9);
    # 8.0 kept devices RUNNING until the VM stopped.
    uses_pre_copy: bool
    # Switchover-ack capability exists (8.1, 745c42912a).
    has_switchover_ack: bool
    # P2P devices are quiesced (RUNNING_P2P / PRE_COPY_P2P) by a prepare callback before
    # any device stops (8.2, vfio_vmstate_change_prepare, 94f775e428).
    p2p_prepare: bool
    # STOP_COPY -> STOP happens in save_cleanup, outside downtime (8.2, 5485298ce0);
    # before, inside save_live_complete_precopy.
    stop_copy_to_stop_in_cleanup: bool
    # VFIO's log_sync (and the sync of a vIOMMU unmap) runs only once dirty tracking
    # "started" (vfio_log_sync_needed() -> vfio_container_dirty_tracking_is_started(),
    # 10.0, 0ae05e087f / 6e9df66e8a), where 8.0-9.2 asked whether the migration was
    # active.  vfio_container_set_dirty_page_tracking() returns before setting
    # dirty_pages_started when the container has no dirty-tracking support (d77e85dbd7,
    # 10.0), so such a container never counts as started: the all-dirty fallback of
    # vfio_container_query_dirty_bitmap() is never reached from log_sync, and the writes
    # of a device without any tracking (allowed with enable-migration=on) are reported by
    # nobody [inference from the code, not run].
    log_sync_needs_tracking_started: bool

    def __str__(self) -> str:
        return self.name if self.name == "master" else f"QEMU {self.name}"


_RUNNING_ONLY = frozenset({"RUNNING"})
_RUNNING_PRE_COPY = frozenset({"RUNNING", "PRE_COPY"})
_RUNNING_PRE_COPY_P2P = frozenset({"RUNNING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"})

# Each release is the previous one with what changed in it (commit per flag), so "what
# changed in release X" is the one replace() call of X.  A release the model does not
# cover yet (9.0, 9.2, 10.0, 10.1) goes in between: base it on its predecessor, move the
# flags that changed in it out of its successor's replace(), and base the successor on it.

QEMU_8_0 = Profile(
    name="8.0",
    source="c1eb2ddf0f (v8.0.0)",
    # experimental boolean x-enable-migration, default off (hw/vfio/pci.c at c1eb2ddf0f)
    enable_migration_property=EnableMigrationProperty.EXPERIMENTAL_BOOL,
    auto_requires_dirty_tracking=False,  # no dirty tracking: all pages dirty (b051a3f640)
    auto_accepts_iommu_dirty_tracking=False,
    has_device_dirty_page_tracking_property=False,
    has_iommufd_backend=False,
    iommufd_hw_dirty_tracking=False,
    multi_device_rule=MultiDeviceRule.ANY,  # 29d81b71aa
    multi_device_on_error=MultiDeviceOnError.NEVER,  # no "on" semantics
    viommu_rule=ViommuRule.GLOBAL,  # vfio_block_giommu_migration, e46883204c
    type1_large_ram_blocker=False,
    iommufd_unmap_queries_dirty=False,
    refuses_postcopy=False,
    precopy_sync_suppressing_states=_RUNNING_ONLY,
    uses_pre_copy=False,
    has_switchover_ack=False,
    p2p_prepare=False,
    stop_copy_to_stop_in_cleanup=False,
    log_sync_needs_tracking_started=False,  # log_sync while migration_is_setup_or_active
)

QEMU_8_1 = replace(
    QEMU_8_0,
    name="8.1",
    source="7e5a8bb223 (v8.1.0)",
    enable_migration_property=EnableMigrationProperty.ON_OFF_AUTO,  # 8bbcb64a71
    auto_requires_dirty_tracking=True,  # 8bbcb64a71
    multi_device_on_error=MultiDeviceOnError.FIRST_ONLY,  # 8bbcb64a71
    viommu_rule=ViommuRule.EVERY_DEVICE,  # 3c26c80a0a
    precopy_sync_suppressing_states=_RUNNING_PRE_COPY,  # eda7362af9
    uses_pre_copy=True,  # eda7362af9
    has_switchover_ack=True,  # 745c42912a
)

QEMU_8_2 = replace(
    QEMU_8_1,
    name="8.2",
    source="1600b9f46b (v8.2.0)",
    multi_device_rule=MultiDeviceRule.ALL_P2P,  # 5c7a4b6035
    multi_device_on_error=MultiDeviceOnError.ALWAYS,  # 8118349b1b
    refuses_postcopy=True,  # bf7ef7a2da
    precopy_sync_suppressing_states=_RUNNING_PRE_COPY_P2P,  # 3d4d0f0e06
    p2p_prepare=True,  # 94f775e428
    stop_copy_to_stop_in_cleanup=True,  # 5485298ce0
)

QEMU_9_1 = replace(
    QEMU_8_2,
    name="9.1",
    source="fd1952d814 (v9.1.0)",
    auto_accepts_iommu_dirty_tracking=True,  # f48b472450
    has_device_dirty_page_tracking_property=True,  # 30b9167785
    has_iommufd_backend=True,  # 5ee3dc7af7 (released in 9.0)
    iommufd_hw_dirty_tracking=True,  # dddfd8d667 / 52ce88229c / 7c30710bd9
)

QEMU_10_2 = replace(
    QEMU_9_1,
    name="10.2",
    source="698104725e (v10.2.0)",
    log_sync_needs_tracking_started=True,  # 0ae05e087f + d77e85dbd7 (released in 10.0)
)

MASTER = replace(
    QEMU_10_2,
    name="master",
    source="master 10.2.50 (Feb 2026, towards 11.0)",
    viommu_rule=ViommuRule.DEVICE_TRACKING_ONLY,  # 0e3c1e2b2b
    type1_large_ram_blocker=True,  # 46c7633114, e3c659fee0
    iommufd_unmap_queries_dirty=True,  # 31ec4aadd0 / f051dbeb91 / e98a1c7049
)

#: The profiles in release order.
PROFILES: dict[str, Profile] = {
    p.name: p for p in (QEMU_8_0, QEMU_8_1, QEMU_8_2, QEMU_9_1, QEMU_10_2, MASTER)
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(name: str) -> Profile:
    """The profile called ``name``; KeyError if there is none (callers validate first)."""
    return PROFILES[name]
