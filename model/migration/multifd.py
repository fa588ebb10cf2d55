"""Multifd device-state transfer (QEMU 10.0+): save threads and load threads.

With ``x-migration-multifd-transfer`` in effect for a device (model/migration/
multifd_transfer.py), its final state no longer goes in the main stream from
vfio_save_complete_precopy(), which only writes an empty end-of-state marker.  Read in
QEMU 10.0 (7c949c53e9), 10.1 (f8b2f64e23), 10.2 (698104725e) and master (ece408818d):

* Source.  qemu_savevm_state_complete_precopy_iterable() (migration/savevm.c) spawns one
  save thread per handler with save_live_complete_precopy_thread (for VFIO
  vfio_multifd_save_complete_precopy_thread(), hw/vfio/migration-multifd.c) *before* it
  runs the handlers' save_live_complete_precopy, so RAM's final pass (ram_save_complete:
  the last dirty sync and the remaining pages) runs concurrently with the threads.  It is
  reached after migration_completion_precopy() stopped the VM, so the vCPUs are paused
  and vfio_vmstate_change() already moved the device to STOP_COPY (PRE_COPY devices) or
  STOP.  Each thread issues SET STOP_COPY (recover STOP) itself, reads data_fd to its end
  and queues the buffers and the device config on the multifd channels.  After the
  handlers the main thread aborts the threads if the migration has an error
  (multifd_abort_device_state_save_threads) and joins them
  (multifd_join_device_state_save_threads); a failed thread makes the join fail and
  qemu_file_set_error() fails the migration, whose failure path restarts the source.
* Destination.  The switchover-start marker (sent by qemu_savevm_maybe_send_switchover_start
  before the completion) makes vfio_multifd_switchover_start() start the device's load
  thread vfio_load_bufs_thread(): it waits on the buffers-ready condition for each buffer
  in order, writes it to the RESUMING data_fd and then loads the config.  Before
  qemu_loadvm_state() returns, and so before process_incoming_migration_bh() runs
  vm_start(), the main thread waits for every load thread (qemu_loadvm_thread_pool_wait);
  a failed thread fails the incoming migration and the destination never starts.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: a save thread is one step, running anywhere in RAM's final pass.        ║
║                                                                                      ║
║ A thread's SET and its reads touch only its own device and data_fd, and nothing     ║
║ else of the model reads them until the join; the vCPUs are paused and the device    ║
║ cannot DMA in STOP / STOP_COPY, so RAM's final sync sees the same dirty state        ║
║ whichever order the two take.  The thread is one action (``SaveThread``), enabled   ║
║ from the completion's start (the first phase after vm_stop) up to the join; it      ║
║ takes the kernel's one-step walk to STOP_COPY, which is a single arc from STOP (a   ║
║ walk the kernel refuses or that needs more arcs fails the thread, device left where ║
║ it was).  Not modelled: the recover SET to STOP after a failed thread SET (the      ║
║ failure path's vm_start SET follows from the state the device is left in), a        ║
║ thread that has not run when a cancel or an earlier error fails the migration (the  ║
║ model treats it as aborted before its SET: QEMU's thread would still SET STOP_COPY  ║
║ and exit; the failure path moves the device to RUNNING either way).                  ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: a load thread is one step between the device's section and vm_start.   ║
║                                                                                      ║
║ The buffers a load thread writes are the source's saved state, final once the       ║
║ source completed, so (as for the main-stream load, model/migration/phases.py) the   ║
║ thread runs after the source cleaned up: anywhere from the devices' load sections   ║
║ (LOAD_STATE) to the wait before vm_start, in any order among devices.  Its write    ║
║ succeeds only into a RESUMING device.  Not modelled: the buffer-by-buffer order      ║
║ (vfio_load_state_buffer_insert places each by index, so the written data is the    ║
║ same; the config load ordering of x-migration-load-config-after-iter, 10.1+, is      ║
║ model/migration/config_load.py) and, with a failed load, the return                  ║
║ path to the source (the destination exits; the source stays POSTMIGRATE).           ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

import numpy as np

from checker.lang.layout import Layout, Next, View
from checker.lang.ops import Term, all_of, any_of, isin, lookup_bool, where
from checker.lang.spec import Action, Effect, Predicate
from model.contract import Mutation
from model.fsm.uapi import DeviceState
from model.migration import config_load
from model.migration.config import ModelConfig
from model.migration.phases import Control, DstRun, Phase, PhasePlan, Status

S = DeviceState


class Thread(IntEnum):
    """A device's save or load thread in the current attempt."""

    PENDING = 0  # not run yet (or not spawned yet)
    DONE = 1
    FAILED = 2


