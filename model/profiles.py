"""QEMU behaviour profiles: what changed between the QEMU releases the model covers.

A scenario names a profile (``qemu = "9.1"``) or patches one (``qemu = { base = "master",
<flag> = <value> }``, :func:`apply_overrides`); everything in the model that depends on the
QEMU version reads a named behaviour flag of the :class:`Profile` here, never the release
name, so the per-version differences live in one place: each release is the previous one
with what changed in it (``replace(previous, ...)``, one call per release).  Each flag cites
the QEMU commit that introduced the behaviour (docs/sources.md#qemu-releases, every commit
checked with ``git merge-base --is-ancestor`` against the release commits, the "Update
version for vX.Y.0 release" commits); docs/spec-files.md lists every flag with its value per
profile and what a patch may set it to.

"master" is upstream development towards QEMU 11.0 (version 10.2.50, February 2026): it adds
the "relax the vIOMMU check" series on top of 10.2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
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


class LogSyncGate(StrEnum):
    """When VFIO's part of a dirty sync runs (docs/sources.md#qemu-log-sync)."""

    # 8.0 vfio_devices_all_dirty_tracking(): while migration_is_setup_or_active(), so the
    # first sync of ram_init_bitmaps() during SETUP reaches VFIO.
    SETUP_OR_ACTIVE = "setup-or-active"
    # 8.1-9.2: only in ACTIVE or DEVICE, not during SETUP (ff180c6bd7).
    ACTIVE_OR_DEVICE = "active-or-device"
    # 10.0+ vfio_log_sync_needed(): once dirty tracking "started" (every device DMA-logging,
    # or the container's dirty_pages_started), which again includes SETUP (0ae05e087f).
    TRACKING_STARTED = "tracking-started"


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
    # The iommufd backend exists (9.0, 5ee3dc7af7); its devices get hwpts of their own,
    # allocated dirty-capable when their IOMMU can (iommufd_cdev_autodomains_get, 9.1,
    # 5b1e96e654), and the container uses the hwpts' dirty bits (9.1, dddfd8d667 /
    # 52ce88229c / 7c30710bd9).  In 9.0 an iommufd container has no dirty support.
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
    # vfio_save_prepare() refuses postcopy-ram (8.2, bf7ef7a2da) and background snapshots
    # (8.2, 615379764a).
    refuses_postcopy: bool
    refuses_background_snapshot: bool
    # The device states in which a device with x-pre-copy-dirty-page-tracking=off
    # suppresses the container's log_sync (vfio_devices_all_dirty_tracking /
    # vfio_log_sync_needed): 8.0 RUNNING only; 8.1 adds PRE_COPY (eda7362af9); 8.2 uses
    # vfio_device_state_is_running/_is_precopy, adding the P2P states (3d4d0f0e06).
    precopy_sync_suppressing_states: frozenset[str]
    # The source moves PRE_COPY-capable devices to PRE_COPY at save_setup (8.1, eda7362af9);
    # 8.0 kept devices RUNNING until the VM stopped.
    uses_pre_copy: bool
    # The switchover-ack capability exists (8.1, 745c42912a): with it the source switches
    # over only once the destination acked every PRE_COPY device's initial data.
    has_switchover_ack: bool
    # qemu_savevm_state_iterate() stops at the first iterative handler that has not
    # finished, so VFIO's save_live_iterate runs only once RAM had nothing left to send
    # (90697be889, 8.0 and earlier); 9.0 iterates every handler each time (4e1871c450).
    iterate_serialized: bool
    # P2P devices are quiesced (RUNNING_P2P / PRE_COPY_P2P) by a prepare callback before
    # any device stops (8.2, vfio_vmstate_change_prepare, 94f775e428).
    p2p_prepare: bool
    # STOP_COPY -> STOP happens in save_cleanup, outside downtime (8.2, 5485298ce0);
    # before, inside save_live_complete_precopy.
    stop_copy_to_stop_in_cleanup: bool
    # vfio_migration_set_state() returns without an ioctl when the request is the state QEMU
    # caches (9.1, 64366eddf1); before, it issued the SET, which the driver answers without
    # taking an arc.
    set_state_skips_cached: bool
    # A failed log_global_start fails RAM's save_setup (ram_init_bitmaps ->
    # memory_global_dirty_log_start, which also stops the listeners already started: 9.1,
    # 3688fec892 / 639ec3fbf9), so VFIO's save_setup never runs; before, VFIO only set the
    # stream's error (vfio_set_migration_error) and setup went on.
    log_global_start_fails_setup: bool
    # The destination's load cleanups (VFIO closes its data_fd) run after vm_start(), in
    # migration_incoming_state_destroy() (9.2, 4ce5622908); before, inside
    # qemu_loadvm_state(), before the VM starts.
    load_cleanup_after_vm_start: bool
    # A VFIO SET that fails in the destination's vm_start (its prepare callback, which
    # walks RESUMING -> STOP where the driver validates the loaded state, or the RUNNING
    # callback) aborts the incoming migration instead of running the guest with the reset
    # device.  No release does: vm_state_notify() cannot report a failure (the comment in
    # vfio_vmstate_change_prepare / vfio_vmstate_change, master).  The proposed fix of the
    # finding dst-validation-fault-runs-unloaded, for patches only.
    dst_vm_start_failure_aborts: bool
    # A failed migration of a VM that was not running when it stopped for the switchover
    # (a user's pause) puts back the run state it had, PAUSED (migration_iteration_finish,
    # a4c6275aa1, 8.1); before, a VM in FINISH_MIGRATE went to POSTMIGRATE.
    failure_restores_paused: bool
    # The PRECOPY_FAILED notifier puts a device in the state the VM's run state asks for
    # (STOP under a paused VM) instead of RUNNING.  No release does: every one sets RUNNING
    # (vfio_migration_state_notifier).  The proposed fix of the finding
    # paused-vm-retry-loses-pages, for patches only.
    failure_notifier_follows_runstate: bool
    # When VFIO's log_sync runs: see LogSyncGate (ff180c6bd7 8.1, 0ae05e087f 10.0).
    log_sync_gate: LogSyncGate
    # Under the "tracking started" gate: does a container without dirty-tracking support
    # count as started?  vfio_container_set_dirty_page_tracking() returns before setting
    # dirty_pages_started when the container has no support (d77e85dbd7, 10.0), so no:
    # the all-dirty branch of vfio_container_query_dirty_bitmap() is never reached from a
    # sync, and the writes of a device without any tracking (allowed with
    # enable-migration=on) are reported by nobody.  Before 10.0 the gate did not ask.
    unsupported_container_counts_as_started: bool
    # Multifd device state transfer (10.0: x-migration-multifd-transfer 623af41dd3, send
    # side 6d644baef2, save threads 8305921a91, load threads b1937fd1eb / c59748c1ff): with
    # multifd on, each device's STOP_COPY and state read run in a save thread while RAM does
    # its final pass; the destination writes the state from a load thread vm_start waits for.
    has_multifd_device_state: bool
    # x-migration-load-config-after-iter (10.1, 6380b0a02f): the load thread loads the
    # device config only after the main stream's iterables (default auto: on for ARM).
    has_load_config_after_iter: bool

    def __str__(self) -> str:
        return self.name if self.name.startswith("master") else f"QEMU {self.name}"

    @property
    def all_dirty_unreachable(self) -> bool:
        """The all-dirty fallback never marks a page: log_sync waits for "tracking started"
        and a container without dirty support never starts (10.0+, the finding
        ``all-dirty-10.2-loses-pages``)."""
        return (self.log_sync_gate is LogSyncGate.TRACKING_STARTED
                and not self.unsupported_container_counts_as_started)

    @property
    def setup_sync_reaches_vfio(self) -> bool:
        """The sync of ram_init_bitmaps() (in SETUP, right after log_global_start) runs
        VFIO's log_sync: 8.0 and from 10.0, not 8.1-9.2 (ff180c6bd7)."""
        return self.log_sync_gate is not LogSyncGate.ACTIVE_OR_DEVICE


