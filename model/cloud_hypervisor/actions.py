"""The actions of cloud-hypervisor's flow: the source's migration worker, the destination,
the kernel's steps, the guest and the devices, and the failures the scenario allows.

Families are named after the cloud-hypervisor functions they model (``Pause`` is
VfioPciDevice::pause issuing its SET, ``SaveStopCopy`` the first SET of
save_migration_data, ``Restore`` VfioPciDevice::new with load_migration_data, ...); the
kernel's steps and faults are the same families as in QEMU's model (``KernelStep``,
``DeviceFault``, ``DeviceReset`` and their ``Dst`` forms).  Weak fairness
(MigrationEnds) applies to cloud-hypervisor's and the kernel's steps, not to the guest,
the devices, a user or an injected failure.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the guest and the devices act only while it matters (as for QEMU).      ║
║                                                                                      ║
║ vCPU writes are modelled while the source VM runs during a migration, DMA writes     ║
║ while the migration is in progress and the device's state allows DMA; a write that ║
║ would change no variable is not offered.  In a local migration the destination     ║
║ takes over the source's memory itself (memory file descriptors, send_memory_fds):   ║
║ no page is ever stale, so writes there change nothing the properties read and are   ║
║ not offered either.                                                                  ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: bounded pre-copy, one injected device fault, one late error.            ║
║                                                                                      ║
║ is_precopy_converged() decides on measured bandwidth and the downtime budget; the   ║
║ model lets it say yes at any iteration after the first (iteration 0 has no estimate ║
║ and converges only when nothing is dirty), and must say yes after ``precopy_rounds`` ║
║ dirty logs (the timeout with timeout_strategy=ignore).  ``cancel`` is the timeout    ║
║ with the default timeout_strategy=cancel, at any convergence check.  Device faults, ║
║ dirty-log failures and late errors each end the migration, so at most one of each   ║
║ happens per behaviour (device faults are bounded to one like QEMU's).               ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

import numpy as np

from checker.lang.layout import Next, View
from checker.lang.ops import Term, all_of, any_of, bit, is_any, isin, lookup_bool, where
from checker.lang.spec import Action, Effect, Predicate
from model.cloud_hypervisor.config import ChConfig
from model.cloud_hypervisor.flow import (
    DEVICE_PHASES,
    IS_DST,
    RECOVER,
    REQUEST_PHASES,
    SEND_PHASES,
    TARGET,
    Control,
    DstRun,
    Phase,
    Plan,
    Req,
    SrcRun,
    Status,
)
from model.fsm.uapi import ALLOWS_DMA, ALLOWS_P2P_INITIATE, DeviceState
from model.protocol.kernel import hangs, next_step, take_arc

S = DeviceState

# The SET-issuing families, by the phase whose unit they start (cloud-hypervisor's function).
ISSUE_FAMILIES: dict[Phase, str] = {
    Phase.PAUSE: "Pause",  # VfioPciDevice::pause
    Phase.SAVE_COPY: "SaveStopCopy",  # VfioCommon::save_migration_data
    Phase.SAVE_STOP: "SaveStop",
    Phase.LOAD: "Restore",  # VfioPciDevice::new: reset, load_migration_data
    Phase.DST_RESUME: "DstResume",  # VfioPciDevice::resume on the destination
    Phase.USER_RESUME: "DstResume",
    Phase.FAIL_RESUME: "Resume",  # VfioPciDevice::resume on the source
}
FAIR_FAMILIES: tuple[str, ...] = (
    "MigrateStart", "MigrateRefused", "StartDirtyLog", "Iterate", "Converged", "SendPage",
    "DirtyLog", "VmPause", "VmPaused", "FinalDirtyLog", "SnapshotDirtyLog", "SendState",
    "RestoreWrite", "Complete", "DstResumeVcpus", "Finish", "ResumeVcpus", "StopDirtyLog",
    "UserResumeVcpus", *dict.fromkeys(ISSUE_FAMILIES.values()), "KernelStep", "DstKernelStep",
    "DeviceReset", "DstDeviceReset",
)
FAULT_FAMILIES = ("DeviceFault", "DstDeviceFault")
RESET_FAMILIES = ("DeviceReset", "DstDeviceReset")
# A destination device is a fresh one: the new receiver's, or reset by VfioPciDevice::new.
REOPEN_FAMILIES = ("MigrateStart", "Restore")

# A P2P write changes a device that must not change: stopped, being saved or being loaded.
P2P_TARGET_FROZEN = np.zeros(8, dtype=bool)
P2P_TARGET_FROZEN[[S.STOP, S.STOP_COPY, S.RESUMING]] = True
SETUP_OR_ACTIVE = (Status.SETUP, Status.ACTIVE)
MIGRATING = (Status.SETUP, Status.ACTIVE, Status.DEVICE)


class ChActions:
    """Builds the action list of one configuration."""

    def __init__(self, cfg: ChConfig, plan: Plan, ctl: Control) -> None:
        self.cfg = cfg
        self.plan = plan
        self.ctl = ctl
        self.actions: list[Action] = []
        # Whether any step can fail: only then are the failure path's actions offered.
        m = cfg.scenario.migration
        self.can_fail = (m.device_faults or m.late_errors or m.cancel or cfg.blocked
                         or (m.query_faults and cfg.any_logging) or self._kernel_may_refuse())

    def _kernel_may_refuse(self) -> bool:
        """Without injected failures a SET still fails where the kernel refuses a walk the
        flow asks for (-EINVAL, e.g. with a patched step table): walk each request from
        every state the device can be in."""
        from model.fsm.uapi import supported_states

        for d in range(self.cfg.devices):
            step = self.cfg.step[d]
            for ph in REQUEST_PHASES:
                for goal in (int(TARGET[ph]), int(RECOVER[ph])):
                    for start in supported_states(self.cfg.flags(d)):
                        k, seen = int(start), set()
                        while goal >= 0 and k != goal and k >= 0 and k not in seen:
                            seen.add(k)
                            k = int(step[k, goal])
                        if goal >= 0 and k == -1:
                            return True
        return False

    def add(self, family: str, guard: Predicate, effect: Effect, **params: object) -> None:
        self.actions.append(Action(family, guard, effect, dict(params)))

    def build(self) -> list[Action]:
        self._start()
        if self.cfg.precopy:
            self._iterations()
        self._pause_and_save()
        self._destination()
        self._finish_and_failure()
        self._requests()
        self._kernel()
        self._guest_and_devices()
        return self.actions

    # ------------------------------------------------------------------ helpers
    def at_unit(self, s: View, phase: Phase, dev: int | None = None) -> Term:
        """``s`` is at a unit of ``phase`` (of device ``dev``) with no SET in flight."""
        here = (s.pc == phase) & (s.req == Req.IDLE)
        if dev is not None:
            here = here & (self.plan.device_at(s, phase, s.cursor) == dev)
        return here

    def sync(self, t: Next) -> None:
        """vm.dirty_log(): KVM's log (MemoryManager::dirty_log) and every device's
        DMA_LOGGING_REPORT (VfioCommon::dirty_log, read and cleared), merged into the
        table of pages to send (docs/sources.md#ch-dirty-log)."""
        cfg = self.cfg
        table = t["bitmap"] | t["kvm_dirty"]
        t["kvm_dirty"] = 0
        if cfg.any_logging:
            for d in range(cfg.devices):
                key = cfg.key("dma_log", d)
                table = table | t[key]
                t[key] = 0
        t["bitmap"] = table

    def stop_logging(self, t: Next) -> None:
        """vm.stop_dirty_log(): KVM's log, then DMA_LOGGING_STOP on every device that
        started it (VfioCommon::stop_dirty_log)."""
        cfg = self.cfg
        if not cfg.precopy:
            return
        t["dirty_log"] = 0
        t["kvm_dirty"] = 0
        if cfg.any_logging:
            for d in range(cfg.devices):
                t[cfg.key("log_on", d)] = 0
                t[cfg.key("dma_log", d)] = 0

    def fail_unit(self, t: Next, rows: Term) -> None:
        """The unit of ``rows`` returned an error (after its recovery): what its caller
        does with it."""
        if not is_any(rows):
            return
        pc = t["pc"]
        # The destination's receive fails (restore, or Vm::resume at Complete): it
        # answers the request with an error and drops the VM; the source fails.
        dst_fail = rows & ((pc == Phase.LOAD) | (pc == Phase.DST_RESUME))
        t["dst_run"] = where(dst_fail, DstRun.ABORTED, t["dst_run"])
        # check_migration's own Vm::resume failed: the VMM exits (exit_evt).
        exits = rows & (pc == Phase.FAIL_RESUME)
        t["src_run"] = where(exits, SrcRun.EXITED, t["src_run"])
        if is_any(exits):
            self.ctl.enter(t, exits, Phase.FAIL_STOP_LOG)
        # A user's resume of the destination failed: it stays paused.
        user = rows & (pc == Phase.USER_RESUME)
        if is_any(user):
            self.ctl.enter(t, user, Phase.IDLE)
        rest = rows & ~exits & ~user
        if is_any(rest):
            self.ctl.enter_failure(t, rest)

    # ------------------------------------------------------------------ start
    def _start(self) -> None:
        cfg, ctl = self.cfg, self.ctl

        def idle_none(s: View) -> Term:
            return (s.pc == Phase.IDLE) & (s.status == Status.NONE) & (s.refused == 0)

        if cfg.refused_at_start:
            def refuse(s: View, t: Next) -> None:
                # VfioPciDevice::start_migration() fails (decision.py): send_migration()
                # returns the error before any VFIO call; check_migration() has nothing
                # to undo.
                t.refused = 1

            self.add("MigrateRefused", idle_none, refuse)
            return

        def start(s: View, t: Next) -> None:
            # send_migration(): Start, (local: memory fds), Config; start_migration();
            # precopy: MemoryManager::start_dirty_log (KVM's log) and iteration 0's table,
            # the whole memory (memory_range_table(Sparse), 1ad1de1398).
            # (a VM that is paused already skips Vm::pause: its migration is in the
            # stop-and-copy state from the start)
            t.status = Status.DEVICE if cfg.starts_paused and not cfg.precopy else Status.SETUP
            t.stale = 0 if cfg.local else cfg.all_pages
            t.bitmap = 0 if cfg.local else cfg.all_pages
            if cfg.precopy:
                t.dirty_log = 1
                t.kvm_dirty = 0
            ctl.enter(t, s.ones(), self.plan.start)

        self.add("MigrateStart", idle_none, start)

        for d in range(cfg.devices):
            def log_guard(s: View, d: int = d) -> Term:
                return self.at_unit(s, Phase.START_DIRTY_LOG, d)

            def log_start(s: View, t: Next, d: int = d) -> None:
                # VfioCommon::start_dirty_log: DMA_LOGGING_START over the guest's memory
                # regions; a driver without DMA logging fails it (-ENOTTY).
                rows = s.ones()
                if not cfg.logs[d]:
                    self.fail_unit(t, rows)
                    return
                t[cfg.key("log_on", d)] = 1
                t[cfg.key("dma_log", d)] = 0
                ctl.finish(t, rows)
                t.status = where(t.pc == Phase.ITER_DECIDE, Status.ACTIVE, t.status)

            if cfg.precopy:
                self.add("StartDirtyLog", log_guard, log_start, dev=cfg.names[d])

    # ------------------------------------------------------------------ memory iterations
    def _iterations(self) -> None:
        cfg, ctl = self.cfg, self.ctl

        def iterate_guard(s: View) -> Term:
            # not converged: something to send, and pre-copy rounds left
            return (s.pc == Phase.ITER_DECIDE) & (s.bitmap != 0) & (s["round"] < cfg.rounds)

        def iterate(s: View, t: Next) -> None:
            t.pc = Phase.ITER_SEND

        self.add("Iterate", iterate_guard, iterate)

        def converged_guard(s: View) -> Term:
            # iteration 0 has no downtime estimate: it converges only when nothing is dirty
            return (s.pc == Phase.ITER_DECIDE) & ((s["round"] >= 1) | (s.bitmap == 0))

        def converged(s: View, t: Next) -> None:
            # do_memory_iterations() returns the unsent table; vm.pause() follows.
            t.status = Status.DEVICE
            ctl.enter(t, s.ones(), Phase.VM_PAUSE)

        self.add("Converged", converged_guard, converged)

        def sync_guard(s: View) -> Term:
            return (s.pc == Phase.ITER_SEND) & (s.bitmap == 0)

        def dirty_log(s: View, t: Next) -> None:
            # the next iteration's table: vm.dirty_log()
            self.sync(t)
            t["round"] = s["round"] + 1
            t.pc = Phase.ITER_DECIDE

        self.add("DirtyLog", sync_guard, dirty_log)

        if cfg.scenario.migration.cancel:
            def cancel(s: View, t: Next) -> None:
                # is_precopy_converged(): timeout with TimeoutStrategy::Cancel -> error
                self.ctl.enter_failure(t, s.ones())

            self.add("TimeoutCancel", lambda s: s.pc == Phase.ITER_DECIDE, cancel)

        if cfg.scenario.migration.query_faults and cfg.any_logging:
            def qguard(s: View) -> Term:
                return (sync_guard(s) | (s.pc == Phase.FINAL_SYNC) | (s.pc == Phase.SNAP_SYNC))

            def qfail(s: View, t: Next) -> None:
                # VfioCommon::dirty_log: DMA_LOGGING_REPORT fails -> MigratableError
                self.ctl.enter_failure(t, s.ones())

            self.add("DirtyLogFails", qguard, qfail)

        for ph, fam in ((Phase.FINAL_SYNC, "FinalDirtyLog"), (Phase.SNAP_SYNC, "SnapshotDirtyLog")):
            def sguard(s: View, ph: Phase = ph) -> Term:
                return s.pc == ph

            def do_sync(s: View, t: Next) -> None:
                self.sync(t)
                ctl.finish(t, s.ones())

            self.add(fam, sguard, do_sync)

    # ------------------------------------------------------------------ pause and save
    def _pause_and_save(self) -> None:
        ctl = self.ctl

        def pause(s: View, t: Next) -> None:
            # Vm::pause: CpuManager::pause first (vmm/src/vm.rs); VmState stays Running
            # until every device paused.
            t.status = Status.DEVICE
            t.src_run = SrcRun.VCPUS_PAUSED
            ctl.finish(t, s.ones())

        self.add("VmPause", lambda s: s.pc == Phase.VM_PAUSE, pause)

        def paused(s: View, t: Next) -> None:
            t.src_run = SrcRun.PAUSED
            ctl.finish(t, s.ones())

        self.add("VmPaused", lambda s: s.pc == Phase.VM_PAUSED, paused)

        for p in range(self.cfg.pages):
            def send_guard(s: View, p: int = p) -> Term:
                return isin(s.pc, SEND_PHASES) & bit(s.bitmap, p)

            def send(s: View, t: Next, p: int = p) -> None:
                # transport::send_memory: the page's current content goes to the
                # destination (postcopy: the serve thread answers its fault).
                t.bitmap = s.bitmap & ~(1 << p)
                t.stale = s.stale & ~(1 << p)
                ctl.settle(t, s.ones())

            self.add("SendPage", send_guard, send, page=f"p{p}")

    # ------------------------------------------------------------------ destination
    def _destination(self) -> None:
        cfg, ctl = self.cfg, self.ctl

        def send_state(s: View, t: Next) -> None:
            # transport::send_state -> vm_receive_state(): Vm::new_from_memory_manager
            ctl.finish(t, s.ones())

        self.add("SendState", lambda s: s.pc == Phase.SEND_STATE, send_state)

        for d in range(cfg.devices):
            def wguard(s: View, d: int = d) -> Term:
                return self.at_unit(s, Phase.LOAD_WRITE, d)

            def write(s: View, t: Next, d: int = d) -> None:
                # load_migration_data: write_migration_data (left in RESUMING)
                t[cfg.key("dst_loaded", d)] = 1
                ctl.finish(t, s.ones())

            self.add("RestoreWrite", wguard, write, dev=cfg.names[d])

        def complete(s: View, t: Next) -> None:
            # Request::complete (the destination resumes) or, for a VM that was paused
            # before, Request::complete_paused (it stays paused: 23fc9ca258).
            if cfg.starts_paused:
                t.dst_run = DstRun.PAUSED
            ctl.finish(t, s.ones())

        self.add("Complete", lambda s: s.pc == Phase.COMPLETE, complete)

        vcpu_phases = [(Phase.DST_VCPUS, "DstResumeVcpus"), (Phase.USER_VCPUS, "UserResumeVcpus")]
        for ph, fam in vcpu_phases:
            if ph not in self.plan.reachable or (ph == Phase.USER_VCPUS and not cfg.starts_paused):
                continue

            def vguard(s: View, ph: Phase = ph) -> Term:
                return s.pc == ph

            def vcpus(s: View, t: Next) -> None:
                # the destination's Vm::resume: CpuManager::resume after every device
                t.dst_run = DstRun.RUNNING
                ctl.finish(t, s.ones())

            self.add(fam, vguard, vcpus)

        if cfg.starts_paused:
            def uguard(s: View) -> Term:
                return ((s.pc == Phase.IDLE) & (s.status == Status.COMPLETED)
                        & (s.dst_run == DstRun.PAUSED))

            def user_resume(s: View, t: Next) -> None:
                # a user's resume of the VM CompletePaused left paused (vm_resume)
                ctl.enter(t, s.ones(), Phase.USER_RESUME)

            self.add("UserResume", uguard, user_resume)

    # ------------------------------------------------------------------ finish, failure
    def _finish_and_failure(self) -> None:
        cfg, ctl = self.cfg, self.ctl

        def finish(s: View, t: Next) -> None:
            # send_migration(): vm.stop_dirty_log(), (postcopy: the serve thread drained
            # every page), vm.complete_migration(); check_migration() Ok: the source VM
            # shuts down, or is kept paused with preserve_source.
            self.stop_logging(t)
            t.status = Status.COMPLETED
            t.src_run = SrcRun.PAUSED if cfg.preserve_source else SrcRun.SHUTDOWN
            ctl.finish(t, s.ones())

        self.add("Finish", lambda s: s.pc == Phase.FINISH, finish)

        if cfg.scenario.migration.late_errors:
            def late(s: View, t: Next) -> None:
                # An error after the destination answered Complete: the answer is lost,
                # vm.stop_dirty_log() or vm.complete_migration() fails, or the postcopy
                # serve thread fails; send_migration() returns it and check_migration()
                # resumes the source VM.
                ctl.enter_failure(t, s.ones())

            self.add("LateError", lambda s: s.pc == Phase.FINISH, late)

        if not self.can_fail:
            return

        def vcpus(s: View, t: Next) -> None:
            t.src_run = SrcRun.RUNNING
            ctl.finish(t, s.ones())

        if not cfg.starts_paused:
            self.add("ResumeVcpus", lambda s: s.pc == Phase.FAIL_VCPUS, vcpus)

        def stop(s: View, t: Next) -> None:
            # check_migration(): vm.stop_dirty_log(), errors ignored
            self.stop_logging(t)
            ctl.finish(t, s.ones())

        self.add("StopDirtyLog", lambda s: s.pc == Phase.FAIL_STOP_LOG, stop)

    # ------------------------------------------------------------------ requests, kernel
    def _requests(self) -> None:
        cfg = self.cfg
        by_family: dict[str, list[Phase]] = {}
        for ph in REQUEST_PHASES:
            if ph in self.plan.reachable and (ph != Phase.FAIL_RESUME or self.can_fail):
                by_family.setdefault(ISSUE_FAMILIES[ph], []).append(ph)
        for family, phases in by_family.items():
            resets = Phase.LOAD in phases
            for d in range(cfg.devices):
                if not cfg.migratable[d]:
                    continue

                def guard(s: View, phases: list[Phase] = phases, d: int = d) -> Term:
                    return any_of([self.at_unit(s, ph, d) for ph in phases])

                def issue(s: View, t: Next, d: int = d, resets: bool = resets) -> None:
                    if resets:
                        # VfioPciDevice::new resets the device before anything else
                        t[cfg.key("dst_kstate", d)] = S.RUNNING
                        t[cfg.key("dst_valid", d)] = 0
                        t[cfg.key("dst_loaded", d)] = 0
                    t.req = Req.TARGET

                self.add(family, guard, issue, dev=cfg.names[d])

    def _walk(self, x: View | Next, d: int, dst: bool) -> tuple[Term, Term, Term]:
        """(current, goal, next step) of the request of device ``d``."""
        cfg = self.cfg
        k = x[cfg.key("dst_kstate" if dst else "kstate", d)]
        pc = x["pc"]
        target = where(x["req"] == Req.TARGET, self._table(TARGET, pc), self._table(RECOVER, pc))
        return k, target, next_step(cfg.step[d], k, target)

    @staticmethod
    def _table(table: np.ndarray, pc: Term) -> Term:
        out: Term = -1 + 0 * pc
        for ph in REQUEST_PHASES:
            out = where(pc == ph, int(table[ph]), out)
        return out

    def _walking(self, s: View, d: int, dst: bool) -> Term:
        phases = [ph for ph in REQUEST_PHASES if bool(IS_DST[ph]) == dst and ph in self.plan.reachable]
        here = any_of([(s.pc == ph) & (self.plan.device_at(s, ph, s.cursor) == d) for ph in phases])
        return here & ((s.req == Req.TARGET) | (s.req == Req.RECOVER))

    def _req_failed(self, t: Next, rows: Term) -> None:
        """The SET failed: the recovery state's SET next, or the reset when there is none
        or it failed too (transition_migration_state_with_recovery, 794997f241)."""
        if not is_any(rows):
            return
        rec = self._table(RECOVER, t["pc"])
        to_reset = (t["req"] == Req.RECOVER) | (rec < 0)
        t["req"] = where(rows, where(to_reset, Req.RESET, Req.RECOVER), t["req"])

    def _kernel(self) -> None:
        cfg = self.cfg
        for dst, fam in ((False, "KernelStep"), (True, "DstKernelStep")):
            pre = "dst_" if dst else ""
            for d in range(cfg.devices):
                if not cfg.migratable[d]:
                    continue

                def guard(s: View, d: int = d, dst: bool = dst) -> Term:
                    k, goal, nxt = self._walk(s, d, dst)
                    return self._walking(s, d, dst) & ~hangs(k, goal, nxt)

                def step(s: View, t: Next, d: int = d, dst: bool = dst, pre: str = pre) -> None:
                    k, goal, nxt = self._walk(s, d, dst)
                    arc = take_arc(k, goal, nxt, s[cfg.key("dst_loaded", d)] if dst else None)
                    if dst:
                        valid = cfg.key("dst_valid", d)
                        t[valid] = where(arc.validated, 1, s[valid])
                    t[cfg.key(f"{pre}kstate", d)] = arc.state
                    reached = arc.reached
                    failed = reached & (s.req == Req.RECOVER)
                    t.req = where(reached, Req.IDLE, s.req)
                    self._req_failed(t, arc.refused)
                    ok = reached & ~failed
                    if is_any(ok):
                        self.ctl.finish(t, ok)
                    self.fail_unit(t, failed)

                self.add(fam, guard, step, dev=cfg.names[d])

            if cfg.scenario.migration.device_faults:
                ffam = "DstDeviceFault" if dst else "DeviceFault"
                for d in range(cfg.devices):
                    if not cfg.migratable[d]:
                        continue
                    for outcome in ("stays", "error"):
                        def fguard(s: View, d: int = d, dst: bool = dst) -> Term:
                            k, goal, nxt = self._walk(s, d, dst)
                            return (self._walking(s, d, dst) & (s.fault_used == 0)
                                    & (k != goal) & (nxt >= 0) & (nxt != k))

                        def fault(s: View, t: Next, d: int = d, pre: str = pre,
                                  outcome: str = outcome) -> None:
                            # The driver could not take the arc: the device stays where it
                            # was or is in ERROR (uAPI vfio.h, docs/sources.md#uapi-arcs).
                            t.fault_used = 1
                            if outcome == "error":
                                t[cfg.key(f"{pre}kstate", d)] = S.ERROR
                            self._req_failed(t, s.ones())

                        self.add(ffam, fguard, fault, dev=cfg.names[d], outcome=outcome)

            rfam = "DstDeviceReset" if dst else "DeviceReset"
            for d in range(cfg.devices):
                if not cfg.migratable[d] or not self.can_fail:
                    continue

                def rguard(s: View, d: int = d, dst: bool = dst) -> Term:
                    here = self._walking_any(s, d, dst)
                    return here & (s.req == Req.RESET)

                def reset(s: View, t: Next, d: int = d, dst: bool = dst, pre: str = pre) -> None:
                    # VfioCommon::reset_and_rearm: VFIO_DEVICE_RESET, the device is RUNNING;
                    # the original error is returned.
                    t[cfg.key(f"{pre}kstate", d)] = S.RUNNING
                    if dst:
                        t[cfg.key("dst_valid", d)] = 0
                        t[cfg.key("dst_loaded", d)] = 0
                    t.req = Req.IDLE
                    self.fail_unit(t, s.ones())

                self.add(rfam, rguard, reset, dev=cfg.names[d])

    def _walking_any(self, s: View, d: int, dst: bool) -> Term:
        phases = [ph for ph in REQUEST_PHASES if bool(IS_DST[ph]) == dst and ph in self.plan.reachable]
        return any_of([(s.pc == ph) & (self.plan.device_at(s, ph, s.cursor) == d) for ph in phases])

    # ------------------------------------------------------------------ guest, devices
    def _guest_and_devices(self) -> None:
        cfg = self.cfg
        if not cfg.precopy:
            # local: the destination takes the source's memory itself; postcopy: nothing
            # is sent before the pause, every page is delivered afterwards from the paused
            # source.  Either way a write before the pause changes nothing the model holds.
            return
        if cfg.scenario.vm.cpu_writes:
            for p in range(cfg.pages):
                def cguard(s: View, p: int = p) -> Term:
                    running = (s.src_run == SrcRun.RUNNING) & isin(s.status, SETUP_OR_ACTIVE)
                    return running & ~(bit(s.stale, p) & (bit(s.kvm_dirty, p) | (s.dirty_log == 0)))

                def cwrite(s: View, t: Next, p: int = p) -> None:
                    # a vCPU store; KVM's dirty log records it while logging is on
                    t.stale = s.stale | (1 << p)
                    t.kvm_dirty = s.kvm_dirty | where(s.dirty_log == 1, 1 << p, 0)

                self.add("CpuWrite", cguard, cwrite, page=f"p{p}")
        for d in range(cfg.devices):
            for p in cfg.dma_pages[d]:
                self.add("DmaWrite", *self._dma(d, p), dev=cfg.names[d], page=f"p{p}")
        if not cfg.p2p_actions:
            return
        for d in range(cfg.devices):
            if not cfg.p2p_dma[d]:
                continue
            for e in range(cfg.devices):
                if e != d:
                    self.add("P2PWrite", *self._p2p(d, e, dst=False), dev=cfg.names[d],
                             peer=cfg.names[e])
                    self.add("DstP2PWrite", *self._p2p(d, e, dst=True), dev=cfg.names[d],
                             peer=cfg.names[e])

    def _dma(self, d: int, p: int) -> tuple[Predicate, Effect]:
        cfg = self.cfg
        log = cfg.any_logging and cfg.logs[d]

        def new(s: View) -> dict[str, Term]:
            out = {"stale": s.stale | (1 << p)}
            if log:
                key = cfg.key("dma_log", d)
                out[key] = s[key] | where(s[cfg.key("log_on", d)] == 1, 1 << p, 0)
            return out

        def guard(s: View) -> Term:
            ok = lookup_bool(ALLOWS_DMA, s[cfg.key("kstate", d)]) & isin(s.status, MIGRATING)
            if not is_any(ok):
                return ok
            return ok & any_of([v != s[k] for k, v in new(s).items()])

        def write(s: View, t: Next) -> None:
            # a DMA write of the device: the destination's copy is stale; the device's
            # DMA log records it once DMA_LOGGING_START ran on it
            for k, v in new(s).items():
                t[k] = v

        return guard, write

    def _p2p(self, d: int, e: int, dst: bool) -> tuple[Predicate, Effect]:
        cfg = self.cfg
        pre = "dst_" if dst else ""
        hit = cfg.key(f"{pre}p2p_hit", e)

        def guard(s: View) -> Term:
            # RUNNING / PRE_COPY may initiate P2P DMA; it lands in a peer that must not
            # change.  A destination device initiates once it was loaded and resumed.
            ok = all_of([
                lookup_bool(ALLOWS_P2P_INITIATE, s[cfg.key(f"{pre}kstate", d)]),
                lookup_bool(P2P_TARGET_FROZEN, s[cfg.key(f"{pre}kstate", e)]),
                s[hit] == 0,
            ])
            if dst:
                return ok & (s[cfg.key("dst_valid", d)] == 1) & (s.dst_run != DstRun.ABORTED)
            return ok & isin(s.status, MIGRATING)

        def write(s: View, t: Next) -> None:
            t[hit] = 1

        return guard, write


__all__ = ["ChActions", "DEVICE_PHASES", "FAIR_FAMILIES", "FAULT_FAMILIES", "RESET_FAMILIES"]
