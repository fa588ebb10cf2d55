"""The actions of the migration model: guest, devices, kernel, QEMU source and destination.

Every parameterised action is one :class:`~checker.lang.spec.Action` per parameter value
(``DmaWrite(dev=vf0, iova=1)``).  Guards and effects work on whole columns of states and,
written with Python operators and :mod:`checker.lang.ops` only, on z3 terms alike
(``checker.smt``: induction, BMC); ``is_any`` shortcuts only skip work that would change
nothing, so no result depends on which way a shortcut went.
Families are named after what they model (QEMU hooks keep QEMU's names: SaveSetup is
vfio_save_setup, VmStopPrepare is vfio_vmstate_change_prepare, ...).  The QEMU and kernel
families are the ones weak fairness applies to (:data:`FAIR_FAMILIES`); guest, device,
user (Cancel, MigrateRetry) and fault actions may or may not happen.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the guest and the devices act only while it matters.                    ║
║                                                                                      ║
║ Writes change ``stale`` and the trackers; before a migration every page is stale     ║
║ anyway and no tracker runs, and after it ended the source's memory no longer        ║
║ matters (a new attempt starts with every page dirty again).  So vCPU writes are      ║
║ modelled while the migration is in progress and the source VM runs (gated on its    ║
║ run state, as QEMU's vCPUs are: the switchover pauses them, so none are offered in  ║
║ stop-and-copy unless the VM was left running), DMA writes while the migration is in ║
║ progress and the device's state allows DMA, and a write that would change no        ║
║ variable is not offered (it would only be a stuttering step).  vIOMMU               ║
║ (un)mapping is modelled whenever the guest runs before or during a migration, since ║
║ the mappings at log_global_start matter.                                             ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: bounded pre-copy, checkpoints, one injected device fault.               ║
║                                                                                      ║
║ QEMU's decision to switch over depends on bandwidth and the downtime limit           ║
║ (migration_iteration_run); the model lets it switch over at any time during         ║
║ pre-copy and allows at most ``precopy_rounds`` log_syncs before it must (a counter,  ║
║ ``round``).  Cancels and stream errors act where the migration thread looks at them ║
║ (the CHECKPOINTS of model.migration.phases): a cancel issued in between is only seen ║
║ there, so offering it there alone loses no outcome.  Once an error is pending, the   ║
║ migration thread's next check fails the migration, so its normal steps are not       ║
║ offered any more.  ``device_faults`` allows one failing arc per behaviour (either    ║
║ outcome, at any arc of any SET): enough to reach every recover and reset path of     ║
║ vfio_migration_set_state() while keeping the state space small.                      ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checker.lang.layout import Next, View
from checker.lang.ops import (
    Term,
    bit,
    is_any,
    isin,
    lookup,
    lookup_bool,
    lookup_nd,
    maximum,
    true_like,
    where,
)
from checker.lang.spec import Action, Effect, Predicate
from model.contract import Mutation
from model.fsm.uapi import (
    ALLOWS_DMA,
    ALLOWS_P2P_INITIATE,
    ARC_OPENS_SESSION,
    DeviceState,
    supported_states,
)
from model.migration import config_load, return_path, switchover
from model.migration.config import ModelConfig
from model.migration.dirty import Trackers
from model.migration.multifd import MULTIFD_FAIR_FAMILIES, MultifdActions, reset_threads
from model.migration.phases import (
    CHECKPOINTS,
    ISSUE_FAMILIES,
    KIND,
    PHASES_OF_KIND,
    SIDE_PREFIX,
    Control,
    DstRun,
    Kind,
    Phase,
    PhasePlan,
    Req,
    SrcRun,
    Status,
    migrating,
)
from model.migration.tracking_faults import add_set_tracking_faults, add_stop_tracking_faults
from model.migration.user_pause import add_user_pause, switchover_entry
from model.migration.viommu import add_viommu_actions
from model.protocol.kernel import hangs, next_step, take_arc

S = DeviceState

# Weak fairness (MigrationEnds): QEMU keeps running its own code and the kernel returns
# from an ioctl it can complete.  Nothing forces the guest, the devices, the user or a
# fault to act.
FAIR_FAMILIES: tuple[str, ...] = (
    "MigrateStart", "MigrateRefused", *ISSUE_FAMILIES, "KernelStep", "DstKernelStep",
    "DeviceReset", "DstDeviceReset", "SetupSync", "SendPage", "LogSync", "Switchover", "FinalSync",
    "Complete", "LogGlobalStop", "LoadState", "DstResume", "VmResume", "MigrationFails",
    *MULTIFD_FAIR_FAMILIES, *config_load.CONFIG_LOAD_FAIR_FAMILIES,
)
FAULT_FAMILIES = ("DeviceFault", "DstDeviceFault", "LoadStateFails")
RESET_FAMILIES = ("DeviceReset", "DstDeviceReset")

# A P2P write into a device in these states changes a device whose state is being (or
# has been) saved: STOP and STOP_COPY must not change internal state (uAPI vfio.h).
P2P_TARGET_STOPPED = np.zeros(8, dtype=bool)
P2P_TARGET_STOPPED[[S.STOP, S.STOP_COPY]] = True


@dataclass
class Parts:
    cfg: ModelConfig
    plan: PhasePlan
    ctl: Control
    trk: Trackers


_migrating = migrating


def _no_error(x: View | Next) -> Term:
    """The migration thread goes on only while no error is pending on the stream."""
    return x["mig_error"] == 0


class ActionBuilder:
    def __init__(self, parts: Parts) -> None:
        self.p = parts
        self.cfg = parts.cfg
        self.actions: list[Action] = []

    def add(self, family: str, guard: Predicate, effect: Effect, **params: object) -> None:
        self.actions.append(Action(family, guard, effect, dict(params)))

    def build(self) -> list[Action]:
        self._migrate_command()
        self._device_requests()
        self._kernel()
        self._ram()
        self._completion()
        self._destination()
        self._failure()
        add_user_pause(self.cfg, self.p.ctl, self.add)
        add_stop_tracking_faults(self.cfg, self.add, self.p.trk, self.p.ctl)
        self._guest()
        self._devices()
        if self.cfg.viommu:
            self._viommu()
        self.actions += switchover.actions(self.cfg, self.p.trk) + return_path.actions(self.cfg, self.p.ctl)
        self.actions += config_load.actions(self.cfg, self.p.ctl)
        return self.actions + MultifdActions(self.cfg, self.p.plan, self.p.ctl).build()

    # ================================================================== migrate command
    def _start(self, t: Next, retry: bool, log_start_fails: bool = False) -> None:
        """qmp_migrate -> migration thread -> qemu_savevm_state_setup: RAM's save_setup
        (ram_init_bitmaps: every page dirty, memory_global_dirty_log_start, migration/
        ram.c) then the devices' save_setup; the destination's load_setup follows.

        ╔════════════════════════════════════════════════════════════════════════════╗
        ║ Abstraction: marking every page dirty and starting every tracker is one    ║
        ║ step.  Until the first page is sent every page is in the bitmap, so a      ║
        ║ write that falls between the two is covered either way.                    ║
        ╚════════════════════════════════════════════════════════════════════════════╝
        """
        cfg, ctl, trk = self.cfg, self.p.ctl, self.p.trk
        rows = true_like(t["status"])
        t["status"] = Status.SETUP
        t["stale"] = cfg.all_pages  # a new destination holds no page yet
        if not (retry and cfg.has(Mutation.RETRY_KEEPS_CLEARED_BITS)):
            t["bitmap"] = cfg.all_pages
        t["round"] = 0
        t["mig_error"] = 0
        t["dst_run"] = DstRun.INMIGRATE
        for d in range(cfg.devices):
            t[cfg.key("dst_kstate", d)] = S.RUNNING  # a freshly opened device (vfio_migration_init)
            t[cfg.key("dst_qstate", d)] = S.RUNNING
            t[cfg.key("dst_fd", d)] = 0
            t[cfg.key("dst_loaded", d)] = 0
            t[cfg.key("dst_valid", d)] = 0
            if cfg.p2p_actions:
                t[cfg.key("p2p_hit", d)] = 0
        reset_threads(cfg, t)
        config_load.reset(cfg, t)
        trk.log_start(t)
        switchover.restart(cfg, t)
        first = self.p.plan.order[0]
        if log_start_fails:
            first = self._log_start_failed(t, first)
        ctl.enter(t, rows, first, phases=(first,))

    def _log_start_failed(self, t: Next, first: Phase) -> Phase:
        """DMA_LOGGING_START failed on one device: vfio_devices_dma_logging_start() stops
        logging on every device it had started (and the failed one never logged).  From 9.1
        log_global_start returns the error: memory_global_dirty_log_do_start() stops the
        listeners started before VFIO's and global dirty tracking stays off, and
        ram_init_bitmaps() fails before its sync, so RAM's save_setup fails and VFIO's never
        runs (3688fec892, 639ec3fbf9).  Before, the listener only sets the stream's error
        (vfio_set_migration_error; the migration is in SETUP), KVM logs on and
        ram_init_bitmaps() goes on; the error fails the migration at save_setup.  Returns
        the phase the migration enters (docs/sources.md#qemu-tracking-start-failure)."""
        self.p.trk.start_rollback(t)
        if self.cfg.has(Mutation.IGNORE_LOG_START_FAILURE):
            return first  # mutation: nobody hears of the failure
        t["mig_error"] = 1
        if self.cfg.profile.log_global_start_fails_setup:
            t["dirty_log"] = 0
            return Phase.SAVE_SETUP
        return first

    def _migrate_command(self) -> None:
        cfg = self.cfg

        def idle_none(s: View) -> Term:
            return (s.pc == Phase.IDLE) & (s.status == Status.NONE) & (s.refused == 0)

        if cfg.blocked:
            # migrate_prepare(): a migration blocker refuses the command (QEMU stays
            # where it is, the VM keeps running).
            def refuse(s: View, t: Next) -> None:
                t.refused = 1

            self.add("MigrateRefused", idle_none, refuse)
            return

        self.add("MigrateStart", idle_none, lambda s, t: self._start(t, retry=False))
        if cfg.log_start_can_fail:
            # The first attempt's DMA_LOGGING_START fails on one logging device (the
            # devices before it in the container's list started and are rolled back).
            for d in range(cfg.devices):
                if cfg.logs[d]:
                    self.add("DmaLoggingStartFails", idle_none,
                             lambda s, t: self._start(t, retry=False, log_start_fails=True),
                             dev=cfg.names[d])
        add_set_tracking_faults(cfg, self.add, idle_none,
                                lambda s, t: self._start(t, retry=False, log_start_fails=True))
        if cfg.attempts > 1:
            def can_retry(s: View) -> Term:
                st = s.status
                return ((s.pc == Phase.IDLE) & ((st == Status.FAILED) | (st == Status.CANCELLED))
                        & (s.attempt + 1 < cfg.attempts))

            def retry(s: View, t: Next) -> None:
                t.attempt = s.attempt + 1
                self._start(t, retry=True)

            self.add("MigrateRetry", can_retry, retry)

    # ================================================================== device requests
    def _device_requests(self) -> None:
        """The QEMU hook of a device phase issues its SET (vfio_migration_set_state)."""
        cfg = self.cfg
        for family, (phases, _side) in ISSUE_FAMILIES.items():
            present = [ph for ph in phases if ph in self.p.plan.reachable]
            for d in range(cfg.devices):
                if not present or not (self.p.plan.tgt[present, d] >= 0).any():
                    continue

                def guard(s: View, d: int = d, present: list[Phase] = present) -> Term:
                    at = isin(s.pc, present)
                    return (at & (s.cursor == d) & (s.req == Req.IDLE)
                            & ~(lookup_bool(CHECKPOINTS, s.pc) & (s.mig_error == 1)))

                def issue(s: View, t: Next) -> None:
                    t.req = Req.TARGET

                self.add(family, guard, issue, dev=cfg.names[d])

    # ================================================================== kernel
    def _walk(self, x: View | Next, d: int, side: str) -> tuple[Term, Term, Term]:
        """(current, goal, next step) of the request of device ``d`` on ``side``."""
        k = x[self.cfg.key(f"{SIDE_PREFIX[side]}kstate", d)]
        goal = self.p.ctl.goal(x, d, side)
        return k, goal, next_step(self.cfg.step[d], k, goal)

    def _walking(self, s: View, d: int, side: str) -> Term:
        kind = Kind.SRC_DEV if side == "src" else Kind.DST_DEV
        req = s.req
        return (((req == Req.TARGET) | (req == Req.RECOVER)) & (s.cursor == d)
                & (lookup(KIND, s.pc) == kind))

    def _req_failed(self, t: Next, rows: Term, d: int, side: str) -> None:
        """The SET failed: QEMU sets the recover state, or resets the device when the
        recover state is ERROR or the recovery fails too (vfio_migration_set_state)."""
        if not is_any(rows):
            return
        pc = t["pc"]
        q = t[self.cfg.key(f"{SIDE_PREFIX[side]}qstate", d)]
        req = t["req"]
        rec = self.p.ctl.recover(pc, d, q)
        to_reset = (req == Req.RECOVER) | (rec == S.ERROR)
        t["req"] = where(rows, where(to_reset, Req.RESET, Req.RECOVER), req)

    def _kernel(self) -> None:
        cfg, ctl = self.cfg, self.p.ctl
        faults = cfg.scenario.migration.device_faults
        for side, fam in (("src", "KernelStep"), ("dst", "DstKernelStep")):
            pre = SIDE_PREFIX[side]
            kind = Kind.SRC_DEV if side == "src" else Kind.DST_DEV
            for d in range(cfg.devices):

                def guard(s: View, d: int = d, side: str = side) -> Term:
                    k, goal, nxt = self._walk(s, d, side)
                    # STEP_LOOP / STEP_UNDEFINED / a step to the current state: the
                    # ioctl never returns (the driver loop spins): no step is enabled.
                    return self._walking(s, d, side) & ~hangs(k, goal, nxt)

                def step(s: View, t: Next, d: int = d, side: str = side,
                         pre: str = pre, kind: Kind = kind) -> None:
                    k, goal, nxt = self._walk(s, d, side)
                    req = s.req
                    # One driver step (model/protocol/kernel.py); on the destination the
                    # RESUMING -> STOP arc validates what was written and the SET fails on
                    # invalid or missing data (uAPI vfio.h).
                    loaded = s[cfg.key("dst_loaded", d)] if side == "dst" else None
                    arc = take_arc(k, goal, nxt, loaded)
                    if side == "dst":
                        valid = cfg.key("dst_valid", d)
                        t[valid] = where(arc.validated, 1, s[valid])
                    refused, moved = arc.refused, arc.moved
                    t[cfg.key(f"{pre}kstate", d)] = arc.state
                    reached = arc.reached
                    q = s[cfg.key(f"{pre}qstate", d)]
                    t[cfg.key(f"{pre}qstate", d)] = where(reached, goal, q)
                    t["req"] = where(reached, Req.IDLE, req)
                    # A SET that enters a saving/resuming state from outside returns a new
                    # data_fd; QEMU already holding one is "data_fd out of sync" (-EBADF).
                    fd_key = cfg.key(f"{pre}data_fd", d) if side == "src" else cfg.key("dst_fd", d)
                    opened = moved & reached & lookup_nd(ARC_OPENS_SESSION, k, maximum(nxt, 0))
                    fd = s[fd_key]
                    out_of_sync = opened & (fd == 1)
                    t[fd_key] = where(opened, 1, fd)
                    err = reached & ((req == Req.RECOVER) | out_of_sync)
                    # The refused rows and the reached ones are disjoint, and finishing
                    # touches neither ``req`` nor a refused row.
                    self._req_failed(t, refused, d, side)
                    ctl.finish(t, reached, err, phases=PHASES_OF_KIND[kind], dev=d)

                self.add(fam, guard, step, dev=cfg.names[d])

            if faults:
                ffam = "DeviceFault" if side == "src" else "DstDeviceFault"
                for d in range(cfg.devices):
                    for outcome in ("stays", "error"):

                        def fguard(s: View, d: int = d, side: str = side) -> Term:
                            k, goal, nxt = self._walk(s, d, side)
                            return (self._walking(s, d, side) & (s.fault_used == 0)
                                    & (k != goal) & (nxt >= 0) & (nxt != k))

                        def fail(s: View, t: Next, d: int = d, side: str = side,
                                 pre: str = pre, outcome: str = outcome) -> None:
                            # The driver could not take the arc: it restored the state it
                            # was in, or could not and entered ERROR (uAPI vfio.h: SET
                            # failure leaves the original, an intermediate or ERROR state).
                            t.fault_used = 1
                            if outcome == "error":
                                t[cfg.key(f"{pre}kstate", d)] = S.ERROR
                            self._req_failed(t, s.ones(), d, side)

                        self.add(ffam, fguard, fail, dev=cfg.names[d], outcome=outcome)

        for side, fam in (("src", "DeviceReset"), ("dst", "DstDeviceReset")):
            pre = SIDE_PREFIX[side]
            kind = Kind.SRC_DEV if side == "src" else Kind.DST_DEV
            for d in range(cfg.devices):

                def rguard(s: View, d: int = d, kind: int = kind) -> Term:
                    return (s.req == Req.RESET) & (s.cursor == d) & (lookup(KIND, s.pc) == kind)

                def reset(s: View, t: Next, d: int = d, pre: str = pre,
                          side: str = side, kind: Kind = kind) -> None:
                    # VFIO_DEVICE_RESET: the device is RUNNING again and QEMU caches
                    # RUNNING; the original error is returned to the hook.
                    t[cfg.key(f"{pre}kstate", d)] = S.RUNNING
                    t[cfg.key(f"{pre}qstate", d)] = S.RUNNING
                    t.req = Req.IDLE
                    if side == "dst":
                        t[cfg.key("dst_valid", d)] = 0
                        t[cfg.key("dst_loaded", d)] = 0
                    rows = s.ones()
                    ctl.finish(t, rows, rows, phases=PHASES_OF_KIND[kind], dev=d)

                # (an unloaded device fails RESUMING -> STOP: only with that mutation)
                if faults or self._reset_reachable(d) or cfg.has(Mutation.NO_WAIT_FOR_LOAD_THREADS):
                    self.add(fam, rguard, reset, dev=cfg.names[d])

    def _reset_reachable(self, d: int) -> bool:
        """Without injected faults a SET still fails when the kernel refuses a walk QEMU
        asks for (-EINVAL from the step function, e.g. with a patched kernel table).
        Walk every request of the plan from the state QEMU caches."""
        step, plan = self.cfg.step[d], self.p.plan
        cached = [int(x) for x in supported_states(self.cfg.flags[d])]
        for ph in plan.reachable:
            for q in cached:
                goal = int(plan.tgt[ph, d, q])
                k, seen = q, set()
                while goal >= 0 and k != goal and k not in seen and k >= 0:
                    seen.add(k)
                    k = int(step[k, goal])
                if k == -1:
                    return True
        return False

    # ================================================================== RAM: pages, syncs
    def _ram(self) -> None:
        cfg, trk, ctl = self.cfg, self.p.trk, self.p.ctl

        def setup_guard(s: View) -> Term:
            return s.pc == Phase.SETUP_SYNC

        def setup_sync(s: View, t: Next) -> None:
            # ram_init_bitmaps -> migration_bitmap_sync_precopy(): the sync right after
            # log_global_start, while the migration is in SETUP.  ram_init_bitmaps() does
            # not look at the stream's error, so it runs even with one pending (from a
            # failed unmap query); save_setup, the next check, fails the migration.
            trk.sync(t)
            ctl.finish(t, s.ones(), phases=(Phase.SETUP_SYNC,))

        if Phase.SETUP_SYNC in self.p.plan.order:
            self.add("SetupSync", setup_guard, setup_sync)
        for p in range(cfg.pages):

            def sguard(s: View, p: int = p) -> Term:
                at = (s.pc == Phase.ACTIVE) | (s.pc == Phase.SEND_REST)
                return at & bit(s.bitmap, p) & _no_error(s)

            def send(s: View, t: Next, p: int = p) -> None:
                # ram_save_target_page: the page's bit is cleared and its current content
                # goes on the wire, so the destination's copy is fresh from here.
                t.bitmap = s.bitmap & ~(1 << p)
                t.stale = s.stale & ~(1 << p)
                ctl.settle(t, s.ones(), phases=(Phase.ACTIVE, Phase.SEND_REST))

            self.add("SendPage", sguard, send, page=f"p{p}")

        def sync_guard(s: View) -> Term:
            return (s.pc == Phase.ACTIVE) & (s.round < cfg.rounds) & _no_error(s)

        def log_sync(s: View, t: Next) -> None:
            # migration_bitmap_sync_precopy() at the end of a pre-copy round
            # (ram_state_pending_exact / ram_find_and_save_block, migration/ram.c).
            trk.sync(t)
            t["round"] = s.round + 1

        if cfg.rounds > 0:
            self.add("LogSync", sync_guard, log_sync)

        def switch_guard(s: View) -> Term:
            return (s.pc == Phase.ACTIVE) & _no_error(s) & switchover.can_switchover(cfg, s)

        def switch(s: View, t: Next) -> None:
            # migration_completion_precopy -> migration_stop_vm(FINISH_MIGRATE): vCPUs
            # stop, then the VM-state callbacks run (prepare callbacks first).
            t.status = Status.DEVICE
            if not cfg.has(Mutation.VCPUS_RUN_IN_STOP_COPY):
                t.src_run = SrcRun.FINISH_MIGRATE
            entry, phases = switchover_entry(cfg, self.p.plan, s)
            ctl.enter(t, s.ones(), entry, phases=phases)

        self.add("Switchover", switch_guard, switch)

        def final_guard(s: View) -> Term:
            return (s.pc == Phase.FINAL_SYNC) & _no_error(s)

        def final_sync(s: View, t: Next) -> None:
            # ram_save_complete -> migration_bitmap_sync_precopy(last_stage=true).
            trk.sync(t)
            ctl.finish(t, s.ones(), phases=(Phase.FINAL_SYNC,))

        if Phase.FINAL_SYNC in self.p.plan.order:
            self.add("FinalSync", final_guard, final_sync)

        if cfg.scenario.migration.query_faults and trk.query_can_fail():

            def qguard(s: View) -> Term:
                at = final_guard(s)
                if cfg.rounds > 0:
                    at = at | sync_guard(s)
                if Phase.SETUP_SYNC in self.p.plan.order:
                    at = at | (setup_guard(s) & _no_error(s))
                return at & trk.sync_needed(s)

            def qfail(s: View, t: Next) -> None:
                # A dirty-bitmap query fails: QEMU sets the stream's error
                # (migration_file_set_error in vfio_listener_log_sync, 236e0a45f5) and the
                # migration fails rather than continue with a bitmap missing pages.  In
                # SETUP, ram_init_bitmaps() goes on and the error is seen at save_setup.
                t.mig_error = 1
                if Phase.SETUP_SYNC in self.p.plan.order:
                    ctl.finish(t, s.pc == Phase.SETUP_SYNC, phases=(Phase.SETUP_SYNC,))

            self.add("DirtyQueryFails", qguard, qfail)

    # ================================================================== completion
    def _completion(self) -> None:
        ctl, trk = self.p.ctl, self.p.trk

        def complete(s: View, t: Next) -> None:
            # migration_completion(): status COMPLETED, VM POSTMIGRATE.
            t.status = Status.COMPLETED
            t.src_run = SrcRun.POSTMIGRATE
            ctl.finish(t, s.ones(), phases=(Phase.COMPLETE,))

        self.add("Complete", lambda s: (s.pc == Phase.COMPLETE) & _no_error(s), complete)

        def stop_guard(s: View) -> Term:
            return (s.pc == Phase.LOG_STOP) | (s.pc == Phase.FAIL_LOG_STOP)

        def log_stop(s: View, t: Next) -> None:
            trk.log_stop(t)
            ctl.finish(t, s.ones(), phases=(Phase.LOG_STOP, Phase.FAIL_LOG_STOP))

        self.add("LogGlobalStop", stop_guard, log_stop)

    # ================================================================== destination
    def _destination(self) -> None:
        cfg, ctl = self.cfg, self.p.ctl
        for d in range(cfg.devices):

            def lguard(s: View, d: int = d) -> Term:
                return (s.pc == Phase.LOAD_STATE) & (s.cursor == d) & _no_error(s)

            def load(s: View, t: Next, d: int = d) -> None:
                # vfio_load_state: the device data (saved on the source in STOP_COPY)
                # is written to the RESUMING data_fd (multifd: only an end marker).
                if not cfg.multifd[d]:
                    t[cfg.key("dst_loaded", d)] = 1
                    config_load.config_loaded(cfg, t, d)  # its non-iterable section
                ctl.finish(t, s.ones(), phases=(Phase.LOAD_STATE,), dev=d)

            self.add("LoadState", lguard, load, dev=cfg.names[d])

        def resume(s: View, t: Next) -> None:
            # process_incoming_migration_bh -> vm_start: vCPUs run on the destination.
            t.dst_run = DstRun.RUNNING
            ctl.finish(t, s.ones(), phases=(Phase.DST_RESUME,))

        self.add("DstResume", lambda s: s.pc == Phase.DST_RESUME, resume)

    # ================================================================== failure, cancel
    def _failure(self) -> None:
        cfg, ctl = self.cfg, self.p.ctl

        def at_checkpoint(s: View) -> Term:
            return lookup_bool(CHECKPOINTS, s.pc) & (s.req == Req.IDLE)

        def fguard(s: View) -> Term:
            return at_checkpoint(s) & (s.mig_error == 1)

        def fails(s: View, t: Next) -> None:
            # The migration thread sees the stream error: status FAILED
            # (migration_iteration_run / migration_completion -> migrate_set_state).
            t.status = Status.FAILED
            t.mig_error = 0
            ctl.enter_failure(t, s.ones())

        self.add("MigrationFails", fguard, fails)

        if cfg.scenario.migration.cancel:

            def cguard(s: View) -> Term:
                return at_checkpoint(s) & _no_error(s) & _migrating(s)

            def cancel(s: View, t: Next) -> None:
                # qmp_migrate_cancel -> migration_cancel: CANCELLING, seen by the migration
                # thread at its next check; cleanup ends in CANCELLED.
                t.status = Status.CANCELLED
                ctl.enter_failure(t, s.ones())

            self.add("Cancel", cguard, cancel)

        def resume(s: View, t: Next) -> None:
            # migration_iteration_finish: vm_start() for a VM that was running before.
            t.src_run = SrcRun.RUNNING
            ctl.finish(t, s.ones(), phases=(Phase.FAIL_RESUME,))

        self.add("VmResume", lambda s: s.pc == Phase.FAIL_RESUME, resume)

    # ================================================================== guest
    def _guest_runs(self, s: View) -> Term:
        st = s.status
        running = s.src_run == SrcRun.RUNNING
        during = (st == Status.NONE) | (st == Status.SETUP) | (st == Status.ACTIVE)
        between = ((s.pc == Phase.IDLE) & ((st == Status.FAILED) | (st == Status.CANCELLED))
                   & (s.attempt + 1 < self.cfg.attempts))
        return running & (during | between)

    def _guest(self) -> None:
        cfg = self.cfg
        if not cfg.scenario.vm.cpu_writes:
            return
        for p in range(cfg.pages):

            def guard(s: View, p: int = p) -> Term:
                # The vCPUs run while the VM's RunState is running (do_vm_stop pauses them,
                # system/cpus.c); the status only bounds when a write matters.
                running = (s.src_run == SrcRun.RUNNING) & _migrating(s)
                return running & ~(bit(s.stale, p) & bit(s.kvm_dirty, p))

            def write(s: View, t: Next, p: int = p) -> None:
                # A vCPU store: KVM's dirty log records it (dirty logging is on for the
                # whole migration); the destination's copy is now stale.
                t.stale = s.stale | (1 << p)
                t.kvm_dirty = s.kvm_dirty | (1 << p)

            self.add("CpuWrite", guard, write, page=f"p{p}")

    # ================================================================== devices
    def _devices(self) -> None:
        cfg, trk = self.cfg, self.p.trk
        for d in range(cfg.devices):
            for i in cfg.dma_iovas[d]:

                def guard(s: View, d: int = d, i: int = i) -> Term:
                    ok = lookup_bool(ALLOWS_DMA, s[cfg.key("kstate", d)]) & _migrating(s)
                    if cfg.viommu:
                        ok = ok & (trk.page_of(s, d, i) >= 0)
                    if not is_any(ok):
                        return ok
                    return ok & trk.changes(s, trk.dma_write(s, d, i))

                def write(s: View, t: Next, d: int = d, i: int = i) -> None:
                    # Only states that allow DMA (RUNNING, RUNNING_P2P, PRE_COPY,
                    # PRE_COPY_P2P; uAPI vfio.h) write guest memory.
                    for key, val in trk.dma_write(s, d, i).items():
                        t[key] = val

                place = {"iova": str(i)} if cfg.viommu else {"page": f"p{i}"}
                self.add("DmaWrite", guard, write, dev=cfg.names[d], **place)
        if not cfg.p2p_actions:
            return
        for d in range(cfg.devices):
            if not cfg.p2p_dma[d]:
                continue
            for e in range(cfg.devices):
                if e == d:
                    continue

                def pguard(s: View, d: int = d, e: int = e) -> Term:
                    # Only RUNNING / PRE_COPY may initiate P2P DMA (the *_P2P states are
                    # "P2P quiescent", uAPI vfio.h).
                    return (_migrating(s) & lookup_bool(ALLOWS_P2P_INITIATE, s[cfg.key("kstate", d)])
                            & (s[cfg.key("p2p_hit", e)] == 0))

                def p2p(s: View, t: Next, e: int = e) -> None:
                    # A write into a running peer is ordinary device traffic (no variable
                    # changes); into a stopped peer it changes a device whose state is
                    # being saved (STOP/STOP_COPY must not change internal state).
                    hit = lookup_bool(P2P_TARGET_STOPPED, s[cfg.key("kstate", e)])
                    t[cfg.key("p2p_hit", e)] = where(hit, 1, 0)

                self.add("P2PWrite", pguard, p2p, dev=cfg.names[d], peer=cfg.names[e])

    # ================================================================== vIOMMU
    def _viommu(self) -> None:
        add_viommu_actions(self.cfg, self.p.trk, self._guest_runs, self.add)
