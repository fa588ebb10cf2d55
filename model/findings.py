"""QEMU findings: behaviours the model shows to lose data or run a guest wrong.

Each finding is a shipped spec that shows it (``spec``, its shortest counterexample is the
spec's own), the code path with functions and commits, how far that path was read, and the
proposed fix.  Where a behaviour flag of :mod:`model.profiles` describes the fix,
``fix_flags`` is the patch (``qemu = { base = <the spec's release>, <flag> = <value> }``)
that ``vfio-migcheck findings`` runs to check that the fix removes the violation.

Nothing here is a result: which releases a finding affects is computed by running its spec
on every profile (``cli/findings.py``), never written down.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    name: str  # the spec's name (file stem under specs/)
    title: str
    configuration: str  # what a user must run for it to happen
    path: tuple[str, ...]  # the code path, step by step, with functions and commits
    checked: str  # how far the path was read ("line by line" / what was inferred)
    fix: str  # the proposed fix, in words
    # the behaviour flags that express the fix (None: no flag models it, the fix is unchecked)
    fix_flags: dict[str, object] | None = field(default=None)

    @property
    def spec(self) -> str:
        return f"specs/{self.name}.toml"


_ALL_DIRTY_PATH = (
    "vfio_container_set_dirty_page_tracking() (hw/vfio/container.c) returns 0 before it sets "
    "dirty_pages_started when the container has no dirty_pages_supported (d77e85dbd7, 10.0)",
    "vfio_log_sync_needed() (hw/vfio/listener.c) asks "
    "vfio_container_dirty_tracking_is_started() first (0ae05e087f, 10.0): false for such a "
    "container unless every device DMA-logs, so vfio_listener_log_sync() does nothing",
    "the all-dirty branch of vfio_container_query_dirty_bitmap() (every page dirty when the "
    "container cannot track) is only reached from log_sync and the unmap notifier, both "
    "gated on 'started' (6e9df66e8a for unmaps): no caller is left",
    "with enable-migration=on vfio_migration_realize() accepts a device without any dirty "
    "tracking (8bbcb64a71), so its DMA after a page was sent is reported by nobody",
)
_FIX_STARTED = ("count a container without dirty-tracking support as started (set "
                "dirty_pages_started before the early return of "
                "vfio_container_set_dirty_page_tracking(), or test dirty_pages_supported in "
                "vfio_container_dirty_tracking_is_started())")

_CONFIG_BEFORE_GIC_PATH = (
    "the source's save thread vfio_multifd_save_complete_precopy_thread() "
    "(hw/vfio/migration-multifd.c, 10.0 8305921a91) queues the device config as the last "
    "multifd buffer; vfio_save_state() puts only an empty end marker in the device's "
    "non-iterable section (vfio_multifd_emit_dummy_eos)",
    "on the destination vfio_load_bufs_thread() (b1937fd1eb), started at the switchover "
    "marker, writes the buffers in order and then calls vfio_load_bufs_thread_load_config() "
    "at once, with no wait on the main stream",
    "the main thread loads the interrupt controller's GICv3 / ITS sections in the "
    "non-iterables phase of qemu_loadvm_state_main() (MIG_PRI_GICV3 / MIG_PRI_GICV3_ITS "
    "sort them before VFIO's, savevm_state_handler_insert): nothing orders the thread's "
    "config load (vfio_pci_load_config: MSI / MSI-X, routed through the ITS on ARM) after "
    "them, the order d329f5032e17 made for the main stream",
    "10.1 (6380b0a02f) adds x-migration-load-config-after-iter, auto = on for an ARM "
    "target: the thread waits for DEV_CONFIG_LOAD_READY in the device's non-iterable "
    "section (vfio_load_state_config_load_ready); hw_compat_10_0 sets it off for machine "
    "types up to 10.0, where the 10.0 order remains",
)

QEMU_FINDINGS: tuple[Finding, ...] = (
    Finding(
        name="all-dirty-10.2-loses-pages",
        title="10.0 regression: a container without dirty tracking never starts, device "
              "writes are lost",
        configuration="a container without dirty-tracking support (here iommufd without "
                      "IOMMU dirty tracking), one device without DMA logging, "
                      "enable-migration=on",
        path=_ALL_DIRTY_PATH,
        checked="line by line at master ece408818d (container.c, listener.c, migration.c "
                "realize) and at the commits named",
        fix=_FIX_STARTED,
        fix_flags={"unsupported_container_counts_as_started": True},
    ),
    Finding(
        name="iommufd-compat-10.0-loses-pages",
        title="the same regression on iommufd's compat container (legacy VFIO API)",
        configuration='[host].iommu = "iommufd-compat", one device without DMA logging, '
                      "enable-migration=on",
        path=("the kernel's compat container (drivers/iommu/iommufd/vfio_compat.c "
              "iommufd_vfio_iommu_get_info()) reports no VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, "
              "so QEMU's legacy container has no dirty_pages_supported "
              "(vfio_get_iommu_info_migration)", *_ALL_DIRTY_PATH[:3]),
        checked="line by line for QEMU as above; the compat container's capabilities read in "
                "the kernel's iommufd_vfio_iommu_get_info() (docs/sources.md#kernel-type1-dirty)",
        fix=_FIX_STARTED,
        fix_flags={"unsupported_container_counts_as_started": True},
    ),
    Finding(
        name="iommufd-mixed-hwpt-loses-pages",
        title="iommufd: a device on a plain hwpt next to a dirty-capable one loses its "
              "writes under enable-migration=auto",
        configuration='[host].iommu = "iommufd", the first -device behind an IOMMU with '
                      "dirty tracking, the second behind one without but with DMA logging; "
                      "enable-migration=auto (the default)",
        path=(
            "iommufd_cdev_autodomains_get() (hw/vfio/iommufd.c, 5b1e96e654, 9.1): vf0 "
            "allocates a hwpt with IOMMU_HWPT_ALLOC_DIRTY_TRACKING and sets the container's "
            "dirty_pages_supported",
            "vf1 cannot attach to it (the kernel refuses a dirty-tracking domain for an IOMMU "
            "without it, -EINVAL, an expected failure there) and allocates a plain hwpt; "
            "QEMU only warns",
            "vfio_migration_realize(): vf0 passes on IOMMU dirty tracking (f48b472450), vf1 "
            "on its DMA logging",
            "log_global_start: not every device DMA-logs "
            "(vfio_devices_all_device_dirty_tracking), so the container's tracking starts: "
            "iommufd_set_dirty_page_tracking() skips hwpts without the dirty flag",
            "every log_sync: iommufd_query_dirty_bitmap() skips the same hwpts, vf1's DMA "
            "logging was never started: its writes reach no bitmap",
        ),
        checked="line by line in hw/vfio/iommufd.c at master ece408818d "
                "(autodomains_get, set_dirty_page_tracking, query_dirty_bitmap); the realize "
                "and log_global_start rules are the model's decision tables, read per release; "
                "the kernel's refusal of the attach is inferred from the IOMMU drivers' "
                "dirty-tracking domain checks, not run",
        fix="when a container mixes dirty-capable and plain hwpts, fall back to what covers "
            "every device (DMA logging if all devices log, else block migration in "
            "vfio_migration_realize() like a device without tracking)",
    ),
    Finding(
        name="dst-validation-fault-runs-unloaded",
        title="the destination runs a reset device when the RESUMING -> STOP validation fails",
        configuration="one device; the driver rejects the loaded state at RESUMING -> STOP "
                      "([migration].device_faults)",
        path=(
            "vm_start() on the destination: vfio_vmstate_change_prepare() asks RESUMING -> "
            "RUNNING_P2P (94f775e428, 8.2); the kernel walks RESUMING -> STOP, where the "
            "driver validates the data",
            "the SET fails: vfio_migration_set_state_or_reset() resets the device "
            "(RUNNING, nothing loaded)",
            "the error cannot stop vm_start(): QEMU's own comment in "
            "vfio_vmstate_change_prepare() says migration should be aborted but "
            "vm_state_notify() cannot report failures; the guest runs with a reset device",
        ),
        checked="line by line in hw/vfio/migration.c (vfio_vmstate_change_prepare, "
                "vfio_vmstate_change, vfio_migration_set_state_or_reset) at master; that a "
                "driver validates at RESUMING -> STOP is the uAPI's (vfio.h)",
        fix="let a VFIO VM-state callback fail the destination's vm_start (what QEMU's "
            "comment asks for: abort the incoming migration instead of running the guest "
            "with the reset device; the completed source keeps its copy for the operator)",
        fix_flags={"dst_vm_start_failure_aborts": True},
    ),
    Finding(
        name="paused-vm-retry-loses-pages",
        title="a paused VM migrated again after a failed attempt loses device writes",
        configuration="a VM the user paused before migrating, one PRE_COPY device; the "
                      "first attempt fails or is cancelled, the user migrates again while "
                      "the VM is still paused",
        path=(
            "the pause (qmp_stop, no migration running): vfio_vmstate_change() puts the "
            "device in STOP",
            "the failed attempt: migration_iteration_finish() does not restart the VM "
            "(migration_stop_vm recorded PAUSED; a4c6275aa1), but migration_cleanup() sends "
            "MIG_EVENT_PRECOPY_FAILED and vfio_migration_state_notifier() sets RUNNING: the "
            "device runs under the paused VM",
            "the second attempt: vfio_save_setup() takes the cached RUNNING device to "
            "PRE_COPY (DMA allowed)",
            "its switchover: vm_stop_force_state() of a VM that is not running only sets "
            "FINISH_MIGRATE (system/cpus.c), so no VM-state callback stops the device",
            "qemu_savevm_state_complete_precopy(): ram_save_complete() does the last sync and "
            "sends the dirty pages while the device still DMAs; vfio_save_complete_precopy() "
            "stops it (STOP_COPY) only afterwards: a write in between is in no bitmap",
        ),
        checked="read at master ece408818d (hw/vfio/migration.c, migration/migration.c, "
                "migration/savevm.c order of handlers, system/cpus.c); the same notifier and "
                "vm_stop_force_state in every release; not run on QEMU",
        fix="in vfio_migration_state_notifier(), on PRECOPY_FAILED ask for RUNNING only when "
            "the VM runs and STOP otherwise (what vfio_vmstate_change would ask for)",
        fix_flags={"failure_notifier_follows_runstate": True},
    ),
    Finding(
        name="return-path-cancel-split-brain",
        title="with the return path, a cancel after the destination started restarts the "
              "source too",
        configuration="the return-path capability, a VM whose guest state is not guarded by "
                      "shared-storage drive locks (here no block device), a migrate_cancel "
                      "while the source waits for the destination's SHUT",
        path=(
            "process_incoming_migration_bh() on the destination runs vm_start(), then "
            "migration_incoming_state_destroy() sends MIG_RP_MSG_SHUT",
            "the source's migration_completion() is waiting for that SHUT in "
            "close_return_path_on_source() (await_return_path_close_on_source() in 8.1)",
            "migrate_cancel: migration_cancel() shuts the return path and the stream down; "
            "the join returns, the completion fails (CANCELLING)",
            "migration_iteration_finish() restarts the VM that ran before: vm_start(), the "
            "VFIO callbacks take every device back to RUNNING; from 10.2 (26f65c01ed) only "
            "after re-activating the block devices, which succeeds without shared-storage "
            "locks; the guest runs on both hosts",
        ),
        checked="line by line in migration/migration.c (process_incoming_migration_bh, "
                "migration_incoming_state_destroy, migration_completion, "
                "close_return_path_on_source, migration_cancel, migration_iteration_finish) "
                "at 8.1 7e5a8bb223, 9.1 fd1952d814 and master ece408818d; QEMU's comment in "
                "migration_iteration_finish names the split brain; not run on QEMU",
        fix="once the stream's end (QEMU_VM_EOF) is sent, a completion that hears no SHUT "
            "must not restart the source: leave the VM stopped for management to decide, "
            "as the 10.2 branch for a failed drive re-activation already does",
    ),
    Finding(
        name="multifd-10.0-aarch64-config-before-gic",
        title="10.0 multifd on ARM: a VFIO device's config can load before the interrupt "
              "controller's state",
        configuration="an ARM (aarch64) guest, the multifd capability with the default "
                      "x-migration-multifd-transfer=auto (or on), QEMU 10.0 (or 10.1+ with "
                      "x-migration-load-config-after-iter=off, as for a virt-10.0 or older "
                      "machine type)",
        path=_CONFIG_BEFORE_GIC_PATH,
        checked="line by line in hw/vfio/migration-multifd.c (vfio_load_bufs_thread, "
                "vfio_multifd_save_complete_precopy_thread) and hw/vfio/migration.c "
                "(vfio_save_state) at 10.0 7c949c53e9, the 10.1 change 6380b0a02f and its "
                "hw_compat_10_0 entry; the section order from savevm_state_handler_insert "
                "and the GIC priorities; what a config loaded before the GIC does to the "
                "guest's interrupts (the reason 6380b0a02f gives) is inferred, not run",
        fix="load the config only after the device's non-iterable section (what 10.1's "
            "x-migration-load-config-after-iter does, on by default for ARM)",
        fix_flags={"has_load_config_after_iter": True},
    ),
)



def finding(name: str) -> Finding:
    """The finding shown by spec ``name``; KeyError if there is none."""
    return next(f for f in QEMU_FINDINGS if f.name == name)