_RUNNING_ONLY = frozenset({"RUNNING"})
_RUNNING_PRE_COPY = frozenset({"RUNNING", "PRE_COPY"})
_RUNNING_PRE_COPY_P2P = frozenset({"RUNNING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"})

# Each release is the previous one with what changed in it (commit per flag), so "what
# changed in release X" is the one replace() call of X.

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
    refuses_background_snapshot=False,
    precopy_sync_suppressing_states=_RUNNING_ONLY,
    uses_pre_copy=False,
    has_switchover_ack=False,
    iterate_serialized=True,  # qemu_savevm_state_iterate() breaks at ret <= 0 (90697be889)
    p2p_prepare=False,
    stop_copy_to_stop_in_cleanup=False,
    set_state_skips_cached=False,
    log_global_start_fails_setup=False,  # log_global_start returns void (8.0)
    load_cleanup_after_vm_start=False,
    dst_vm_start_failure_aborts=False,  # in no release (a fix to check)
    failure_restores_paused=False,  # vm_was_running false: FINISH_MIGRATE -> POSTMIGRATE
    failure_notifier_follows_runstate=False,  # in no release (a fix to check)
    log_sync_gate=LogSyncGate.SETUP_OR_ACTIVE,  # migration_is_setup_or_active (8.0)
    unsupported_container_counts_as_started=False,  # not read under this gate
    has_multifd_device_state=False,
    has_load_config_after_iter=False,
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
    failure_restores_paused=True,  # a4c6275aa1
    log_sync_gate=LogSyncGate.ACTIVE_OR_DEVICE,  # ff180c6bd7
)

