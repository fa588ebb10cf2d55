"""The constants of one cloud-hypervisor exploration: what a scenario fixes beforehand.

:class:`ChConfig` holds what the flow, the actions and the view read but never change:
counts, each device's flags and kernel tables (shared with QEMU's model through
:func:`model.protocol.kernel.device_tables`), what each device supports, the migration's
options and the orders in which the device manager may visit the devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from model.cloud_hypervisor.decision import ChDecision
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import DeviceState, MigFlag
from model.protocol.kernel import DeviceTables, device_flags, device_tables
from model.scenario import Scenario

S = DeviceState

# Variables with one element per device.
PER_DEVICE = frozenset({
    "kstate", "log_on", "dma_log", "p2p_hit",
    "dst_kstate", "dst_loaded", "dst_valid", "dst_p2p_hit",
})


@dataclass(frozen=True)
class ChConfig:
    """Everything fixed for one exploration of cloud-hypervisor's flow."""

    scenario: Scenario
    decision: ChDecision
    kernel: KernelStepFunction
    pages: int
    devices: int
    names: tuple[str, ...]
    tables: tuple[DeviceTables, ...]
    migratable: tuple[bool, ...]  # migration v2 (migration_flags is Some)
    logs: tuple[bool, ...]  # the driver has DMA logging
    dma_pages: tuple[tuple[int, ...], ...]  # pages each device writes (IOVA = GPA)
    p2p_dma: tuple[bool, ...]  # may initiate P2P DMA to another device (vfio_p2p_dma=on)
    #: the orders in which DeviceManager's HashMap yields the devices (every permutation)
    orders: tuple[tuple[int, ...], ...]

    # ------------------------------------------------------------------ options
    @property
    def mode(self) -> str:
        return self.decision.mode

    @property
    def precopy(self) -> bool:
        return self.mode == "precopy"

    @property
    def postcopy(self) -> bool:
        return self.mode == "postcopy"

    @property
    def local(self) -> bool:
        return self.mode == "local"

    @property
    def preserve_source(self) -> bool:
        return self.scenario.migration.preserve_source

    @property
    def starts_paused(self) -> bool:
        return self.scenario.vm.paused

    @property
    def rounds(self) -> int:
        return self.scenario.migration.precopy_rounds if self.precopy else 0

    @property
    def blocked(self) -> bool:
        return self.decision.blocked

    @property
    def refused_at_start(self) -> bool:
        """start_migration() refuses (no VFIO call is made before it)."""
        return any(b.stage == "start_migration" for b in self.decision.blockers)

    @property
    def viommu(self) -> bool:
        return self.scenario.vm.viommu

    @property
    def all_pages(self) -> int:
        return (1 << self.pages) - 1

    @property
    def p2p_actions(self) -> bool:
        return self.devices > 1 and any(self.p2p_dma)

    @property
    def any_logging(self) -> bool:
        """Some device starts DMA logging in some behaviour."""
        return self.precopy and any(self.logs)

    @property
    def cursor_bits(self) -> int:
        return max(1, (self.devices - 1).bit_length())

    # ------------------------------------------------------------------ per device
    def flags(self, dev: int) -> MigFlag:
        return self.tables[dev].flags

    @property
    def step(self) -> tuple[np.ndarray, ...]:
        return tuple(t.step for t in self.tables)

    @property
    def arcs(self) -> tuple[np.ndarray, ...]:
        return tuple(t.arcs for t in self.tables)

    def initial_kstate(self, dev: int) -> int:
        """A paused VM's migratable devices were stopped by Vm::pause (STOP); every other
        device is RUNNING (VfioPciDevice::new resets it, pci/src/vfio.rs)."""
        return int(S.STOP) if self.starts_paused and self.migratable[dev] else int(S.RUNNING)

    def page_mask(self, dev: int) -> int:
        return sum(1 << p for p in self.dma_pages[dev])

    def key(self, name: str, i: int) -> str:
        """The layout key of element ``i`` of an indexed variable (a variable with one
        element is a plain field)."""
        if name not in PER_DEVICE:
            raise KeyError(f"{name} is not an indexed model variable")
        if not 0 <= i < self.devices:
            raise IndexError(f"{name}[{i}]: index out of range 0..{self.devices - 1}")
        return name if self.devices == 1 else f"{name}[{i}]"


def order_names(cfg: ChConfig) -> tuple[str, ...]:
    return tuple(",".join(cfg.names[d] for d in order) for order in cfg.orders)


def make_config(scenario: Scenario, decision: ChDecision, kernel: KernelStepFunction) -> ChConfig:
    devices = scenario.devices
    return ChConfig(
        scenario=scenario,
        decision=decision,
        kernel=kernel,
        pages=scenario.vm.pages,
        devices=len(devices),
        names=tuple(d.name for d in devices),
        tables=tuple(device_tables(kernel, device_flags(d.has_p2p, d.has_pre_copy))
                     for d in devices),
        migratable=tuple(d.migration for d in devices),
        logs=tuple(d.dma_logging for d in devices),
        dma_pages=tuple(tuple(d.dma_pages) for d in devices),
        p2p_dma=tuple(d.p2p_dma for d in devices),
        orders=tuple(permutations(range(len(devices)))),
    )
