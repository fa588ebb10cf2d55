"""What the shared property code asks of a VMM's flow (docs/design.md#properties).

Every property of :mod:`model.protocol.props` is defined once, in terms of the variables
all flows share (``kstate``, ``dst_kstate``, ``dst_valid``, ``stale``, ``bitmap``,
``kvm_dirty``, ``p2p_hit``) and of the few predicates below, which say what a flow's own
variables mean: when the source or the destination VM runs the guest, when a migration is
in progress, over or failed, what its dirty tracker would report.  A flow implements
:class:`FlowView` (QEMU: :class:`model.migration.view.QemuView`; cloud-hypervisor:
:class:`model.cloud_hypervisor.view.ChView`); where a property means something different
for a VMM, it is in that VMM's answers here (docs/spec-files.md says how).

All predicates take a :class:`~checker.lang.layout.View` (or a symbolic view) and are
written with :mod:`checker.lang.ops`, so a flow that z3 can run stays z3-runnable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from checker.lang.layout import View
from checker.lang.ops import Term


class FlowView(Protocol):
    """A VMM flow as the properties see it (see the module docstring)."""

    @property
    def devices(self) -> int:
        """Number of VFIO devices (source and destination alike)."""
        ...

    @property
    def arcs(self) -> Sequence[np.ndarray]:
        """Per device: the ``(8, 8)`` bool matrix of direct uAPI arcs for its feature set."""
        ...

    @property
    def viommu(self) -> bool:
        """The scenario has a vIOMMU (NoDeviceTrackingWithViommu applies)."""
        ...

    @property
    def p2p_actions(self) -> bool:
        """Some device may initiate P2P DMA to another (P2PQuiescedBeforeStop applies)."""
        ...

    @property
    def blocked(self) -> bool:
        """The migration is refused before it starts (MigrationCanComplete does not apply)."""
        ...

    @property
    def fault_families(self) -> tuple[str, ...]:
        """Action families whose effect may put a device in ERROR (an injected failure)."""
        ...

    @property
    def reset_families(self) -> tuple[str, ...]:
        """Action families that reset a device (VFIO_DEVICE_RESET: it is RUNNING after)."""
        ...

    @property
    def reopen_families(self) -> tuple[str, ...]:
        """Action families after which a destination device is a freshly opened one."""
        ...

    @property
    def fair_families(self) -> tuple[str, ...]:
        """The families weak fairness applies to (the VMM's and the kernel's own steps)."""
        ...

    def key(self, name: str, i: int) -> str:
        """The layout key of element ``i`` of an indexed variable."""
        ...

    def p2p_hit_keys(self) -> tuple[str, ...]:
        """Layout keys of the flags "a P2P write reached a stopped (or resuming) device"."""
        ...

    def bounds(self, s: View) -> list[Term]:
        """The flow's own domain bounds beyond the layout's (counters, cursors)."""
        ...

    def migrating(self, s: View) -> Term:
        """A migration is in progress on the source."""
        ...

    def doomed(self, s: View) -> Term:
        """An error is pending: the migration can only fail from here."""
        ...

    def tracker_report(self, s: View) -> Term:
        """The pages the VMM's next dirty sync would learn of from VFIO (not clearing)."""
        ...

    def owed(self, s: View) -> Term | None:
        """Pages the destination may lack when it starts because the source still
        delivers them afterwards from memory that no longer changes (postcopy); None:
        the flow has no such pages."""
        ...

    def device_logging_behind_viommu(self, s: View) -> Term | None:
        """Device DMA logging is the active method behind a vIOMMU (None: impossible)."""
        ...

    def source_runs(self, s: View) -> Term:
        """The source VM's vCPUs run the guest."""
        ...

    @property
    def stop_copy_modelled(self) -> bool:
        """The flow names a stop-and-copy state (:meth:`stop_and_copy` is not None)."""
        ...

    def stop_and_copy(self, s: View) -> Term | None:
        """The migration is in stop-and-copy, saving the devices' final state, where the
        source vCPUs must not run (None: the flow does not model such a state apart)."""
        ...

    @property
    def config_order_modelled(self) -> bool:
        """The flow orders the destination's device config load against the interrupt
        controller (:meth:`config_before_interrupt_controller` is not None)."""
        ...

    def config_before_interrupt_controller(self, s: View) -> Term | None:
        """Some destination device's config is loaded before the interrupt controller's
        state (None: the flow does not model that order)."""
        ...

    def destination_runs(self, s: View) -> Term:
        """The destination VM's vCPUs run the guest."""
        ...

    def completed(self, s: View) -> Term:
        """The source VMM reports the migration completed."""
        ...

    def failed_and_done(self, s: View) -> Term:
        """The VMM is done with a failed (or cancelled) migration."""
        ...

    def source_as_before(self, s: View) -> Term:
        """The source is as it was before the migration started: its VM in the run state
        it had, every device in the state it had, dirty logging stopped."""
        ...

    def ended(self, s: View) -> Term:
        """The migration is over (refused, completed, failed or cancelled, VMM idle)."""
        ...

    def end_state(self, s: View) -> Term:
        """A state where a behaviour may stop: ended, and nothing left to try."""
        ...


class ConfigView:
    """The members of a :class:`FlowView` every flow reads off its configuration alike
    (``cfg``: a flow's constants with ``devices``, ``arcs``, ``viommu``, ``p2p_actions``,
    ``blocked`` and ``key()``)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.devices: int = cfg.devices
        self.arcs: tuple[np.ndarray, ...] = tuple(cfg.arcs)
        self.viommu: bool = cfg.viommu
        self.p2p_actions: bool = cfg.p2p_actions
        self.blocked: bool = cfg.blocked

    def key(self, name: str, i: int) -> str:
        return str(self.cfg.key(name, i))

    # A flow that models stop-and-copy as a state of its own says so (QemuView).
    stop_copy_modelled: bool = False

    def stop_and_copy(self, s: View) -> Term | None:
        return None

    # A flow that orders the config load (QemuView on aarch64) says so.
    config_order_modelled: bool = False

    def config_before_interrupt_controller(self, s: View) -> Term | None:
        return None
