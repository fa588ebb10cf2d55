"""QEMU's control flow in the migration model: phases, device-state requests, progress.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: QEMU as one sequential program (a program counter ``pc`` and a          ║
║ ``cursor`` over devices).                                                            ║
║                                                                                      ║
║ QEMU's source side runs the migration thread and the main loop, but every step the   ║
║ model distinguishes runs under the BQL or in the migration thread in a fixed order   ║
║ (migration/migration.c: setup, iterate, completion, cleanup bottom half), so one     ║
║ program counter describes it.  A *phase* is one QEMU hook (save_setup, the VM-state  ║
║ callbacks of vm_stop, save_complete, save_cleanup, the migration-state notifier,     ║
║ ...); a device phase runs its hook once per device, in device order (QEMU runs       ║
║ VM-state handlers in registration order, reversed when stopping; the properties do   ║
║ not depend on the order among devices within one round because every prepare        ║
║ callback runs before any main callback, system/runstate.c vm_state_notify()).        ║
║                                                                                      ║
║ ``pc``/``cursor`` always point at a unit that has work: after each unit the model    ║
║ *settles*, skipping hooks that would not issue an ioctl (e.g. save_setup for a       ║
║ device without PRE_COPY, or a SET to the state QEMU already caches, which            ║
║ vfio_migration_set_state() returns from without an ioctl).  Skipped units change no  ║
║ variable, so skipping them only removes stuttering states.                           ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: a device-state request is one SET ioctl walked step by step.            ║
║                                                                                      ║
║ vfio_migration_set_state(dev, new, recover) (hw/vfio/migration.c, QEMU master and    ║
║ 9.0+, c817e5a377 for the _or_reset helper) issues VFIO_DEVICE_FEATURE SET            ║
║ MIG_DEVICE_STATE; the driver walks vfio_mig_get_next_state() one arc at a time       ║
║ (mlx5vf_pci_set_device_state()).  ``req`` records where QEMU is in that call:        ║
║ ``target`` (walking to ``new``), ``recover`` (the SET failed; walking to the recover ║
║ state), ``reset`` (recover was ERROR or also failed: VFIO_DEVICE_RESET next).  The   ║
║ target and recover states are functions of the phase and of QEMU's cached state,     ║
║ which does not change while the call runs, so they are tables, not variables.        ║
║ Each arc is its own transition (``KernelStep``) so guest and device actions          ║
║ interleave with the walk exactly as they do on hardware, and LegalDeviceArcs sees    ║
║ every arc the kernel takes.                                                          ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the destination runs in two fixed places of the source's sequence.      ║
║                                                                                      ║
║ The destination QEMU runs concurrently with the source, but it reads nothing the     ║
║ source changes later and the source reads nothing of it but the switchover ack,      ║
║ which model.migration.switchover lets arrive at any point of pre-copy (after the     ║
║ destination's load_setup, as in QEMU).  Its load_setup is placed right after the     ║
║ source's save_setup, so that a failure there breaks the stream while the source      ║
║ still migrates, as it does in QEMU; loading the device state and starting the VM     ║
║ (process_incoming_migration_bh -> vm_start) are placed after the source completed    ║
║ and cleaned up, when every input they need (the saved device state, the sent pages)  ║
║ is final.  Any interleaving of these independent steps reaches the same destination  ║
║ states, so fixing the order removes states without removing behaviours the           ║
║ properties can tell apart.                                                           ║
║ With the return path the destination's load and vm_start come before the source's    ║
║ COMPLETE instead: migration_completion() waits for the SHUT the destination sends    ║
║ after its vm_start (docs/sources.md#qemu-return-path).                               ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any

import numpy as np

from checker.lang.layout import Next, View
from checker.lang.ops import (
    Term,
    all_of,
    as_const,
    is_all,
    is_any,
    is_symbolic,
    isin,
    lookup,
    lookup_bool,
    lookup_nd,
    minimum,
    true_like,
    where,
)
from model.contract import Mutation
from model.fsm.uapi import DeviceState
from model.migration.config import ModelConfig
from model.migration.settling import Pinned, Reads, Writes, const_key

S = DeviceState


class Status(IntEnum):
    """QEMU's MigrationStatus on the source (migration/migration.c); DEVICE here is the
    stop-and-copy phase: the VM is stopped and devices are being stopped and saved."""

    NONE = 0
    SETUP = 1
    ACTIVE = 2
    DEVICE = 3
    COMPLETED = 4
    FAILED = 5
    CANCELLED = 6


STATUS_NAMES = ("none", "setup", "active", "device", "completed", "failed", "cancelled")


def migrating(x: Reads) -> Term:
    """A migration is under way on the source (SETUP, ACTIVE or DEVICE)."""
    st = x["status"]
    return (st == Status.SETUP) | (st == Status.ACTIVE) | (st == Status.DEVICE)


class SrcRun(IntEnum):
    """The source VM's RunState (qapi/run-state.json names)."""

    RUNNING = 0
    FINISH_MIGRATE = 1
    POSTMIGRATE = 2
    PAUSED = 3  # a user's stop ([vm].paused)