THREAD_NAMES = ("pending", "done", "failed")

#: The thread families weak fairness applies to (QEMU's threads run when they can).
MULTIFD_FAIR_FAMILIES = ("SaveThread", "SaveThreadsJoin", "LoadThread", "LoadThreadsWait")


def uses_multifd(cfg: ModelConfig) -> bool:
    """Some device sends its final state over multifd (10.0+, multifd on)."""
    return any(cfg.multifd)


def declare_threads(lay: Layout, cfg: ModelConfig) -> None:
    if not uses_multifd(cfg):
        return
    D = cfg.devices
    lay.var("save_thread", values=THREAD_NAMES, count=D, array=True,
            doc="source device: its multifd save thread (10.0+)")
    lay.var("load_thread", values=THREAD_NAMES, count=D, array=True,
            doc="destination device: its multifd load thread (10.0+)")


def reset_threads(cfg: ModelConfig, t: Next) -> None:
    """A new attempt starts without threads (migration start)."""
    if not uses_multifd(cfg):
        return
    for d in range(cfg.devices):
        t[cfg.key("save_thread", d)] = Thread.PENDING
        t[cfg.key("load_thread", d)] = Thread.PENDING


def _save_window(plan: PhasePlan) -> tuple[int, ...]:
    """The phases a save thread runs in: from the first one after the VM stopped (after
    the switchover for a paused VM) to the join."""
    order = list(plan.order)
    stop = Phase.VM_STOP if Phase.VM_STOP in order else Phase.ACTIVE
    return tuple(int(p) for p in order[order.index(stop) + 1:order.index(Phase.SAVE_THREADS_JOIN) + 1])


def _load_window(cfg: ModelConfig) -> tuple[int, ...]:
    if cfg.has(Mutation.NO_WAIT_FOR_LOAD_THREADS):
        # Mutation: vm_start does not wait, so the threads may still run while it does.
        return (Phase.LOAD_STATE, Phase.DST_START_PREPARE, Phase.DST_START, Phase.DST_RESUME)
    return (Phase.LOAD_STATE, Phase.LOAD_THREADS_WAIT)


