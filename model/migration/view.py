"""QEMU's answers to the shared property code (:class:`model.protocol.view.FlowView`).

The properties themselves are defined once, in :mod:`model.protocol.props`; this module
says what QEMU's variables mean to them: the source VM runs while its RunState is
``running``, the destination while it is ``running``, a migration is in progress in
SETUP, ACTIVE and the stop-and-copy state (DEVICE), it is over when QEMU is idle after
COMPLETED, FAILED or CANCELLED (or a blocker refused the command), and VFIO's part of a
dirty sync is what :class:`~model.migration.dirty.Trackers` reports.
"""

from __future__ import annotations

from checker.lang.layout import View
from checker.lang.ops import Term, all_of, where
from model.decision.tracking import Method
from model.fsm.uapi import DeviceState
from model.migration import config_load
from model.migration.actions import FAIR_FAMILIES, FAULT_FAMILIES, RESET_FAMILIES
from model.migration.config import ModelConfig
from model.migration.dirty import Trackers
from model.migration.phases import DstRun, Phase, SrcRun, Status, migrating
from model.migration.switchover import SWITCHOVER_FAMILIES
from model.protocol.view import ConfigView

S = DeviceState
# A new attempt starts a new destination QEMU, which opens its devices afresh.
REOPEN_FAMILIES = ("MigrateStart", "MigrateRetry")


class QemuView(ConfigView):
    """The QEMU flow of one scenario, as :mod:`model.protocol.props` reads it."""

    fault_families: tuple[str, ...] = FAULT_FAMILIES
    reset_families: tuple[str, ...] = RESET_FAMILIES
    reopen_families: tuple[str, ...] = REOPEN_FAMILIES
    fair_families: tuple[str, ...] = FAIR_FAMILIES + SWITCHOVER_FAMILIES

    def __init__(self, cfg: ModelConfig, trk: Trackers) -> None:
        super().__init__(cfg)
        self.cfg: ModelConfig = cfg
        self.trk = trk
        self.config_order_modelled = config_load.orders_config(cfg)

    def config_before_interrupt_controller(self, s: View) -> Term | None:
        return config_load.config_before_interrupt_controller(self.cfg, s)

    def p2p_hit_keys(self) -> tuple[str, ...]:
        if not self.cfg.p2p_actions:
            return ()
        return tuple(self.cfg.key("p2p_hit", d) for d in range(self.devices))

    def bounds(self, s: View) -> list[Term]:
        cfg = self.cfg
        return [s.round <= cfg.rounds, s.attempt < cfg.attempts, s.cursor < cfg.devices]

    def migrating(self, s: View) -> Term:
        return migrating(s)

    def doomed(self, s: View) -> Term:
        return s.mig_error == 1

    def tracker_report(self, s: View) -> Term:
        return self.trk.vfio_report(s)

    def owed(self, s: View) -> Term | None:
        return None  # QEMU refuses postcopy with VFIO devices (vfio_save_prepare, 8.2)

    def device_logging_behind_viommu(self, s: View) -> Term | None:
        # Every profile blocks device dirty tracking behind a vIOMMU (8.0 globally,
        # 8.1-10.2 every device, master device-tracking users).
        cfg = self.cfg
        if cfg.viommu and cfg.method is Method.DEVICE_DMA_LOGGING and any(cfg.logs):
            return s.dirty_log == 1
        return None

    def source_runs(self, s: View) -> Term:
        return s.src_run == SrcRun.RUNNING

    stop_copy_modelled = True

    def stop_and_copy(self, s: View) -> Term | None:
        # migration_completion_precopy() stops the VM (migration_stop_vm ->
        # vm_stop_force_state -> do_vm_stop, which pauses every vCPU, system/cpus.c) before
        # migration_switchover_start() sets MIGRATION_STATUS_DEVICE (migration/migration.c,
        # read at Q-master e5ab917d78; docs/sources.md#qemu-save-path).
        return s.status == Status.DEVICE

    def destination_runs(self, s: View) -> Term:
        return s.dst_run == DstRun.RUNNING

    def completed(self, s: View) -> Term:
        return s.status == Status.COMPLETED

    def failed_and_done(self, s: View) -> Term:
        st = s.status
        return (s.pc == Phase.IDLE) & ((st == Status.FAILED) | (st == Status.CANCELLED))

    def source_as_before(self, s: View) -> Term:
        # Before a migration QEMU's VM runs, every device is RUNNING, logging is off; a VM
        # the user paused has every device in STOP (the pause's VM-state callbacks), and so
        # has one the user stopped during pre-copy and did not continue (upause,
        # model.migration.user_pause).  Where set-tracking can fail, also no hwpt left
        # tracking (model.migration.tracking_faults).
        cfg = self.cfg

        def as_before(value: Term, paused: int, running: int) -> Term:
            if cfg.user_pause:
                return where(s.upause == 1, value == paused, value == running)
            return value == (paused if cfg.paused else running)

        return all_of([
            as_before(s.src_run, SrcRun.PAUSED, SrcRun.RUNNING),
            s.dirty_log == 0,
            *([s.hwpt_tracking == 0] if cfg.hwpt_flag else []),
            *(as_before(s[cfg.key("kstate", d)], S.STOP, S.RUNNING) for d in range(self.devices)),
        ])

    def ended(self, s: View) -> Term:
        """Refused by a blocker, or QEMU is idle after it completed, failed or was
        cancelled (a retry may follow)."""
        st = s.status
        over = (st == Status.COMPLETED) | (st == Status.FAILED) | (st == Status.CANCELLED)
        return (s.refused == 1) | ((s.pc == Phase.IDLE) & over)

    def end_state(self, s: View) -> Term:
        """Ended, and no retry left."""
        st = s.status
        retry_left = (((st == Status.FAILED) | (st == Status.CANCELLED))
                      & (s.attempt + 1 < self.cfg.attempts))
        return self.ended(s) & ~retry_left