QEMU_8_2 = replace(
    QEMU_8_1,
    name="8.2",
    source="1600b9f46b (v8.2.0)",
    multi_device_rule=MultiDeviceRule.ALL_P2P,  # 5c7a4b6035
    multi_device_on_error=MultiDeviceOnError.ALWAYS,  # 8118349b1b
    refuses_postcopy=True,  # bf7ef7a2da
    refuses_background_snapshot=True,  # 615379764a
    precopy_sync_suppressing_states=_RUNNING_PRE_COPY_P2P,  # 3d4d0f0e06
    p2p_prepare=True,  # 94f775e428
    stop_copy_to_stop_in_cleanup=True,  # 5485298ce0
)

QEMU_9_0 = replace(
    QEMU_8_2,
    name="9.0",
    source="c25df57ae8 (v9.0.0)",
    has_iommufd_backend=True,  # 5ee3dc7af7
    iterate_serialized=False,  # 4e1871c450
)

QEMU_9_1 = replace(
    QEMU_9_0,
    name="9.1",
    source="fd1952d814 (v9.1.0)",
    auto_accepts_iommu_dirty_tracking=True,  # f48b472450
    has_device_dirty_page_tracking_property=True,  # 30b9167785
    iommufd_hw_dirty_tracking=True,  # 5b1e96e654, dddfd8d667 / 52ce88229c / 7c30710bd9
    set_state_skips_cached=True,  # 64366eddf1
    log_global_start_fails_setup=True,  # 3688fec892 / 639ec3fbf9
)

QEMU_9_2 = replace(
    QEMU_9_1,
    name="9.2",
    source="ae35f033b8 (v9.2.0)",
    load_cleanup_after_vm_start=True,  # 4ce5622908
)

QEMU_10_0 = replace(
    QEMU_9_2,
    name="10.0",
    source="7c949c53e9 (v10.0.0)",
    log_sync_gate=LogSyncGate.TRACKING_STARTED,  # 0ae05e087f (and 6e9df66e8a for unmaps)
    unsupported_container_counts_as_started=False,  # d77e85dbd7: early return, not started
    has_multifd_device_state=True,  # 623af41dd3 / 6d644baef2 / 8305921a91 / b1937fd1eb
)

QEMU_10_1 = replace(
    QEMU_10_0,
    name="10.1",
    source="f8b2f64e23 (v10.1.0)",
    has_load_config_after_iter=True,  # 6380b0a02f
)

