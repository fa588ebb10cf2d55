"""The properties of the migration model (contract names, docs/design.md#properties).

Invariants are state predicates on whole columns (or on z3 terms: every predicate here
is written with :mod:`checker.lang.ops`); ``LegalDeviceArcs`` is a predicate on
transitions; ``MigrationEnds`` is a liveness property under weak fairness of QEMU's and
the kernel's actions; ``MigrationCanComplete`` is a witness (some reachable state), so a
passing check cannot be vacuous: the state it asks for is a migration that really
completed (the destination runs every device loaded and validated, no page stale).
"""

from __future__ import annotations

from collections.abc import Callable

from checker.lang.layout import View
from checker.lang.ops import Term, all_of, any_of, lookup_nd
from checker.lang.spec import Action, Eventually
from model.contract import Property
from model.decision.tracking import Method
from model.fsm.uapi import DeviceState
from model.migration.actions import FAIR_FAMILIES, FAULT_FAMILIES, RESET_FAMILIES, Parts
from model.migration.phases import DstRun, Phase, SrcRun, Status

S = DeviceState
Pred = Callable[[View], Term]
REOPEN_FAMILIES = ("MigrateStart", "MigrateRetry")


def _migrating(s: View) -> Term:
    st = s.status
    return (st == Status.SETUP) | (st == Status.ACTIVE) | (st == Status.DEVICE)


def invariants(parts: Parts) -> dict[str, Pred]:
    """Every invariant of the model, by contract name (filtered by the caller)."""
    cfg, trk = parts.cfg, parts.trk

    def type_ok(s: View) -> Term:
        return all_of([
            s.layout.type_ok(s),
            s.round <= cfg.rounds,
            s.attempt < cfg.attempts,
            s.cursor < cfg.devices,
        ])

    def no_page_lost(s: View) -> Term:
        # When the destination's vCPUs start, every page it holds is the source's last
        # content: no page is stale.
        return (s.dst_run != DstRun.RUNNING) | (s.stale == 0)

    def dirty_tracking_sound(s: View) -> Term:
        # The inductive strengthening of NoPageLost: while migrating, a stale page is in
        # the migration bitmap, in KVM's log, or in what VFIO's log_sync would report.
        # Once an error is pending on the stream the migration can only fail, so
        # nothing more is required of the trackers.
        covered = s.bitmap | s.kvm_dirty | trk.vfio_report(s)
        doomed = s.mig_error == 1
        return ~_migrating(s) | doomed | ((s.stale & ~covered) == 0)

    def no_device_tracking_with_viommu(s: View) -> Term:
        # Every profile blocks device dirty tracking behind a vIOMMU (8.0 globally,
        # 8.1-10.2 every device, master device-tracking users).
        if cfg.viommu and cfg.method is Method.DEVICE_DMA_LOGGING and any(cfg.logs):
            return s.dirty_log == 0
        return s.ones()

    def p2p_quiesced_before_stop(s: View) -> Term:
        # No device of a completed migration was hit by P2P DMA after it had stopped:
        # every device that can initiate P2P was quiesced before any device stopped.
        if not cfg.p2p_actions:
            return s.ones()
        hit = any_of(s[cfg.key("p2p_hit", d)] == 1 for d in range(cfg.devices))
        return (s.status != Status.COMPLETED) | ~hit

    def source_recovers(s: View) -> Term:
        # Once QEMU is done with a failed or cancelled migration, the source runs as
        # before: VM running, every device RUNNING, dirty logging off.
        st = s.status
        ended = (s.pc == Phase.IDLE) & ((st == Status.FAILED) | (st == Status.CANCELLED))
        ok = all_of([
            s.src_run == SrcRun.RUNNING,
            s.dirty_log == 0,
            *(s[cfg.key("kstate", d)] == S.RUNNING for d in range(cfg.devices)),
        ])
        return ~ended | ok

    def destination_starts_loaded(s: View) -> Term:
        # The destination VM runs only with devices whose state was loaded and validated
        # by the kernel's RESUMING -> STOP arc (and not reset since).
        ok = all_of(s[cfg.key("dst_valid", d)] == 1 for d in range(cfg.devices))
        return (s.dst_run != DstRun.RUNNING) | ok

    def vcpus_stopped_for_stop_copy(s: View) -> Term:
        # migration_completion_precopy() stops the VM (migration_stop_vm ->
        # vm_stop_force_state -> do_vm_stop, which pauses every vCPU, system/cpus.c) before
        # migration_switchover_start() sets MIGRATION_STATUS_DEVICE (migration/migration.c,
        # read at Q-master e5ab917d78; docs/sources.md#qemu-save-path): while the devices'
        # state is saved, no vCPU may dirty memory the final sync has already looked at.
        return (s.status != Status.DEVICE) | (s.src_run != SrcRun.RUNNING)

    return {
        Property.TYPE_OK: type_ok,
        Property.NO_PAGE_LOST: no_page_lost,
        Property.DIRTY_TRACKING_SOUND: dirty_tracking_sound,
        Property.NO_DEVICE_TRACKING_WITH_VIOMMU: no_device_tracking_with_viommu,
        Property.P2P_QUIESCED_BEFORE_STOP: p2p_quiesced_before_stop,
        Property.SOURCE_RECOVERS: source_recovers,
        Property.DESTINATION_STARTS_LOADED: destination_starts_loaded,
        Property.VCPUS_STOPPED_FOR_STOP_COPY: vcpus_stopped_for_stop_copy,
    }


