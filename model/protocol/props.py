"""The properties of the migration model (contract names, docs/design.md#properties).

Defined once for every VMM: each property is written against a
:class:`~model.protocol.view.FlowView`, which says what the VMM flow's own variables mean
(when a VM runs, when a migration is over), and the variables all flows share.

Invariants are state predicates on whole columns (or on z3 terms: every predicate here
is written with :mod:`checker.lang.ops`); ``LegalDeviceArcs`` is a predicate on
transitions; ``MigrationEnds`` is a liveness property under weak fairness of the VMM's and
the kernel's actions; ``MigrationCanComplete`` is a witness (some reachable state), so a
passing check cannot be vacuous: the state it asks for is a migration that really
completed (the destination runs, every device loaded and validated, no page stale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from checker.lang.layout import View
from checker.lang.ops import Term, all_of, any_of, lookup_nd
from checker.lang.spec import Action, Eventually
from model.contract import INVARIANTS, Property
from model.fsm.uapi import DeviceState
from model.protocol.view import FlowView

S = DeviceState
Pred = Callable[[View], Term]


def invariants(view: FlowView) -> dict[str, Pred]:
    """Every invariant of the model, by contract name (filtered by the caller)."""

    def type_ok(s: View) -> Term:
        return all_of([s.layout.type_ok(s), *view.bounds(s)])

    def no_page_lost(s: View) -> Term:
        # When the destination's vCPUs start, every page it holds is the source's last
        # content: no page is stale (except, in postcopy, pages the frozen source still
        # delivers on demand).
        owed = view.owed(s)
        current = (s.stale == 0) if owed is None else ((s.stale & ~owed) == 0)
        return ~view.destination_runs(s) | current

    def dirty_tracking_sound(s: View) -> Term:
        # The inductive strengthening of NoPageLost: while migrating, a stale page is in
        # the VMM's bitmap of pages to send, in KVM's log, or in what VFIO would report
        # at the next sync.  Once an error is pending the migration can only fail, so
        # nothing more is required of the trackers.
        covered = s.bitmap | s.kvm_dirty | view.tracker_report(s)
        return ~view.migrating(s) | view.doomed(s) | ((s.stale & ~covered) == 0)

    def no_device_tracking_with_viommu(s: View) -> Term:
        active = view.device_logging_behind_viommu(s)
        return s.ones() if active is None else ~active

    def p2p_quiesced_before_stop(s: View) -> Term:
        # No device of a completed migration was hit by P2P DMA while it was stopped
        # (or being loaded): every device that can initiate P2P was quiesced first.
        keys = view.p2p_hit_keys()
        if not view.p2p_actions or not keys:
            return s.ones()
        hit = any_of(s[k] == 1 for k in keys)
        return ~view.completed(s) | ~hit

    def source_recovers(s: View) -> Term:
        # Once the VMM is done with a failed or cancelled migration, the source is as
        # before: its VM in the run state it had, its devices too, dirty logging off.
        return ~view.failed_and_done(s) | view.source_as_before(s)

    def destination_starts_loaded(s: View) -> Term:
        # The destination VM runs only with devices whose state was loaded and validated
        # by the kernel's RESUMING -> STOP arc (and not reset since).
        ok = all_of(s[view.key("dst_valid", d)] == 1 for d in range(view.devices))
        return ~view.destination_runs(s) | ok

    def no_split_brain(s: View) -> Term:
        # The guest runs in one place: never on the source and the destination at once.
        return ~(view.source_runs(s) & view.destination_runs(s))

    def vcpus_stopped_for_stop_copy(s: View) -> Term:
        # While the devices' final state is saved, no source vCPU may dirty memory the
        # final sync has already looked at (QEMU: see QemuView.stop_and_copy).
        sc = view.stop_and_copy(s)
        return s.ones() if sc is None else ~(sc & view.source_runs(s))

    def config_load_after_interrupt_controller(s: View) -> Term:
        # ARM: no destination VFIO device loads its config (MSI-X routes through the ITS)
        # before the interrupt controller's state is loaded (QEMU: model.migration.config_load).
        early = view.config_before_interrupt_controller(s)
        return s.ones() if early is None else ~early

    return {
        Property.TYPE_OK: type_ok,
        Property.NO_PAGE_LOST: no_page_lost,
        Property.DIRTY_TRACKING_SOUND: dirty_tracking_sound,
        Property.NO_DEVICE_TRACKING_WITH_VIOMMU: no_device_tracking_with_viommu,
        Property.P2P_QUIESCED_BEFORE_STOP: p2p_quiesced_before_stop,
        Property.SOURCE_RECOVERS: source_recovers,
        Property.DESTINATION_STARTS_LOADED: destination_starts_loaded,
        Property.NO_SPLIT_BRAIN: no_split_brain,
        Property.VCPUS_STOPPED_FOR_STOP_COPY: vcpus_stopped_for_stop_copy,
        Property.CONFIG_LOAD_AFTER_INTERRUPT_CONTROLLER: config_load_after_interrupt_controller,
    }


def legal_device_arcs(view: FlowView) -> Callable[[View, View, Action], Term]:
    """Every change of a device's state is a direct uAPI arc of its feature set; the only
    exceptions are the failure outcome ERROR (a fault) and VFIO_DEVICE_RESET (-> RUNNING)."""

    def pred(before: View, after: View, action: Action) -> Term:
        checks: list[Term] = []
        fault = action.family in view.fault_families
        reset = action.family in view.reset_families
        for prefix in ("", "dst_"):
            # A destination device the VMM opens afresh is RUNNING (drivers put an opened
            # device in RUNNING, mlx5vf_pci_open_device; a VMM may also reset it).
            reopen = prefix == "dst_" and action.family in view.reopen_families
            for d in range(view.devices):
                b = before[view.key(f"{prefix}kstate", d)]
                a = after[view.key(f"{prefix}kstate", d)]
                legal = (b == a) | lookup_nd(view.arcs[d], b, a)
                # Which exceptions apply depends on the action (a constant), not on data.
                if fault:
                    legal = legal | (a == S.ERROR)
                if reset or reopen:
                    legal = legal | (a == S.RUNNING)
                checks.append(legal)
        return all_of(checks)

    return pred


def migration_ends(view: FlowView, families: list[str]) -> Eventually:
    """<>ended under weak fairness of every VMM and kernel action family the spec has."""
    return Eventually(view.ended, fair=tuple(f for f in view.fair_families if f in families))


def can_complete(view: FlowView) -> Pred:
    """The witness MigrationCanComplete: a state in which the migration completed and the
    destination runs with every page current (but those postcopy still owes) and every
    device's state loaded and validated, so a model in which the destination never
    starts, or starts unloaded, cannot pass vacuously."""

    def pred(s: View) -> Term:
        owed = view.owed(s)
        current = (s.stale == 0) if owed is None else ((s.stale & ~owed) == 0)
        loaded = all_of([*(s[view.key("dst_loaded", d)] == 1 for d in range(view.devices)),
                         *(s[view.key("dst_valid", d)] == 1 for d in range(view.devices))])
        return view.completed(s) & view.destination_runs(s) & current & loaded

    return pred


def applicable(view: FlowView) -> tuple[str, ...]:
    """The properties that mean something for this scenario ("all that apply")."""
    names = [*INVARIANTS, Property.LEGAL_DEVICE_ARCS, Property.MIGRATION_ENDS,
             Property.MIGRATION_CAN_COMPLETE]
    if not view.viommu:
        names.remove(Property.NO_DEVICE_TRACKING_WITH_VIOMMU)
    if not view.p2p_actions:
        names.remove(Property.P2P_QUIESCED_BEFORE_STOP)
    if view.blocked:
        names.remove(Property.MIGRATION_CAN_COMPLETE)
    if not view.stop_copy_modelled:
        names.remove(Property.VCPUS_STOPPED_FOR_STOP_COPY)
    if not view.config_order_modelled:
        names.remove(Property.CONFIG_LOAD_AFTER_INTERRUPT_CONTROLLER)
    return tuple(names)


@dataclass
class Checks:
    """The properties one spec checks, in the form :class:`~checker.lang.spec.Spec` takes."""

    invariants: dict[str, Pred] = field(default_factory=dict)
    action_invariants: dict[str, Any] = field(default_factory=dict)
    liveness: dict[str, Any] = field(default_factory=dict)
    witnesses: dict[str, Pred] = field(default_factory=dict)


def selected(view: FlowView, wanted: Iterable[str] | None) -> set[str]:
    """The property names a spec checks: ``wanted`` (``[check].invariants``), or every
    property that applies."""
    return set(applicable(view)) if wanted is None else set(wanted)


def checks(view: FlowView, chosen: set[str], families: list[str]) -> Checks:
    """The chosen properties of a flow (``families``: the action families its spec has)."""
    out = Checks(invariants={k: v for k, v in invariants(view).items() if k in chosen})
    if Property.LEGAL_DEVICE_ARCS in chosen:
        out.action_invariants[Property.LEGAL_DEVICE_ARCS] = legal_device_arcs(view)
    if Property.MIGRATION_ENDS in chosen:
        out.liveness[Property.MIGRATION_ENDS] = migration_ends(view, families)
    if Property.MIGRATION_CAN_COMPLETE in chosen and not view.blocked:
        out.witnesses[Property.MIGRATION_CAN_COMPLETE] = can_complete(view)
    return out