# 10.2 changes none of the behaviour the flags describe (read: git log f8b2f64e23..698104725e
# of hw/vfio/{migration,listener,container*,iommufd,migration-multifd,device}.c and
# migration/{migration,savevm,ram}.c: file renames, error plumbing, CPR, postcopy and
# unmap-all changes); it stays a profile because specs name it.
QEMU_10_2 = replace(
    QEMU_10_1,
    name="10.2",
    source="698104725e (v10.2.0)",
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
    p.name: p for p in (QEMU_8_0, QEMU_8_1, QEMU_8_2, QEMU_9_0, QEMU_9_1, QEMU_9_2, QEMU_10_0,
                        QEMU_10_1, QEMU_10_2, MASTER)
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
#: Releases in which no flag changes, with why they are still profiles.
UNCHANGED_RELEASES: dict[str, str] = {
    "10.2": "no behaviour the model reads changed between 10.1 and 10.2",
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; KeyError if there is none (callers validate first)."""
    return PROFILES[name]


# --- a reviewer's own patch: flag overrides -------------------------------------------

#: Flags recorded per release from the code whose paths the flow does not model yet: a
#: patch may not set them, since nothing would read the new value and the spec would pass
#: for the wrong reason.  None is left (the config load ordering, the last one, is
#: model/migration/config_load.py).
UNMODELLED_FLAGS: tuple[str, ...] = ()
#: The flags a spec may override (every behaviour flag the model reads; not ``name`` /
#: ``source`` and not the :data:`UNMODELLED_FLAGS`).
FLAG_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Profile)
                                    if f.name not in ("name", "source", *UNMODELLED_FLAGS))
_ENUMS: dict[str, type[StrEnum]] = {
    "enable_migration_property": EnableMigrationProperty,
    "multi_device_rule": MultiDeviceRule,
    "multi_device_on_error": MultiDeviceOnError,
    "viommu_rule": ViommuRule,
    "log_sync_gate": LogSyncGate,
}
_STATE_SETS = ("precopy_sync_suppressing_states",)
#: The device states a state-set flag may name.
SUPPRESSING_STATE_NAMES: tuple[str, ...] = ("RUNNING", "RUNNING_P2P", "PRE_COPY",
                                            "PRE_COPY_P2P", "STOP_COPY", "STOP")


class OverrideError(ValueError):
    """A flag override a user got wrong: ``flag`` (None: the table itself) and a message."""

    def __init__(self, flag: str | None, message: str) -> None:
        self.flag = flag
        super().__init__(message)


def allowed_values(flag: str) -> tuple[str, ...]:
    """What a spec may write for ``flag``: true/false, an enumeration's values, or the
    device states of a state set."""
    if flag in _ENUMS:
        return tuple(v.value for v in _ENUMS[flag])
    if flag in _STATE_SETS:
        return SUPPRESSING_STATE_NAMES
    return ("true", "false")


def _parse(flag: str, value: object) -> object:
    if flag in _ENUMS:
        enum = _ENUMS[flag]
        if not isinstance(value, str) or value not in {v.value for v in enum}:
            raise OverrideError(flag, f"expected one of {_quoted(allowed_values(flag))}, "
                                      f"got {value!r}")
        return enum(value)
    if flag in _STATE_SETS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OverrideError(flag, "expected an array of device state names")
        bad = [v for v in value if v not in SUPPRESSING_STATE_NAMES]
        if bad:
            raise OverrideError(flag, f'unknown device state "{bad[0]}"; allowed: '
                                      f"{_quoted(SUPPRESSING_STATE_NAMES)}")
        return frozenset(value)
    if not isinstance(value, bool):
        raise OverrideError(flag, f"expected true or false, got {value!r}")
    return value


def apply_overrides(base: Profile, overrides: Mapping[str, object]) -> Profile:
    """``base`` with the behaviour flags in ``overrides`` (spec-file values) changed.

    The result is named after the base and the changed flags (``master+flag=value``), so
    tables and reports say which patch they ran.  Raises :class:`OverrideError` naming the
    flag for an unknown flag or a value it cannot take.
    """
    changes: dict[str, object] = {}
    for flag, raw in overrides.items():
        if flag in UNMODELLED_FLAGS:
            raise OverrideError(flag, f'"{flag}" is recorded per release but no modelled path '
                                      f"reads it yet, so a patch of it would change nothing; "
                                      f"allowed: {', '.join(FLAG_NAMES)}")
        if flag not in FLAG_NAMES:
            raise OverrideError(flag, f'unknown behaviour flag "{flag}"; allowed: '
                                      f"{', '.join(FLAG_NAMES)}")
        changes[flag] = _parse(flag, raw)
    if not changes:
        return base
    label = "+".join(f"{k}={_label(v)}" for k, v in changes.items())
    source = f"{base.source}, patched: {label.replace('+', ', ')}"
    return replace(base, name=f"{base.name}+{label}", source=source, **changes)  # type: ignore[arg-type]


def _label(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset):
        return "[" + ",".join(s for s in SUPPRESSING_STATE_NAMES if s in value) + "]"
    return str(value)


def _quoted(items: tuple[str, ...]) -> str:
    return ", ".join(f'"{i}"' for i in items)