SRC_RUN_NAMES = ("running", "finish-migrate", "postmigrate", "paused")


class DstRun(IntEnum):
    """The destination VM: waiting for the stream, running, or its load failed."""

    INMIGRATE = 0
    RUNNING = 1
    LOAD_FAILED = 2


DST_RUN_NAMES = ("inmigrate", "running", "load-failed")


class Req(IntEnum):
    IDLE = 0
    TARGET = 1
    RECOVER = 2
    RESET = 3


REQ_NAMES = ("idle", "target", "recover", "reset")


class Phase(IntEnum):
    IDLE = 0
    SAVE_SETUP = 1  # vfio_save_setup: cached RUNNING -> PRE_COPY (recover RUNNING)
    LOAD_SETUP = 2  # destination vfio_load_setup: -> RESUMING (recover: cached state)
    ACTIVE = 3  # iteration: send pages, log_sync, switchover
    VM_STOP_PREPARE = 4  # vfio_vmstate_change_prepare (P2P devices): -> *_P2P
    VM_STOP = 5  # vfio_vmstate_change(running=false): -> STOP_COPY / STOP
    FINAL_SYNC = 6  # ram_save_complete: migration_bitmap_sync_precopy(last_stage)
    SEND_REST = 7  # ram_save_complete: send every page still dirty
    SAVE_COMPLETE = 8  # vfio_save_complete_precopy: -> STOP_COPY (recover STOP), drain
    SAVE_COMPLETE_STOP = 9  # before 8.2: STOP_COPY -> STOP inside save_complete
    COMPLETE = 10  # migration_completion: status COMPLETED, VM POSTMIGRATE
    LOG_STOP = 11  # ram_save_cleanup: memory_global_dirty_log_stop -> log_global_stop
    SAVE_CLEANUP = 12  # vfio_save_cleanup: STOP_COPY -> STOP (8.2+, 5485298ce0), close fd
    LOAD_STATE = 13  # destination vfio_load_state: device data written to data_fd
    DST_START_PREPARE = 14  # destination vm_start: prepare (P2P) -> RUNNING_P2P
    DST_START = 15  # destination vm_start: -> RUNNING
    DST_RESUME = 16  # destination vCPUs run
    FAIL_START_PREPARE = 17  # migration_iteration_finish: vm_start prepare -> *_P2P
    FAIL_START = 18  # ... main VM-state callbacks -> RUNNING
    FAIL_RESUME = 19  # ... vCPUs run again
    FAIL_LOG_STOP = 20  # migration_cleanup -> ram_save_cleanup -> log_global_stop
    FAIL_SAVE_CLEANUP = 21  # vfio_save_cleanup: STOP_COPY -> STOP, close fd
    FAIL_NOTIFY = 22  # vfio_migration_state_notifier(PRECOPY_FAILED): -> RUNNING
    SETUP_SYNC = 23  # ram_init_bitmaps: the first migration_bitmap_sync_precopy (8.0, 10.0+)
    # a user's stop / cont during pre-copy ([vm].user_pause, model.migration.user_pause)
    USER_STOP_PREPARE = 24  # vfio_vmstate_change_prepare(running=false, PAUSED)
    USER_STOP = 25  # vfio_vmstate_change(running=false, PAUSED): -> STOP_COPY / STOP
    USER_CONT_PREPARE = 26  # qmp_cont -> vm_start: prepare -> *_P2P
    USER_CONT = 27  # ... main VM-state callbacks -> RUNNING
    SAVE_THREADS_JOIN = 28  # multifd_join_device_state_save_threads (model/migration/multifd.py)
    LOAD_THREADS_WAIT = 29  # destination qemu_loadvm_thread_pool_wait, before vm_start
    LOAD_IRQCHIP = 30  # destination, aarch64: the GICv3 / ITS sections (model/migration/config_load.py)


PHASE_NAMES = (
    "idle", "save_setup", "load_setup", "active", "vm_stop_prepare", "vm_stop",
    "final_sync", "send_rest", "save_complete", "save_complete_stop", "complete",
    "log_global_stop", "save_cleanup", "load_state", "dst_vm_start_prepare",
    "dst_vm_start", "dst_resume", "vm_start_prepare", "vm_start", "vm_resume",
    "fail_log_global_stop", "fail_save_cleanup", "migration_notifier", "setup_sync",
    "user_stop_prepare", "user_stop", "user_cont_prepare", "user_cont",
    "save_threads_join", "load_threads_wait", "load_interrupt_controller",
)
NPH = len(Phase)
USER_PHASES = (Phase.USER_STOP_PREPARE, Phase.USER_STOP, Phase.USER_CONT_PREPARE, Phase.USER_CONT)


