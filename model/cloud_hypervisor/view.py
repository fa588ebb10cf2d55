"""cloud-hypervisor's answers to the shared property code (:class:`model.protocol.view.FlowView`).

What the flow's variables mean to the properties of :mod:`model.protocol.props`
(docs/spec-files.md#cloud-hypervisor says how a property reads for this VMM):

* the source VM runs the guest while ``src_run`` is ``running``; the destination while
  ``dst_run`` is ``running``;
* a migration is in progress in SETUP, ACTIVE and DEVICE; an error is pending while a SET
  walks to its recovery state or waits for its reset, or on check_migration()'s recovery;
* VFIO's part of the next ``vm.dirty_log()`` is every device's DMA log;
* in postcopy the pages still in ``bitmap`` when the destination starts are owed: the
  source serves them on demand from memory that no longer changes (its vCPUs are paused,
  its devices stopped);
* "as before" is the source's state before the migration: its VM running (or paused, for
  a VM migrated while paused) with every migratable device RUNNING (or STOP), and no dirty
  logging.
"""

from __future__ import annotations

from checker.lang.layout import View
from checker.lang.ops import Term, all_of, any_of, isin
from model.cloud_hypervisor.actions import (
    FAIR_FAMILIES,
    FAULT_FAMILIES,
    MIGRATING,
    REOPEN_FAMILIES,
    RESET_FAMILIES,
)
from model.cloud_hypervisor.config import ChConfig
from model.cloud_hypervisor.flow import DstRun, Phase, Req, SrcRun, Status
from model.protocol.view import ConfigView


class ChView(ConfigView):
    """cloud-hypervisor's flow of one scenario, as :mod:`model.protocol.props` reads it."""

    fault_families: tuple[str, ...] = FAULT_FAMILIES
    reset_families: tuple[str, ...] = RESET_FAMILIES
    reopen_families: tuple[str, ...] = REOPEN_FAMILIES
    fair_families: tuple[str, ...] = FAIR_FAMILIES

    def __init__(self, cfg: ChConfig) -> None:
        super().__init__(cfg)
        self.cfg: ChConfig = cfg

    def p2p_hit_keys(self) -> tuple[str, ...]:
        if not self.cfg.p2p_actions:
            return ()
        return tuple(self.cfg.key(f"{side}p2p_hit", d)
                     for side in ("", "dst_") for d in range(self.devices))

    def bounds(self, s: View) -> list[Term]:
        return [s["round"] <= self.cfg.rounds, s.cursor < self.devices]

    def migrating(self, s: View) -> Term:
        return isin(s.status, MIGRATING)

    def doomed(self, s: View) -> Term:
        return (s.req == Req.RECOVER) | (s.req == Req.RESET)

    def tracker_report(self, s: View) -> Term:
        out: Term = 0 * s.stale
        if self.cfg.any_logging:
            for d in range(self.devices):
                out = out | s[self.cfg.key("dma_log", d)]
        return out

    def owed(self, s: View) -> Term | None:
        return s.bitmap if self.cfg.postcopy else None

    def device_logging_behind_viommu(self, s: View) -> Term | None:
        # start_migration() refuses a device behind the vIOMMU before logging starts; with
        # preserve_source (local only) nothing logs at all.
        if not (self.cfg.viommu and self.cfg.any_logging):
            return None
        return any_of(s[self.cfg.key("log_on", d)] == 1 for d in range(self.devices))

    def source_runs(self, s: View) -> Term:
        return s.src_run == SrcRun.RUNNING

    def destination_runs(self, s: View) -> Term:
        return s.dst_run == DstRun.RUNNING

    def completed(self, s: View) -> Term:
        return s.status == Status.COMPLETED

    def failed_and_done(self, s: View) -> Term:
        return (s.pc == Phase.IDLE) & (s.status == Status.FAILED)

    def source_as_before(self, s: View) -> Term:
        cfg = self.cfg
        before = SrcRun.PAUSED if cfg.starts_paused else SrcRun.RUNNING
        checks = [s.src_run == before, s.dirty_log == 0]
        checks += [s[cfg.key("kstate", d)] == cfg.initial_kstate(d) for d in range(self.devices)]
        if cfg.any_logging:
            checks += [s[cfg.key("log_on", d)] == 0 for d in range(self.devices)]
        return all_of(checks)

    def ended(self, s: View) -> Term:
        over = (s.status == Status.COMPLETED) | (s.status == Status.FAILED)
        return (s.refused == 1) | ((s.pc == Phase.IDLE) & over)

    def end_state(self, s: View) -> Term:
        return self.ended(s)
