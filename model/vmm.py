"""The VMMs a scenario may model, and which spec-file keys belong to which (docs/spec-files.md).

A scenario is checked against one VMM's migration flow: QEMU's (:mod:`model.migration`, a
``qemu`` behaviour profile per release) or cloud-hypervisor's (:mod:`model.cloud_hypervisor`,
the code at one commit).  Most keys mean the same for both (the guest, the devices, what to
check); some exist for one VMM only, because the other has no such option or the model
does not cover it there.  Giving one of those with the other VMM is an error naming the
key (exit 2), so a spec never silently ignores what its author wrote.
"""

from __future__ import annotations

from typing import Any

QEMU = "qemu"
CLOUD_HYPERVISOR = "cloud-hypervisor"
VMMS: tuple[str, ...] = (QEMU, CLOUD_HYPERVISOR)

#: cloud-hypervisor profiles: the code at one commit (cloud-hypervisor/cloud-hypervisor).
CH_PROFILES: dict[str, str] = {"ae44c297": "ae44c2971c83 (2026-08-22)"}
CH_DEFAULT_PROFILE = "ae44c297"

# Keys by table ("" for the top level, "devices" for every [[devices]] entry), each with
# what it is; a table named at the top level belongs wholly to its VMM.
QEMU_ONLY: dict[str, dict[str, str]] = {
    "": {"qemu": "the QEMU behaviour profile",
         "host": "QEMU's host IOMMU backend and its dirty tracking",
         "mutations": "deliberate bugs in QEMU's flow"},
    "vm": {"ram": "guest RAM for QEMU's type1 dirty-bitmap limit",
           "user_pause": "a user's stop and cont of QEMU's VM during pre-copy",
           "arch": "the guest architecture of QEMU's target (its VFIO config load ordering)"},
    "devices": {"pins": "pages pinned through type1 (QEMU's type1 dirty tracking)",
                "properties": "QEMU -device vfio-pci properties",
                "iommu_dirty_tracking": "the device's IOMMU dirty capability (QEMU's iommufd "
                                        "backend)"},
    "migration": {"attempts": "QEMU's retries after a failed attempt",
                  "log_start_faults": "a failing DMA_LOGGING_START in QEMU's log_global_start",
                  "hwpt_tracking_faults": "a failing IOMMU_HWPT_SET_DIRTY_TRACKING in QEMU's "
                                          "log_global_start",
                  "log_stop_faults": "a failing IOMMU_HWPT_SET_DIRTY_TRACKING in QEMU's "
                                     "log_global_stop",
                  "background_snapshot": "QEMU's background-snapshot capability",
                  "return_path": "QEMU's return-path capability",
                  "switchover_ack": "QEMU's switchover-ack capability",
                  "load_faults": "a failing write of a device's state on QEMU's destination",
                  "multifd": "QEMU's multifd capability"},
}
CH_ONLY: dict[str, dict[str, str]] = {
    "": {"cloud_hypervisor": "the cloud-hypervisor profile"},
    "devices": {"migration": "a device without VFIO migration v2 (QEMU's model assumes it)"},
    "migration": {"local": "cloud-hypervisor's send-migration option local",
                  "preserve_source": "cloud-hypervisor's send-migration option preserve_source",
                  "late_errors": "errors after the destination resumed"},
}


def foreign_key(vmm: str, table: str, keys: list[str]) -> tuple[str, str] | None:
    """The first of ``keys`` (of ``table``) that belongs to the other VMM, with the reason,
    or None."""
    other = QEMU_ONLY if vmm == CLOUD_HYPERVISOR else CH_ONLY
    owner = QEMU if vmm == CLOUD_HYPERVISOR else CLOUD_HYPERVISOR
    for key in keys:
        what = other.get(table, {}).get(key)
        if what is not None:
            return key, (f'{what}: only with vmm = "{owner}", and this spec has '
                         f'vmm = "{vmm}"')
    return None


def keys_for(vmm: str, table: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of ``table`` a spec for ``vmm`` may use (the other VMM's left out)."""
    other = QEMU_ONLY if vmm == CLOUD_HYPERVISOR else CH_ONLY
    return tuple(k for k in keys if k not in other.get(table, {}))


def ch_migration_problem(m: Any) -> tuple[str, str] | None:
    """cloud-hypervisor's own rules for its send-migration options, as (key, message)
    (``VmSendMigrationData::validate()``, vmm/src/api/mod.rs at ae44c2971c83); ``m``: a
    :class:`model.scenario.MigrationConfig`."""
    if m.preserve_source and not m.local:
        return "preserve_source", ("true needs local = true (cloud-hypervisor supports "
                                   "preserve_source only with local migration)")
    if m.postcopy and m.local:
        return "postcopy", "true and local = true are mutually exclusive in cloud-hypervisor"
    if m.precopy_rounds == 0 and not (m.local or m.postcopy):
        return "precopy_rounds", ("0 is not possible for cloud-hypervisor's precopy: it always "
                                  "takes one dirty log after the first pass before it can "
                                  "converge; allowed 1..3")
    return None