class MultifdActions:
    """The thread actions of a multifd scenario (none without one)."""

    def __init__(self, cfg: ModelConfig, plan: PhasePlan, ctl: Control) -> None:
        self.cfg, self.plan, self.ctl = cfg, plan, ctl
        self.actions: list[Action] = []

    def _add(self, family: str, guard: Predicate, effect: Effect, **params: object) -> None:
        self.actions.append(Action(family, guard, effect, dict(params)))

    def build(self) -> list[Action]:
        if uses_multifd(self.cfg):
            self._save_threads()
            self._join()
            self._load_threads()
            self._wait()
        return self.actions

    def _fault(self, family: str, guard: Callable[[View, int], Term], var: str, d: int) -> None:
        """The injected fault ([migration].device_faults, one per behaviour): the thread
        of device ``d`` fails where it could run."""
        key = self.cfg.key(var, d)

        def fguard(s: View) -> Term:
            return guard(s, d) & (s.fault_used == 0)

        def fail(s: View, t: Next) -> None:
            t.fault_used = 1
            t[key] = Thread.FAILED

        self._add(family, fguard, fail, dev=self.cfg.names[d])

    def _devices(self) -> list[int]:
        return [d for d in range(self.cfg.devices) if self.cfg.multifd[d]]

    # ------------------------------------------------------------------ source
    def _save_threads(self) -> None:
        cfg = self.cfg
        window = _save_window(self.plan)
        faults = cfg.scenario.migration.device_faults
        for d in self._devices():
            # The kernel's one-step walk to STOP_COPY (vfio_mig_get_next_state): the
            # thread succeeds where it is one arc (from STOP) or no SET (cached STOP_COPY:
            # vfio_migration_set_state returns early, 9.1+ 64366eddf1).
            one_arc = np.array([int(cfg.step[d][k, S.STOP_COPY]) == S.STOP_COPY
                                and bool(cfg.arcs[d][k, S.STOP_COPY]) for k in range(8)])
            opens = np.zeros(8, dtype=bool)
            opens[[S.STOP, S.RUNNING, S.RUNNING_P2P]] = True  # entering the saving group

            def guard(s: View, d: int = d) -> Term:
                return all_of([isin(s.pc, window), s.status == Status.DEVICE, s.mig_error == 0,
                               s[cfg.key("save_thread", d)] == Thread.PENDING])

            def run(s: View, t: Next, d: int = d, one_arc: np.ndarray = one_arc,
                    opens: np.ndarray = opens) -> None:
                k, q = s[cfg.key("kstate", d)], s[cfg.key("qstate", d)]
                fd = s[cfg.key("data_fd", d)]
                cached = q == S.STOP_COPY
                moves = ~cached & lookup_bool(one_arc, k)
                # A SET into STOP_COPY from outside the saving group opens a data_fd; one
                # already held is "data_fd out of sync" and the thread fails.
                out_of_sync = moves & lookup_bool(opens, k) & (fd == 1)
                ok = cached | (moves & ~out_of_sync)
                t[cfg.key("kstate", d)] = where(moves, S.STOP_COPY, k)
                t[cfg.key("qstate", d)] = where(moves, S.STOP_COPY, q)
                t[cfg.key("data_fd", d)] = where(moves, 1, fd)
                t[cfg.key("save_thread", d)] = where(ok, Thread.DONE, Thread.FAILED)

            self._add("SaveThread", guard, run, dev=cfg.names[d])
            if faults:
                # The thread's SET or a read of data_fd fails (the device stays).
                self._fault("SaveThreadFault", guard, "save_thread", d)

    def _join(self) -> None:
        cfg, ctl = self.cfg, self.ctl
        devs = self._devices()

        def guard(s: View) -> Term:
            # With an error on the migration the threads are told to quit first
            # (multifd_abort_device_state_save_threads), so the join does not wait.
            ran = all_of([s[cfg.key("save_thread", d)] != Thread.PENDING for d in devs])
            return (s.pc == Phase.SAVE_THREADS_JOIN) & (ran | (s.mig_error == 1))

        def join(s: View, t: Next) -> None:
            failed = any_of([s[cfg.key("save_thread", d)] == Thread.FAILED for d in devs])
            t.mig_error = where(failed, 1, s.mig_error)  # qemu_file_set_error(-EINVAL)
            ctl.finish(t, s.ones(), phases=(Phase.SAVE_THREADS_JOIN,))

        self._add("SaveThreadsJoin", guard, join)

    # ------------------------------------------------------------------ destination
    def _load_threads(self) -> None:
        cfg = self.cfg
        window = _load_window(cfg)
        faults = cfg.scenario.migration.device_faults
        for d in self._devices():
            when = config_load.thread_window(cfg, d, window)

            def guard(s: View, d: int = d, when: Callable[[View], Term] = when) -> Term:
                return all_of([when(s), s.dst_run == DstRun.INMIGRATE,
                               s[cfg.key("load_thread", d)] == Thread.PENDING])

            def run(s: View, t: Next, d: int = d) -> None:
                # vfio_load_state_buffer_write: a write into a device that is not
                # RESUMING fails (the kernel has no resuming data_fd for it).
                ok = s[cfg.key("dst_kstate", d)] == S.RESUMING
                t[cfg.key("dst_loaded", d)] = where(ok, 1, s[cfg.key("dst_loaded", d)])
                t[cfg.key("load_thread", d)] = where(ok, Thread.DONE, Thread.FAILED)
                config_load.config_loaded(cfg, t, d, ok)  # the config is the last buffer

            self._add("LoadThread", guard, run, dev=cfg.names[d])
            if faults:
                # A buffer or the config fails to load.
                self._fault("LoadThreadFault", guard, "load_thread", d)

    def _wait(self) -> None:
        if Phase.LOAD_THREADS_WAIT not in self.plan.order:
            return
        cfg, ctl = self.cfg, self.ctl
        devs = self._devices()

        def guard(s: View) -> Term:
            ran = all_of([s[cfg.key("load_thread", d)] != Thread.PENDING for d in devs])
            return (s.pc == Phase.LOAD_THREADS_WAIT) & ran

        def wait(s: View, t: Next) -> None:
            failed = any_of([s[cfg.key("load_thread", d)] == Thread.FAILED for d in devs])
            # A failed thread fails qemu_loadvm_state(): the destination QEMU exits
            # without starting the VM.
            t.dst_run = where(failed, DstRun.LOAD_FAILED, s.dst_run)
            ctl.finish(t, ~failed, phases=(Phase.LOAD_THREADS_WAIT,))
            ctl.enter(t, failed, Phase.IDLE, phases=(Phase.IDLE,))

        self._add("LoadThreadsWait", guard, wait)