class Kind(IntEnum):
    SINGLE = 0  # one unit, an explicit action
    SRC_DEV = 1  # one SET request per source device
    DST_DEV = 2  # one SET request per destination device
    DST_LOAD = 3  # one load per destination device (no SET)


KIND = np.zeros(NPH, dtype=np.int64)
for _p in (Phase.SAVE_SETUP, Phase.VM_STOP_PREPARE, Phase.VM_STOP, Phase.SAVE_COMPLETE,
           Phase.SAVE_COMPLETE_STOP, Phase.SAVE_CLEANUP, Phase.FAIL_START_PREPARE,
           Phase.FAIL_START, Phase.FAIL_SAVE_CLEANUP, Phase.FAIL_NOTIFY, *USER_PHASES):
    KIND[_p] = Kind.SRC_DEV
for _p in (Phase.LOAD_SETUP, Phase.DST_START_PREPARE, Phase.DST_START):
    KIND[_p] = Kind.DST_DEV
KIND[Phase.LOAD_STATE] = Kind.DST_LOAD
PHASES_OF_KIND: dict[Kind, tuple[Phase, ...]] = {
    k: tuple(ph for ph in Phase if KIND[ph] == k) for k in Kind
}

# Points where the migration thread looks at the stream's error state and at a pending
# cancel before going on (migration_iteration_run / migration_completion and
# qemu_savevm_state_setup's error path, migration/migration.c and migration/savevm.c).
# LOAD_STATE: with the return path the source waits there for the SHUT (in the default
# order the migration is COMPLETED by then, so nothing is ever seen there).
CHECKPOINTS = np.zeros(NPH, dtype=bool)
for _p in (Phase.SAVE_SETUP, Phase.LOAD_SETUP, Phase.ACTIVE, Phase.FINAL_SYNC,
           Phase.SEND_REST, Phase.SAVE_COMPLETE, Phase.SAVE_COMPLETE_STOP, Phase.COMPLETE,
           Phase.LOAD_STATE):
    CHECKPOINTS[_p] = True

# Hooks whose failure fails the migration: save_setup and save_complete return the error;
# the VM-state callbacks cannot, so they call migration_file_set_error() (comment in
# vfio_vmstate_change_prepare / vfio_vmstate_change, master).  A failed load_setup on the
# destination breaks the stream, which the source sees as an error too.
RAISES_ERROR = np.zeros(NPH, dtype=bool)
for _p in (Phase.SAVE_SETUP, Phase.LOAD_SETUP, Phase.VM_STOP_PREPARE, Phase.VM_STOP,
           Phase.SAVE_COMPLETE, Phase.SAVE_COMPLETE_STOP, *USER_PHASES):
    RAISES_ERROR[_p] = True

# Action families that issue the SET of a device phase (named after the QEMU hook).
ISSUE_FAMILIES: dict[str, tuple[tuple[Phase, ...], str]] = {
    "SaveSetup": ((Phase.SAVE_SETUP,), "src"),
    "VmStopPrepare": ((Phase.VM_STOP_PREPARE,), "src"),
    "VmStop": ((Phase.VM_STOP,), "src"),
    "SaveComplete": ((Phase.SAVE_COMPLETE,), "src"),
    "SaveCompleteStop": ((Phase.SAVE_COMPLETE_STOP,), "src"),
    "SaveCleanup": ((Phase.SAVE_CLEANUP, Phase.FAIL_SAVE_CLEANUP), "src"),
    "VmStartPrepare": ((Phase.FAIL_START_PREPARE,), "src"),
    "VmStart": ((Phase.FAIL_START,), "src"),
    "MigrationFailedNotify": ((Phase.FAIL_NOTIFY,), "src"),
    "UserStopPrepare": ((Phase.USER_STOP_PREPARE,), "src"),
    "UserStop": ((Phase.USER_STOP,), "src"),
    "UserContPrepare": ((Phase.USER_CONT_PREPARE,), "src"),
    "UserCont": ((Phase.USER_CONT,), "src"),
    "LoadSetup": ((Phase.LOAD_SETUP,), "dst"),
    "DstVmStartPrepare": ((Phase.DST_START_PREPARE,), "dst"),
    "DstVmStart": ((Phase.DST_START,), "dst"),
}

SIDE_PREFIX = {"src": "", "dst": "dst_"}


def _prepare_target(q: int) -> int:
    """vfio_vmstate_change_prepare(): PRE_COPY -> PRE_COPY_P2P, anything else ->
    RUNNING_P2P (the same callback runs for vm_stop and vm_start)."""
    return int(S.PRE_COPY_P2P) if q == S.PRE_COPY else int(S.RUNNING_P2P)


