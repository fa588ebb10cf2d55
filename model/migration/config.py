"""The constants of the migration model: what a scenario fixes before exploration starts.

:class:`ModelConfig` gathers, once per check, everything the actions and properties of
:mod:`model.migration.spec` read but never change: page and device counts, each device's
``VFIO_MIGRATION_*`` flags, the kernel's one-step table and the uAPI's direct arcs for those
flags, QEMU's tracking decision (:mod:`model.decision.tracking`), the QEMU profile's behaviour flags
and the mutations.  Keeping it apart keeps the action code about *what happens* rather than
about reading the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.contract import Mutation
from model.decision.tracking import Method, TrackingDecision
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import DeviceState, MigFlag
from model.migration.multifd_transfer import load_config_after_iter, multifd_transfer
from model.profiles import Profile
from model.protocol.kernel import device_flags, device_tables
from model.scenario import Scenario

S = DeviceState

# Variables with one element per device (source and destination side).
PER_DEVICE = frozenset({
    "kstate", "qstate", "data_fd", "p2p_hit", "dma_log", "log_range",
    "dst_kstate", "dst_qstate", "dst_fd", "dst_loaded", "dst_valid", "init_data_sent",
    "save_thread", "load_thread", "dst_config",
})


def state_mask(names: frozenset[str] | set[str]) -> np.ndarray:
    """``(8,)`` bool over device states from a set of state names."""
    m = np.zeros(len(DeviceState), dtype=bool)
    for n in names:
        m[int(DeviceState[n])] = True
    return m


@dataclass(frozen=True)
class ModelConfig:
    """Everything fixed for one exploration (see module docstring)."""

    scenario: Scenario
    decision: TrackingDecision
    kernel: KernelStepFunction
    pages: int
    devices: int
    names: tuple[str, ...]
    flags: tuple[MigFlag, ...]
    step: tuple[np.ndarray, ...]  # per device: (8, 8) kernel one-step table
    arcs: tuple[np.ndarray, ...]  # per device: (8, 8) bool direct uAPI arcs
    dma_iovas: tuple[tuple[int, ...], ...]  # per device: the IOVAs (pages) it writes
    logs: tuple[bool, ...]  # per device: started DMA logging and is asked for reports
    precopy_opt_out: tuple[bool, ...]  # per device: x-pre-copy-dirty-page-tracking=off
    p2p_dma: tuple[bool, ...]  # per device: may initiate P2P DMA to a peer
    mutations: frozenset[Mutation]
    # per device: its iommufd hwpt is dirty-capable, so the IOMMU records its DMA
    hwpt_dirty: tuple[bool, ...] = ()
    # per device: its final state goes over multifd in a save / load thread (10.0+)
    multifd: tuple[bool, ...] = ()
    # per device: its load thread loads the config only after the iterables (10.1+)
    config_after_iter: tuple[bool, ...] = ()

    # ------------------------------------------------------------------ derived views
    @property
    def profile(self) -> Profile:
        return self.scenario.profile

    @property
    def method(self) -> Method:
        return self.decision.method

    @property
    def blocked(self) -> bool:
        return self.decision.blocked

    @property
    def viommu(self) -> bool:
        return self.scenario.vm.viommu

    @property
    def all_pages(self) -> int:
        return (1 << self.pages) - 1

    @property
    def spaces(self) -> int:
        """IOVA spaces with their own IOMMU dirty bits: one per device behind a vIOMMU
        (each vIOMMU address space gets its own container), else one shared GPA space."""
        return self.devices if self.viommu else 1

    def space_of(self, dev: int) -> int:
        return dev if self.viommu else 0

    @property
    def cursor_bits(self) -> int:
        """Width of ``cursor``, the device a QEMU hook is working on."""
        return max(1, (self.devices - 1).bit_length())

    @property
    def pinned_mask(self) -> int:
        return sum(1 << p for p in self.decision.pinned_pages)

    @property
    def rounds(self) -> int:
        return self.scenario.migration.precopy_rounds

    @property
    def attempts(self) -> int:
        return self.scenario.migration.attempts

    @property
    def uses_device_logging(self) -> bool:
        return self.method is Method.DEVICE_DMA_LOGGING

    @property
    def paused(self) -> bool:
        """The source VM is paused by the user before the migration and stays paused
        (``[vm].paused``)."""
        return self.scenario.vm.paused

    @property
    def user_pause(self) -> bool:
        """The user may stop the running VM during pre-copy and continue it
        (``[vm].user_pause``, :mod:`model.migration.user_pause`)."""
        return self.scenario.vm.user_pause

    @property
    def log_start_can_fail(self) -> bool:
        """DMA_LOGGING_START may fail (``[migration].log_start_faults``): only where QEMU
        issues it, device DMA logging (vfio_devices_dma_logging_start)."""
        return self.uses_device_logging and self.scenario.migration.log_start_faults

    @property
    def hwpt_tracking_can_fail(self) -> bool:
        """IOMMU_HWPT_SET_DIRTY_TRACKING may fail (``[migration].hwpt_tracking_faults``):
        only where QEMU issues it, iommufd hardware dirty tracking
        (iommufd_set_dirty_page_tracking, :mod:`model.migration.tracking_faults`)."""
        return self.uses_iommu_dirty and self.scenario.migration.hwpt_tracking_faults

    @property
    def log_stop_can_fail(self) -> bool:
        """IOMMU_HWPT_SET_DIRTY_TRACKING may fail at log_global_stop
        (``[migration].log_stop_faults``; iommufd hardware dirty tracking only)."""
        return self.uses_iommu_dirty and self.scenario.migration.log_stop_faults

    @property
    def hwpt_flag(self) -> bool:
        """The model keeps ``hwpt_tracking`` (whether the hwpt tracks): where setting its
        tracking can fail, at start or at stop (:mod:`model.migration.tracking_faults`)."""
        return self.hwpt_tracking_can_fail or self.log_stop_can_fail

    @property
    def uses_iommu_dirty(self) -> bool:
        return self.method is Method.IOMMUFD_HW

    @property
    def all_dirty_reports(self) -> bool:
        """Whether the all-dirty fallback marks pages at log_sync (and at unmaps).

        Up to 9.2 VFIO's log_sync ran whenever the migration was active (8.0:
        ``migration_is_setup_or_active``; 8.1-9.2: ``migration_is_active() ||
        migration_is_device()`` in ``vfio_devices_all_dirty_tracking()``), and
        ``vfio_get_dirty_bitmap()`` then marked the whole section dirty (b051a3f640).
        QEMU 10.0 gates log_sync (0ae05e087f) and vIOMMU-unmap syncs (6e9df66e8a) on "dirty
        tracking started" instead: ``vfio_container_dirty_tracking_is_started()`` (master
        hw/vfio/container.c) = every device DMA-logging or ``dirty_pages_started`` — and
        ``vfio_container_set_dirty_page_tracking()`` returns early without setting
        ``dirty_pages_started`` when the container has no dirty support.  So from 10.0 the
        all-dirty branch of ``vfio_container_query_dirty_bitmap()`` is never reached and a
        device without any tracking (allowed with ``enable-migration=on``) has its writes
        reported by nobody: the profile's ``log_sync_gate`` and
        ``unsupported_container_counts_as_started`` (:attr:`Profile.all_dirty_unreachable`).
        """
        return not self.profile.all_dirty_unreachable

    @property
    def sync_suppressing_states(self) -> np.ndarray:
        """``(8,)`` bool: cached device states in which an opted-out device suppresses
        the container's log_sync (profile-dependent, see :mod:`model.profiles`)."""
        return state_mask(set(self.profile.precopy_sync_suppressing_states))

    @property
    def p2p_actions(self) -> bool:
        return self.devices > 1 and any(self.p2p_dma)

    def key(self, name: str, i: int) -> str:
        """The layout key of element ``i`` of an indexed variable.  A variable declared
        with one element is a plain field (``kstate``, not ``kstate[0]``)."""
        if name in PER_DEVICE:
            count = self.devices
        elif name == "iommu_dirty":
            count = self.spaces
        elif name == "iova_map":
            count = self.devices * self.pages
        else:
            raise KeyError(f"{name} is not an indexed model variable")
        if not 0 <= i < count:
            raise IndexError(f"{name}[{i}]: index out of range 0..{count - 1}")
        return name if count == 1 else f"{name}[{i}]"

    def has(self, mutation: Mutation) -> bool:
        return mutation in self.mutations

    def has_p2p(self, dev: int) -> bool:
        return bool(self.flags[dev] & MigFlag.P2P)

    def has_pre_copy(self, dev: int) -> bool:
        return bool(self.flags[dev] & MigFlag.PRE_COPY)

    def iova_mask(self, dev: int) -> int:
        return sum(1 << i for i in self.dma_iovas[dev])


