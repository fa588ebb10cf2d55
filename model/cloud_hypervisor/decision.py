"""What refuses a cloud-hypervisor migration with VFIO devices, and how pages are tracked.

Read in ``cloud-hypervisor/cloud-hypervisor`` at ae44c2971c83 (docs/sources.md#ch-refusals):

* ``VfioPciDevice::start_migration()`` (pci/src/vfio.rs, c3c4281069) fails for a device
  that does not support migration v2 (``migration_flags`` is None: the probe of
  ``VFIO_DEVICE_FEATURE_MIGRATION`` in ``VfioCommon::new()`` found no STOP_COPY support)
  and for a device attached to the virtual IOMMU (``iommu_attached``).  ``send_migration()``
  (vmm/src/lib.rs) calls ``vm.start_migration()`` only when the source is not preserved
  (``preserve_source``, 17b5deeaed): with ``preserve_source=on`` neither check runs.
* ``VfioCommon::start_dirty_log()`` starts DMA logging over the guest's memory regions
  (``VFIO_DEVICE_FEATURE_DMA_LOGGING_START``); a device whose driver has no DMA logging
  fails it (the kernel answers -ENOTTY, docs/sources.md#kernel-dma-logging), which fails a
  precopy migration at its start (docs/vfio.md says so).  ``do_memory_migration()`` is the
  only caller of ``vm.start_dirty_log()``: a local or a postcopy migration tracks nothing.

A refusal is the outcome ``blocked``: no behaviour of the scenario can complete.  The
model still runs what the code runs up to the refusal (for a device without DMA logging:
KVM logging and the devices before it in the device manager's order start logging, then
the failure path stops them), so ``SourceRecovers`` is checked on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.decision.tracking import NO_DIRTY_TRACKING, VIOMMU, Method
from model.scenario import Scenario
from model.vmm import CH_PROFILES

# Reason codes (stable, docs/design.md#json): QEMU's where the reason is the same, and one
# QEMU does not have (its model assumes every device supports migration v2).
MIGRATION_UNSUPPORTED = "migration-unsupported"
CH_BLOCKER_CODES = (MIGRATION_UNSUPPORTED, VIOMMU, NO_DIRTY_TRACKING)
DEVICE_DMA_LOGGING = Method.DEVICE_DMA_LOGGING.value

SRC_START_MIGRATION = ("pci/src/vfio.rs VfioPciDevice::start_migration() "
                       "(c3c4281069; read at ae44c2971c83)")
SRC_PRESERVE = ("vmm/src/lib.rs send_migration(): vm.start_migration() skipped with "
                "preserve_source (17b5deeaed)")
SRC_START_DIRTY_LOG = ("pci/src/vfio.rs VfioCommon::start_dirty_log() -> "
                       "VFIO_DEVICE_FEATURE_DMA_LOGGING_START (c3c4281069)")
SRC_NO_TRACKING = ("vmm/src/lib.rs send_migration(): only do_memory_migration() calls "
                   "vm.start_dirty_log(); local and postcopy migrations skip it")

MODES = ("precopy", "postcopy", "local")


@dataclass(frozen=True)
class Refusal:
    """One reason cloud-hypervisor will not migrate this VM."""

    code: str  # a blocked_by reason code (docs/design.md#json)
    device: str
    message: str
    source: str
    stage: str  # "start_migration" | "start_dirty_log"


@dataclass(frozen=True)
class ChDecision:
    """cloud-hypervisor's answer for one scenario (the counterpart of QEMU's
    :class:`~model.decision.tracking.TrackingDecision` for the front end)."""

    profile: str
    mode: str  # "precopy" | "postcopy" | "local"
    method: str | None  # how device writes are tracked; None: nothing is tracked
    blockers: tuple[Refusal, ...]
    notes: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def blocked(self) -> bool:
        return bool(self.blockers)

    @property
    def blocked_by(self) -> tuple[str, ...]:
        """Reason codes, each once, in the order the code meets them."""
        return tuple(dict.fromkeys(b.code for b in self.blockers))


def mode_of(scenario: Scenario) -> str:
    m = scenario.migration
    return "postcopy" if m.postcopy else "local" if m.local else "precopy"


def decide(scenario: Scenario) -> ChDecision:
    """cloud-hypervisor's refusals and tracking for ``scenario``."""
    mode = mode_of(scenario)
    blockers: list[Refusal] = []
    notes: list[str] = []
    sources: list[str] = []
    if scenario.migration.preserve_source:
        notes.append("preserve_source: start_migration() is not called, so neither the "
                     "migration-v2 check nor the vIOMMU refusal runs")
        sources.append(SRC_PRESERVE)
    else:
        sources.append(SRC_START_MIGRATION)
        for dev in scenario.devices:
            if not dev.migration:
                blockers.append(Refusal(MIGRATION_UNSUPPORTED, dev.name,
                                        f"{dev.name}: VFIO device does not support migration",
                                        SRC_START_MIGRATION, "start_migration"))
            elif scenario.vm.viommu:
                blockers.append(Refusal(VIOMMU, dev.name,
                                        f"{dev.name}: VFIO device live migration is not "
                                        "supported behind a virtual IOMMU",
                                        SRC_START_MIGRATION, "start_migration"))
    if mode == "precopy":
        sources.append(SRC_START_DIRTY_LOG)
        if not blockers:
            for dev in scenario.devices:
                if not dev.dma_logging:
                    blockers.append(Refusal(NO_DIRTY_TRACKING, dev.name,
                                            f"{dev.name}: DMA_LOGGING_START fails (no DMA "
                                            "logging in its driver)", SRC_START_DIRTY_LOG,
                                            "start_dirty_log"))
        notes.append("KVM's dirty log and every device's DMA log are read at each "
                     "memory iteration (vm.dirty_log())")
    else:
        notes.append(f"{mode}: no dirty logging is started")
        sources.append(SRC_NO_TRACKING)
    return ChDecision(
        profile=scenario.cloud_hypervisor or "",
        mode=mode,
        method=DEVICE_DMA_LOGGING if mode == "precopy" else None,
        blockers=tuple(blockers),
        notes=tuple(notes),
        sources=tuple(sources),
    )


def profile_commit(name: str) -> str:
    return CH_PROFILES[name]