def _success_order(cfg: ModelConfig) -> list[Phase]:
    """The phases of the successful path, in order (the mutations that move or drop
    the final sync, the profile's SETUP sync and save_complete STOP)."""
    prof = cfg.profile
    switch: list[Phase] = []
    early_sync = cfg.has(Mutation.SYNC_BEFORE_DEVICES_STOP)
    if early_sync:
        switch.append(Phase.FINAL_SYNC)
    if not cfg.paused:
        # A paused VM: vm_stop_force_state() only sets FINISH_MIGRATE and runs no VM-state
        # callback (system/cpus.c), so the devices keep their state into save_complete.
        switch += [Phase.VM_STOP_PREPARE, Phase.VM_STOP]
    if not early_sync and not cfg.has(Mutation.NO_FINAL_SYNC):
        switch.append(Phase.FINAL_SYNC)
    switch += [Phase.SEND_REST, Phase.SAVE_COMPLETE]
    threads = any(cfg.multifd)  # multifd device state (10.0+): the save threads are joined
    switch += [Phase.SAVE_THREADS_JOIN] if threads else []
    if not prof.stop_copy_to_stop_in_cleanup:
        switch.append(Phase.SAVE_COMPLETE_STOP)
    # aarch64: the interrupt controller's sections load before the devices' (priority order)
    dst = [Phase.LOAD_IRQCHIP] if cfg.scenario.vm.arch == "aarch64" else []
    dst.append(Phase.LOAD_STATE)
    if threads and not cfg.has(Mutation.NO_WAIT_FOR_LOAD_THREADS):
        dst.append(Phase.LOAD_THREADS_WAIT)
    dst += [Phase.DST_START_PREPARE, Phase.DST_START, Phase.DST_RESUME]
    src_end = [Phase.COMPLETE, Phase.LOG_STOP, Phase.SAVE_CLEANUP]
    # With the return path migration_completion() waits for the destination's SHUT, sent
    # after its vm_start (close_return_path_on_source; docs/sources.md#qemu-return-path).
    switch += [*dst, *src_end] if cfg.scenario.migration.return_path else [*src_end, *dst]
    # ram_init_bitmaps() syncs once right after log_global_start; VFIO's part runs where
    # the profile's log_sync gate is open in SETUP (8.0, 10.0+; not 8.1-9.2, ff180c6bd7).
    setup = [Phase.SETUP_SYNC] if prof.setup_sync_reaches_vfio else []
    return [*setup, Phase.SAVE_SETUP, Phase.LOAD_SETUP, Phase.ACTIVE, *switch]