def make_config(
    scenario: Scenario, decision: TrackingDecision, kernel: KernelStepFunction
) -> ModelConfig:
    """Derive the model constants from a validated scenario and QEMU's decision."""
    # The kernel as each device sees it: shared with every VMM's flow (model.protocol).
    tables = [device_tables(kernel, device_flags(d.has_p2p, d.has_pre_copy))
              for d in scenario.devices]
    return ModelConfig(
        scenario=scenario,
        decision=decision,
        kernel=kernel,
        pages=scenario.vm.pages,
        devices=len(scenario.devices),
        names=tuple(d.name for d in scenario.devices),
        flags=tuple(t.flags for t in tables),
        step=tuple(t.step for t in tables),
        arcs=tuple(t.arcs for t in tables),
        dma_iovas=tuple(tuple(d.dma_pages) for d in scenario.devices),
        logs=tuple(
            decision.method is Method.DEVICE_DMA_LOGGING and d.name in decision.logging_devices
            for d in scenario.devices
        ),
        precopy_opt_out=tuple(
            not d.properties.x_pre_copy_dirty_page_tracking for d in scenario.devices
        ),
        p2p_dma=tuple(d.p2p_dma for d in scenario.devices),
        mutations=frozenset(scenario.mutations),
        hwpt_dirty=(decision.hwpt_dirty if decision.hwpt_dirty
                    else tuple(decision.method is Method.IOMMUFD_HW for _ in scenario.devices)),
        multifd=multifd_transfer(scenario, scenario.profile),
        config_after_iter=load_config_after_iter(scenario, scenario.profile),
    )