def legal_device_arcs(parts: Parts) -> Callable[[View, View, Action], Term]:
    """Every change of a device's state is a direct uAPI arc of its feature set; the only
    exceptions are the failure outcome ERROR (a fault) and VFIO_DEVICE_RESET (-> RUNNING)."""
    cfg = parts.cfg

    def pred(before: View, after: View, action: Action) -> Term:
        checks: list[Term] = []
        fault = action.family in FAULT_FAMILIES
        reset = action.family in RESET_FAMILIES
        for prefix in ("", "dst_"):
            # A new attempt starts a new destination QEMU, which opens its devices
            # afresh: drivers put an opened device in RUNNING (mlx5vf_pci_open_device).
            reopen = prefix == "dst_" and action.family in REOPEN_FAMILIES
            for d in range(cfg.devices):
                b = before[cfg.key(f"{prefix}kstate", d)]
                a = after[cfg.key(f"{prefix}kstate", d)]
                legal = (b == a) | lookup_nd(cfg.arcs[d], b, a)
                # Which exceptions apply depends on the action (a constant), not on data.
                if fault:
                    legal = legal | (a == S.ERROR)
                if reset or reopen:
                    legal = legal | (a == S.RUNNING)
                checks.append(legal)
        return all_of(checks)

    return pred


def ended(s: View) -> Term:
    """The migration is over: refused by a blocker, or QEMU is idle after it completed,
    failed or was cancelled (a retry may follow)."""
    st = s.status
    over = (st == Status.COMPLETED) | (st == Status.FAILED) | (st == Status.CANCELLED)
    return (s.refused == 1) | ((s.pc == Phase.IDLE) & over)


def migration_ends(families: list[str]) -> Eventually:
    """<>ended under weak fairness of every QEMU and kernel action family the spec has."""
    return Eventually(ended, fair=tuple(f for f in FAIR_FAMILIES if f in families))


def can_complete(parts: Parts) -> Pred:
    """The witness MigrationCanComplete: a state in which the migration completed and the
    destination runs with every page current and every device's state loaded and
    validated (so a model in which the destination never starts, or starts unloaded,
    cannot pass vacuously)."""
    cfg = parts.cfg

    def pred(s: View) -> Term:
        loaded = all_of([*(s[cfg.key("dst_loaded", d)] == 1 for d in range(cfg.devices)),
                         *(s[cfg.key("dst_valid", d)] == 1 for d in range(cfg.devices))])
        return (s.status == Status.COMPLETED) & (s.dst_run == DstRun.RUNNING) & (s.stale == 0) & loaded

    return pred


def end_states(parts: Parts) -> Pred:
    """States where a behaviour may stop: ended, and no retry left."""
    cfg = parts.cfg

    def pred(s: View) -> Term:
        st = s.status
        retry_left = (((st == Status.FAILED) | (st == Status.CANCELLED))
                      & (s.attempt + 1 < cfg.attempts))
        return ended(s) & ~retry_left

    return pred