def _request_tables(cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """The target and recover state of each (phase, device, cached state); -1: no SET."""
    prof = cfg.profile
    D = cfg.devices
    tgt = np.full((NPH, D, 8), -1, dtype=np.int64)
    rec = np.zeros((NPH, D, 8), dtype=np.int64)  # ERROR (0): reset on failure
    for d in range(D):
        p2p, pre = cfg.has_p2p(d), cfg.has_pre_copy(d)
        for q in range(8):
            # save_setup (vfio_save_setup, 8.1+ eda7362af9): only PRE_COPY devices,
            # only from cached RUNNING (from STOP nothing happens).
            if prof.uses_pre_copy and pre and q == S.RUNNING:
                tgt[Phase.SAVE_SETUP, d, q] = S.PRE_COPY
                rec[Phase.SAVE_SETUP, d, q] = S.RUNNING
            # load_setup (vfio_load_setup): RESUMING, recover = the cached state.
            tgt[Phase.LOAD_SETUP, d, q] = S.RESUMING
            rec[Phase.LOAD_SETUP, d, q] = q
            # prepare callbacks exist only for P2P devices (8.2+, 94f775e428).
            if prof.p2p_prepare and p2p:
                if not cfg.has(Mutation.SKIP_P2P_PREPARE):
                    tgt[Phase.VM_STOP_PREPARE, d, q] = _prepare_target(q)
                tgt[Phase.FAIL_START_PREPARE, d, q] = _prepare_target(q)
                tgt[Phase.DST_START_PREPARE, d, q] = _prepare_target(q)
                tgt[Phase.USER_STOP_PREPARE, d, q] = _prepare_target(q)
                tgt[Phase.USER_CONT_PREPARE, d, q] = _prepare_target(q)
            # vfio_vmstate_change(running=false) with FINISH_MIGRATE.
            # The same with PAUSED (8.1+ eda7362af9; 8.0 has no PRE_COPY state).
            tgt[Phase.VM_STOP, d, q] = tgt[Phase.USER_STOP, d, q] = (
                S.STOP_COPY if q in (S.PRE_COPY, S.PRE_COPY_P2P) else S.STOP
            )
            # vfio_save_complete_precopy: STOP_COPY, recover STOP; a multifd device's
            # SET is in its save thread instead (model/migration/multifd.py).
            if not (cfg.multifd and cfg.multifd[d]):
                tgt[Phase.SAVE_COMPLETE, d, q] = S.STOP_COPY
            rec[Phase.SAVE_COMPLETE, d, q] = S.STOP
            if q == S.STOP_COPY:
                # 8.0/8.1: STOP (recover ERROR) at the end of save_complete;
                # 8.2+: in vfio_save_cleanup (5485298ce0).
                if prof.stop_copy_to_stop_in_cleanup:
                    tgt[Phase.SAVE_CLEANUP, d, q] = S.STOP
                    tgt[Phase.FAIL_SAVE_CLEANUP, d, q] = S.STOP
                else:
                    tgt[Phase.SAVE_COMPLETE_STOP, d, q] = S.STOP
            tgt[Phase.FAIL_START, d, q] = tgt[Phase.USER_CONT, d, q] = S.RUNNING
            tgt[Phase.DST_START, d, q] = S.RUNNING
            # vfio_migration_state_notifier(PRECOPY_FAILED): RUNNING whatever the run
            # state; the patch flag keeps a paused VM's devices in STOP instead.
            keep_stopped = cfg.paused and prof.failure_notifier_follows_runstate
            tgt[Phase.FAIL_NOTIFY, d, q] = S.STOP if keep_stopped else S.RUNNING
    # vfio_migration_set_state() makes no ioctl for the state QEMU already caches (9.1+,
    # 64366eddf1); before, the SET goes to the kernel, whose driver loop takes no arc.
    if prof.set_state_skips_cached:
        for q in range(8):
            same = tgt[:, :, q] == q
            tgt[:, :, q][same] = -1
    return tgt, rec


class PhasePlan:
    """The phase order and the per-(phase, device, cached state) request tables."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        order = _success_order(cfg)
        fail = [Phase.FAIL_START_PREPARE, Phase.FAIL_START, Phase.FAIL_RESUME,
                Phase.FAIL_LOG_STOP, Phase.FAIL_SAVE_CLEANUP, Phase.FAIL_NOTIFY, Phase.IDLE]
        self.next = np.arange(NPH, dtype=np.int64)
        for a, b in zip(order, order[1:], strict=False):
            self.next[a] = b
        self.next[order[-1]] = Phase.IDLE
        for a, b in zip(fail, fail[1:], strict=False):
            self.next[a] = b
        self.order = tuple(order)
        self.reachable = frozenset(order) | frozenset(fail)
        self.switchover_entry = int(self.next[Phase.ACTIVE])
        # A VM the user paused during pre-copy: vm_stop_force_state() runs no callback.
        self.paused_switchover_entry = int(self.next[Phase.VM_STOP])
        if cfg.user_pause:
            # stop: prepare, main, back to pre-copy; cont: the same with vm_start.
            for a, b in ((Phase.USER_STOP_PREPARE, Phase.USER_STOP), (Phase.USER_STOP, Phase.ACTIVE),
                         (Phase.USER_CONT_PREPARE, Phase.USER_CONT), (Phase.USER_CONT, Phase.ACTIVE)):
                self.next[a] = b
            self.reachable |= frozenset(USER_PHASES)

        self.tgt, self.rec = _request_tables(cfg)


class Control:
    """Helpers that move ``pc``/``cursor``/``req`` forward inside action effects.

    Written with :mod:`checker.lang.ops` so that they run on numpy columns and on z3 terms
    alike; ``is_any`` shortcuts only skip work that would change nothing.
    """

    def __init__(self, cfg: ModelConfig, plan: PhasePlan) -> None:
        self.cfg = cfg
        self.plan = plan
        self.D = cfg.devices
        # Whether the request of (phase, device, cached state) issues a SET at all.
        self.has_target = plan.tgt >= 0
        self.settle_bound = self._settle_bound()

    # ------------------------------------------------------------------ reading
    def at_cursor(self, x: Reads, name: str) -> Term:
        """The indexed variable ``name`` of the device the cursor points at."""
        cur = x["cursor"]
        out = x[self.cfg.key(name, 0)]
        for d in range(1, self.D):
            out = where(cur == d, x[self.cfg.key(name, d)], out)
        return out

    def cached_at_cursor(self, x: Reads) -> Term:
        """QEMU's cached state of the device the current phase works on (its side)."""
        src = self.at_cursor(x, "qstate")
        dst = self.at_cursor(x, "dst_qstate")
        return where(lookup(KIND, x["pc"]) == Kind.DST_DEV, dst, src)

    def target(self, pc: Term, dev: int, q: Term) -> Term:
        return lookup_nd(self.plan.tgt, pc, dev, q)

    def recover(self, pc: Term, dev: int, q: Term) -> Term:
        return lookup_nd(self.plan.rec, pc, dev, q)

    def goal(self, x: View | Next, dev: int, side: str) -> Term:
        """Where the in-flight request of ``dev`` is walking (target or recover state)."""
        pc = x["pc"]
        q = x[self.cfg.key(f"{SIDE_PREFIX[side]}qstate", dev)]
        return where(x["req"] == Req.TARGET, self.target(pc, dev, q), self.recover(pc, dev, q))

    # ------------------------------------------------------------------ progress
    def _may_skip(self, ph: int) -> bool:
        """Whether :meth:`has_work` can be False at phase ``ph`` (mirrors it)."""
        kind = int(KIND[ph])
        if kind in (Kind.SRC_DEV, Kind.DST_DEV):
            return True
        return ph == Phase.SEND_REST

    def _settle_bound(self) -> int:
        """The most units :meth:`settle` can skip in a row: from any reachable phase, the
        units of the phases up to the next one that always has work.  A symbolic
        evaluation unrolls the settle loop this many times; the explicit one checks it."""
        bound = 0
        for start in self.plan.reachable:
            ph, n, seen = int(start), 0, set()
            while self._may_skip(ph):
                if ph in seen:
                    raise RuntimeError("QEMU phase plan does not settle (a cycle of phases without work)")
                seen.add(ph)
                n += self.D if KIND[ph] != Kind.SINGLE else 1
                ph = int(self.plan.next[ph])
            bound = max(bound, n)
        return bound

    def has_work(self, t: Reads) -> Term:
        pc = t["pc"]
        kind = lookup(KIND, pc)
        work = true_like(pc)
        dev = (kind == Kind.SRC_DEV) | (kind == Kind.DST_DEV)
        if is_any(dev):
            cur = minimum(t["cursor"], self.D - 1)
            q = self.cached_at_cursor(t)
            work = where(dev, lookup_nd(self.has_target, pc, cur, q), work)
        if self.cfg.profile.dst_vm_start_failure_aborts:
            # patch only: a failed SET of vm_start aborted the incoming migration, so the
            # destination's remaining vm_start units have nothing to do.
            start = (pc == Phase.DST_START_PREPARE) | (pc == Phase.DST_START) | (pc == Phase.DST_RESUME)
            work = where(all_of([start, t["dst_run"] == DstRun.LOAD_FAILED]), False, work)
        send = pc == Phase.SEND_REST
        if is_any(send):
            # ram_save_complete sends pages while the migration bitmap has any: with an
            # empty bitmap the unit has nothing to do.
            work = where(send, t["bitmap"] != 0, work)
        if self.cfg.has(Mutation.NO_RECOVERY_ON_CANCEL):
            # Mutation: the migration-state notifier ignores a cancel, so devices stay
            # where the cancel found them.
            skip = all_of([pc == Phase.FAIL_NOTIFY, t["status"] == Status.CANCELLED])
            work = where(skip, False, work)
        return work

    def step(self, t: Writes, rows: Term) -> None:
        """Move ``rows`` past their current unit: next device, or the next phase."""
        if not is_any(rows):
            return
        pc = t["pc"]
        cur = t["cursor"]
        per_dev = lookup(KIND, pc) != Kind.SINGLE
        inc = rows & per_dev & (cur + 1 < self.D)
        leave = rows & ~inc
        new_pc = where(leave, lookup(self.plan.next, pc), pc)
        t["cursor"] = where(inc, cur + 1, where(leave, 0, cur))
        t["pc"] = new_pc
        # Exit effects: save_cleanup / load_cleanup close QEMU's data_fd
        # (vfio_migration_cleanup, vfio_load_cleanup).
        closes = leave & ((pc == Phase.SAVE_CLEANUP) | (pc == Phase.FAIL_SAVE_CLEANUP))
        if is_any(closes):
            for d in range(self.D):
                t[self.cfg.key("data_fd", d)] = where(closes, 0, t[self.cfg.key("data_fd", d)])
        # From 9.2 the load cleanups run after vm_start (migration_incoming_state_destroy,
        # 4ce5622908); before, at the end of qemu_loadvm_state().
        load_end = Phase.DST_RESUME if self.cfg.profile.load_cleanup_after_vm_start else Phase.LOAD_STATE
        closes = leave & (pc == load_end)
        if is_any(closes):
            for d in range(self.D):
                t[self.cfg.key("dst_fd", d)] = where(closes, 0, t[self.cfg.key("dst_fd", d)])
        # Entry effect: the end of setup makes the migration ACTIVE.
        active = leave & (new_pc == Phase.ACTIVE)
        if is_any(active):
            t["status"] = where(active, Status.ACTIVE, t["status"])

    # ------------------------------------------------------------------ moving on
    # Each of these has one body that runs on numpy columns; on z3 terms (``rows`` or
    # ``pc`` symbolic) the same body runs once per concrete unit (:meth:`_by_unit`).

    def settle(self, t: Next, rows: Term, *, phases: Sequence[int] | None = None,
               dev: int | None = None) -> None:
        """Skip units without work until every row in ``rows`` points at work.

        At most :attr:`settle_bound` units are skipped: the explicit evaluation stops as
        soon as every row has work and fails loudly should the bound be short.
        ``phases``/``dev``: what the calling action's guard says about the unit ``rows``
        are at (see :meth:`_by_unit`).
        """
        if self._symbolic(t, rows):
            self._by_unit(t, rows, self._settle_here, phases, dev)
            return
        self._check_unit(t, rows, phases, dev)
        for _ in range(self.settle_bound):
            stuck = rows & ~self.has_work(t)
            if not is_any(stuck):
                return
            self.step(t, stuck)
        if is_any(rows & ~self.has_work(t)):
            raise RuntimeError("QEMU phase plan does not settle (a cycle of phases without work)")

    def finish(self, t: Next, rows: Term, err: Term | None = None, *,
               phases: Sequence[int] | None = None, dev: int | None = None) -> None:
        """The unit of ``rows`` is done (with an error where ``err``): apply the hook's
        error policy, then move on.  ``phases``/``dev`` as for :meth:`settle`."""
        if err is not None and is_any(err):
            pc = t["pc"]
            raise_err = all_of([err, rows, lookup_bool(RAISES_ERROR, pc)])
            if is_any(raise_err):
                t["mig_error"] = where(raise_err, 1, t["mig_error"])
            failing = pc == Phase.LOAD_SETUP
            if self.cfg.profile.dst_vm_start_failure_aborts:
                failing = failing | (pc == Phase.DST_START_PREPARE) | (pc == Phase.DST_START)
            dst_fail = all_of([err, rows, failing])
            if is_any(dst_fail):
                # The incoming side fails its load (qemu_loadvm_state_setup), or (patch
                # only) its vm_start; the destination QEMU exits and its VM never runs.
                t["dst_run"] = where(dst_fail, DstRun.LOAD_FAILED, t["dst_run"])
        if self._symbolic(t, rows):
            self._by_unit(t, rows, self._finish_here, phases, dev)
            return
        self._check_unit(t, rows, phases, dev)
        self.step(t, rows)
        self.settle(t, rows)

    def enter(self, t: Next, rows: Term, phase: Term, *, phases: Sequence[int] | None = None) -> None:
        """Jump ``rows`` to ``phase`` (cursor 0; ``phases``: the values it can have) and
        settle."""
        t["pc"] = where(rows, phase, t["pc"])
        t["cursor"] = where(rows, 0, t["cursor"])
        self.settle(t, rows, phases=phases)

    def enter_failure(self, t: Next, rows: Term) -> None:
        """The failure path (migration_iteration_finish, then migration_cleanup): restart
        the VM if it was stopped, stop logging, clean up, notify PRECOPY_FAILED."""
        if self.cfg.paused:
            # The VM was not running when it stopped for the switchover: no vm_start(); a
            # VM in FINISH_MIGRATE gets PAUSED back (migration_stop_vm's old state, 8.1+,
            # a4c6275aa1) or, in 8.0, POSTMIGRATE (migration_iteration_finish).
            back = SrcRun.PAUSED if self.cfg.profile.failure_restores_paused else SrcRun.POSTMIGRATE
            run = t["src_run"]
            t["src_run"] = where(all_of([rows, run == SrcRun.FINISH_MIGRATE]), back, run)
            self.enter(t, rows, Phase.FAIL_LOG_STOP, phases=(Phase.FAIL_LOG_STOP,))
            return
        run = t["src_run"]
        stopped = run != SrcRun.RUNNING
        if self.cfg.user_pause:
            # migration_stop_vm() records the old run state only at the switchover (-1
            # before: a failure in pre-copy restarts nothing, a VM paused there stays
            # PAUSED); a VM the user had paused at the switchover gets it back as above.
            paused_then = all_of([rows, run == SrcRun.FINISH_MIGRATE, t["upause"] == 1])
            back = SrcRun.PAUSED if self.cfg.profile.failure_restores_paused else SrcRun.POSTMIGRATE
            t["src_run"] = where(paused_then, back, run)
            stopped = (run == SrcRun.FINISH_MIGRATE) & (t["upause"] != 1)
        entry = where(stopped, Phase.FAIL_START_PREPARE, Phase.FAIL_LOG_STOP)
        self.enter(t, rows, entry, phases=(Phase.FAIL_START_PREPARE, Phase.FAIL_LOG_STOP))

    # ------------------------------------------------------------------ symbolic
    @staticmethod
    def _symbolic(t: Next, rows: Term) -> bool:
        return is_symbolic(rows) or is_symbolic(t["pc"]) or is_symbolic(t["cursor"])

    @staticmethod
    def _check_unit(t: Next, rows: Term, phases: Sequence[int] | None, dev: int | None) -> None:
        """The explicit engine checks, on every state it explores, that an action's claim
        about its unit holds, so the symbolic case split may rely on it."""
        if phases is None and dev is None:
            return
        ok = all_of([isin(t["pc"], phases) if phases is not None else True,
                     t["cursor"] == dev if dev is not None else True])
        if is_any(rows & ~ok):
            raise RuntimeError(f"an action's unit is not at phases {phases} / device {dev}")

    def _by_unit(self, t: Next, rows: Term, run: Callable[[Pinned], None],
                 phases: Sequence[int] | None = None, dev: int | None = None) -> None:
        """Run ``run`` (a move of the unit, for every row) on z3 terms, as a case split
        over the concrete unit (``pc``, ``cursor``) that ``t`` is at.

        Run directly on symbolic ``pc``/``cursor``, the skipping loop of :meth:`settle`
        would nest each round's ``pc`` inside the next round's table look-ups, which a
        solver pays for at every step of a BMC run.  Pinned to one unit, the same code
        (``has_work``, ``step``) reads constant tables and leaves only the work
        conditions symbolic (cached device states, the bitmap being empty); the outcomes
        are then selected by the actual ``pc``/``cursor``.

        Only the units ``t`` can be at are cases: the one a constant ``pc``/``cursor``
        names (as after :meth:`enter`), else those the calling action's guard allows
        (``phases``, ``dev``; any other unit has the action disabled, so what the effect
        does there does not matter, and :meth:`_check_unit` checks the claim
        explicitly), else every unit.
        """
        pc, cur = t["pc"], t["cursor"]
        pc0, cur0 = as_const(pc), as_const(cur)
        starts = (pc0,) if pc0 is not None else tuple(phases) if phases is not None else range(NPH)
        cursors = ((cur0,) if cur0 is not None else (dev,) if dev is not None
                   else range(1 << self.cfg.cursor_bits))
        cases: list[tuple[Term, dict[str, Term]]] = []
        for ph in starts:
            for c in cursors:
                here = Pinned(t, {"pc": np.int64(ph), "cursor": np.int64(c)})
                run(here)
                moved = {k: v for k, v in here.assigned.items()
                         if not (k in ("pc", "cursor") and as_const(v) == (ph if k == "pc" else c))}
                if moved:
                    # A sole candidate needs no condition (the guard, or a constant, has it).
                    at = all_of([pc == ph if len(starts) > 1 else True,
                                 cur == c if len(cursors) > 1 else True])
                    cases.append((at, {**here.assigned}))
        for key in dict.fromkeys(k for _, out in cases for k in out):
            value = t[key]
            for at, out in reversed(cases):
                value = where(at, out.get(key, t[key]), value)
            t[key] = where(rows, value, t[key])

    def _finish_here(self, here: Pinned) -> None:
        self.step(here, np.True_)
        self._settle_here(here)

    def _settle_here(self, here: Pinned) -> None:
        """:meth:`settle` at one concrete unit: the skipping loop unrolled along the one
        path of units it can take, each skip guarded by the unit's (symbolic) lack of work."""
        written = {k: v for k, v in here.assigned.items() if k not in ("pc", "cursor")}
        ph, c = as_const(here["pc"]), as_const(here["cursor"])
        assert ph is not None and c is not None
        out = self._settle_from(here.base, ph, c, written, self.settle_bound, {})
        if out is not None:
            here.assigned.update(out)

    def _settle_from(
        self, t: Next, ph: int, c: int, written: dict[str, Term], budget: int, memo: dict[tuple, Any]
    ) -> dict[str, Term] | None:
        """The variables settling assigns when it starts at unit (``ph``, ``c``) of ``t``
        with ``written`` assigned by the units before (None: nothing, the unit surely has
        work)."""
        key = (ph, c, budget, tuple(sorted((k, const_key(v)) for k, v in written.items())))
        if key in memo:
            return memo[key]
        here = Pinned(t, {"pc": np.int64(ph), "cursor": np.int64(c), **written})
        work = self.has_work(here)
        out: dict[str, Term] | None
        if budget == 0 or is_all(work):
            out = None if not written else dict(here.assigned)
        else:
            self.step(here, np.True_)
            after = dict(here.assigned)
            nph, nc = as_const(after.pop("pc")), as_const(after.pop("cursor"))
            assert nph is not None and nc is not None
            rest = self._settle_from(t, nph, nc, after, budget - 1, memo)
            rest = rest if rest is not None else {"pc": nph, "cursor": nc, **after}
            stay = {"pc": ph, "cursor": c, **written}
            out = {k: where(work, stay.get(k, t[k]), rest.get(k, t[k]))
                   for k in dict.fromkeys([*stay, *rest])}
        memo[key] = out
        return out
