"""cloud-hypervisor's control flow: its steps, their order, and the program counter.

Read in ``cloud-hypervisor/cloud-hypervisor`` at ae44c2971c83 (docs/sources.md#ch-send,
#ch-receive, #ch-failure).  The source's migration worker runs ``send_migration()``
(vmm/src/lib.rs): ``vm.start_migration()`` (the refusals of
:mod:`model.cloud_hypervisor.decision`), then for a precopy migration
``do_memory_migration()``: ``vm.start_dirty_log()`` (KVM's log, then every device's DMA
logging), the memory iterations of ``do_memory_iterations()`` (iteration 0 sends the whole
memory; each later one takes ``vm.dirty_log()`` (KVM's log and every device's
DMA_LOGGING_REPORT) and sends it unless ``is_precopy_converged()``), ``vm.pause()``, the
final ``vm.dirty_log()`` sent with the unsent table; then ``vm.snapshot()`` (each device's
``save_migration_data()``: STOP_COPY, read, STOP), one more ``vm.dirty_log()`` and send,
``send_state``, the Complete (or, for a VM that was paused, CompletePaused) request, and
after the destination's answer ``vm.stop_dirty_log()`` and ``vm.complete_migration()``.
A local or postcopy migration pauses right after ``start_migration()`` and tracks nothing.

The destination (``vm_receive_migration_step()``) creates the VM from the state: each
device's ``VfioPciDevice::new()`` resets it and ``load_migration_data()`` walks it to
RESUMING (recovery STOP) and writes the state; Complete runs ``Vm::resume()``
(``DeviceManager::resume()``: every device to RUNNING, no recovery state, so a reset on
failure; then the vCPUs); CompletePaused leaves the VM paused until a user resumes it.

When ``send_migration()`` fails, ``check_migration()`` resumes the source VM if it was
running before and is now ``Paused``, then stops dirty logging, ignoring errors.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: one program counter for both VMMs of a migration.                       ║
║                                                                                      ║
║ The source's migration worker and the destination's receive loop are two processes, ║
║ but they take turns: every request of the protocol (State, Complete) is answered     ║
║ before the source goes on (transport::send_request_expect_ok), and the destination  ║
║ does nothing between requests.  So one ``pc`` walks both: the destination's steps    ║
║ sit where the source waits for them.  A user's resume of a destination left paused  ║
║ comes after the source is done.                                                      ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the device manager's order is a fixed, unknown permutation per process. ║
║                                                                                      ║
║ DeviceManager::pause/resume/snapshot/start_dirty_log/dirty_log iterate the device    ║
║ tree, a std HashMap (vmm/src/device_tree.rs): its order is random per process but   ║
║ the same for every loop of an unchanged map.  The model picks one permutation for   ║
║ the source and one for the destination in the initial state (every pair is          ║
║ explored).  The destination creates (and loads) its devices in configuration order ║
║ (DeviceManager::add_vfio_devices).  Devices other than VFIO ones are not modelled.  ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: a device-state request is one SET walked arc by arc, as for QEMU.       ║
║                                                                                      ║
║ VfioCommon::transition_migration_state_with_recovery(target, recover)               ║
║ (pci/src/vfio.rs, 794997f241): one SET; if it fails, the SET of ``recover`` when    ║
║ given, and if there is none or that fails too, VFIO_DEVICE_RESET (the device is     ║
║ RUNNING); the first error is returned either way.  cloud-hypervisor caches no device ║
║ state and issues every SET; a SET to the state the device is in runs no arc and     ║
║ returns success (the driver loop), so the model skips it like any unit without work.║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from checker.lang.layout import Next, View
from checker.lang.ops import Term, is_any, is_symbolic, lookup, lookup_nd, true_like, where
from model.cloud_hypervisor.config import ChConfig
from model.fsm.uapi import DeviceState

S = DeviceState


class Status(IntEnum):
    """Where the source's migration is: NONE before, SETUP while starting (start_migration,
    start_dirty_log), ACTIVE in the memory iterations, DEVICE from the pause on."""

    NONE = 0
    SETUP = 1
    ACTIVE = 2
    DEVICE = 3
    COMPLETED = 4
    FAILED = 5


STATUS_NAMES = ("none", "setup", "active", "device", "completed", "failed")


class SrcRun(IntEnum):
    """The source VM: its VmState, and whether its vCPUs run.  ``vcpus-paused``: the vCPUs
    were paused (CpuManager::pause) but Vm::pause did not finish, so VmState is still
    Running (vmm/src/vm.rs sets it only at the end)."""

    RUNNING = 0
    VCPUS_PAUSED = 1
    PAUSED = 2
    SHUTDOWN = 3
    EXITED = 4  # the VMM exited (check_migration: resume after a failure failed)


SRC_RUN_NAMES = ("running", "vcpus-paused", "paused", "shutdown", "exited")


class DstRun(IntEnum):
    INMIGRATE = 0
    PAUSED = 1  # restored, not resumed (CompletePaused, or a failed user resume)
    RUNNING = 2
    ABORTED = 3  # the receive failed (ReceiveMigrationState::Aborted): the VM is dropped


DST_RUN_NAMES = ("inmigrate", "paused", "running", "aborted")


class Req(IntEnum):
    IDLE = 0
    TARGET = 1
    RECOVER = 2
    RESET = 3


REQ_NAMES = ("idle", "target", "recover", "reset")


class Phase(IntEnum):
    IDLE = 0
    START_DIRTY_LOG = 1  # per device: VfioPciDevice::start_dirty_log (DMA_LOGGING_START)
    ITER_DECIDE = 2  # is_precopy_converged() on the table just taken
    ITER_SEND = 3  # send_memory(table), then vm.dirty_log() for the next iteration
    VM_PAUSE = 4  # Vm::pause: CpuManager::pause
    PAUSE = 5  # per device: DeviceManager::pause -> VfioPciDevice::pause: STOP
    VM_PAUSED = 6  # Vm::pause: the hypervisor VM paused, VmState Paused
    FINAL_SYNC = 7  # do_memory_migration: vm.dirty_log() after the pause
    FINAL_SEND = 8  # send final_table + remaining
    SAVE_COPY = 9  # per device: save_migration_data: STOP_COPY (recover STOP), read
    SAVE_STOP = 10  # per device: save_migration_data: STOP (no recovery state)
    SNAP_SYNC = 11  # send_migration: vm.dirty_log() after vm.snapshot()
    SNAP_SEND = 12
    SEND_STATE = 13  # transport::send_state: the destination creates the VM
    LOAD = 14  # per device (destination): VfioPciDevice::new reset, RESUMING (recover STOP)
    LOAD_WRITE = 15  # per device (destination): write_migration_data
    COMPLETE = 16  # Request::complete / complete_paused
    DST_RESUME = 17  # per device (destination): Vm::resume -> VfioPciDevice::resume: RUNNING
    DST_VCPUS = 18  # destination CpuManager::resume
    DRAIN = 19  # postcopy: the serve thread answers page faults until every page is sent
    FINISH = 20  # vm.stop_dirty_log(), vm.complete_migration(), check_migration() Ok
    FAIL_RESUME = 21  # per device: check_migration -> Vm::resume on the source: RUNNING
    FAIL_VCPUS = 22
    FAIL_STOP_LOG = 23  # check_migration: vm.stop_dirty_log(), errors ignored
    USER_RESUME = 24  # per device: a user resumes the destination left paused
    USER_VCPUS = 25


PHASE_NAMES = (
    "idle", "start_dirty_log", "iteration_converged?", "send_memory", "vm_pause",
    "pause_devices", "vm_paused", "final_dirty_log", "send_final", "save_stop_copy",
    "save_stop", "snapshot_dirty_log", "send_snapshot_pages", "send_state",
    "restore_resuming", "restore_write", "complete", "dst_resume_devices", "dst_resume_vcpus",
    "postcopy_drain", "finish", "resume_devices", "resume_vcpus", "stop_dirty_log",
    "user_resume_devices", "user_resume_vcpus",
)
NPH = len(Phase)

# Per-device phases, which side's device they work on and in which order they visit them.
SRC, DST = "src", "dst"
DEVICE_PHASES: dict[Phase, tuple[str, str]] = {
    Phase.START_DIRTY_LOG: (SRC, "src_order"),
    Phase.PAUSE: (SRC, "src_order"),
    Phase.SAVE_COPY: (SRC, "src_order"),
    Phase.SAVE_STOP: (SRC, "src_order"),
    Phase.FAIL_RESUME: (SRC, "src_order"),
    Phase.LOAD: (DST, "config"),
    Phase.LOAD_WRITE: (DST, "config"),
    Phase.DST_RESUME: (DST, "dst_order"),
    Phase.USER_RESUME: (DST, "dst_order"),
}
# Two steps per device before the next device: (first, second).
PAIRS = {Phase.SAVE_COPY: Phase.SAVE_STOP, Phase.LOAD: Phase.LOAD_WRITE}
SECOND = {b: a for a, b in PAIRS.items()}

# The SET of each request phase: target, and the recovery state (-1: none, reset).
TARGET = np.full(NPH, -1, dtype=np.int64)
RECOVER = np.full(NPH, -1, dtype=np.int64)
for _ph, _t, _r in (
    (Phase.PAUSE, S.STOP, -1),  # VfioPciDevice::pause (e7c0d690d0, 794997f241)
    (Phase.SAVE_COPY, S.STOP_COPY, S.STOP),  # save_migration_data (e7c0d690d0)
    (Phase.SAVE_STOP, S.STOP, -1),  # ... back to STOP, reset if even that fails
    (Phase.LOAD, S.RESUMING, S.STOP),  # load_migration_data (4102768561, 794997f241)
    (Phase.DST_RESUME, S.RUNNING, -1),  # VfioPciDevice::resume
    (Phase.FAIL_RESUME, S.RUNNING, -1),
    (Phase.USER_RESUME, S.RUNNING, -1),
):
    TARGET[_ph], RECOVER[_ph] = int(_t), int(_r)
REQUEST_PHASES = tuple(ph for ph in Phase if TARGET[ph] >= 0)
IS_DEVICE = np.array([ph in DEVICE_PHASES for ph in Phase])
IS_DST = np.array([DEVICE_PHASES.get(ph, (SRC, ""))[0] == DST for ph in Phase])
SEND_PHASES = (Phase.ITER_SEND, Phase.FINAL_SEND, Phase.SNAP_SEND, Phase.DRAIN)
FAIL_PHASES = (Phase.FAIL_RESUME, Phase.FAIL_VCPUS, Phase.FAIL_STOP_LOG)
_IS_DEVICE = IS_DEVICE.astype(np.int64)
# Per phase: first / second of a pair, and where each goes within the pair.
_PAIR_FIRST = np.zeros(NPH, dtype=np.int64)
_PAIR_SECOND = np.zeros(NPH, dtype=np.int64)
_TO_SECOND = np.arange(NPH, dtype=np.int64)
_TO_FIRST = np.arange(NPH, dtype=np.int64)
for _a, _b in PAIRS.items():
    _PAIR_FIRST[_a], _PAIR_SECOND[_b] = 1, 1
    _TO_SECOND[_a], _TO_FIRST[_b] = _b, _a


class Plan:
    """The phase order of one configuration (precopy, postcopy or local; running or
    paused VM), and who each device-phase unit works on."""

    def __init__(self, cfg: ChConfig) -> None:
        self.cfg = cfg
        save = [Phase.VM_PAUSE, Phase.PAUSE, Phase.VM_PAUSED]
        if cfg.precopy:
            save += [Phase.FINAL_SYNC, Phase.FINAL_SEND]
        save += [Phase.SAVE_COPY, Phase.SAVE_STOP]
        if cfg.precopy:
            save += [Phase.SNAP_SYNC, Phase.SNAP_SEND]
        save += [Phase.SEND_STATE, Phase.LOAD, Phase.LOAD_WRITE, Phase.COMPLETE]
        # Complete resumes the destination; CompletePaused (the VM was paused) does not.
        if not cfg.starts_paused:
            save += [Phase.DST_RESUME, Phase.DST_VCPUS]
        if cfg.postcopy:
            save.append(Phase.DRAIN)
        save.append(Phase.FINISH)
        self.next = np.arange(NPH, dtype=np.int64)
        chains = [save, [*FAIL_PHASES], [Phase.USER_RESUME, Phase.USER_VCPUS]]
        for chain in chains:
            for a, b in zip(chain, chain[1:], strict=False):
                self.next[a] = b
            self.next[chain[-1]] = Phase.IDLE
        # the pairs are walked device by device (Control.step); their exit is the second's
        for first, second in PAIRS.items():
            self.next[first] = self.next[second]
        self.next[Phase.START_DIRTY_LOG] = Phase.ITER_DECIDE
        self.start = Phase.START_DIRTY_LOG if cfg.precopy else Phase.VM_PAUSE
        reachable = {ph for chain in chains for ph in chain}
        if cfg.precopy:
            reachable |= {Phase.START_DIRTY_LOG, Phase.ITER_DECIDE, Phase.ITER_SEND}
        self.reachable = frozenset(reachable)
        d = cfg.devices
        order = np.array(cfg.orders, dtype=np.int64).reshape(len(cfg.orders), d)
        self.order = order  # (permutations, positions) -> device
        self.migratable_table = np.array(cfg.migratable, dtype=np.int64)

    def device_at(self, x: View | Next, phase: Phase | int, cursor: Term) -> Term:
        """The device the unit (``phase``, ``cursor``) works on."""
        if self.cfg.devices == 1:
            return 0 * cursor
        how = DEVICE_PHASES[Phase(int(phase))][1]
        if how == "config":
            return cursor
        return lookup_nd(self.order, x[how], cursor)


class Control:
    """Moves ``pc``/``cursor`` on: a unit done, the next one with work.

    Written with :mod:`checker.lang.ops`, so it runs on numpy columns and on z3 terms: on
    z3 terms settling is unrolled :attr:`bound` times (each step guarded by the unit's lack
    of work), which the explicit evaluation shows to be enough.
    """

    def __init__(self, cfg: ChConfig, plan: Plan) -> None:
        self.cfg = cfg
        self.plan = plan
        self.D = cfg.devices
        self.bound = self._settle_bound()

    def _units(self, ph: int) -> int:
        return 2 * self.D if ph in PAIRS else self.D if ph in DEVICE_PHASES else 1

    def _settle_bound(self) -> int:
        """The most units settling can skip in a row: from any reachable phase, the units
        up to the next phase that always has work.  A symbolic evaluation unrolls settling
        this many times; the explicit one checks that it is enough."""
        skippable = set(DEVICE_PHASES) | set(SECOND) | {
            Phase.FINAL_SEND, Phase.SNAP_SEND, Phase.DRAIN, Phase.VM_PAUSE, Phase.VM_PAUSED}
        bound = 0
        for start in self.plan.reachable:
            ph, n, seen = int(start), 0, set()
            while ph in skippable and ph not in seen:
                seen.add(ph)
                n += self._units(ph)
                ph = int(self.plan.next[PAIRS.get(Phase(ph), ph)])
            bound = max(bound, n)
        return bound

    # ------------------------------------------------------------------ reading
    def at(self, x: View | Next, name: str, dev: Term) -> Term:
        """Indexed variable ``name`` of device ``dev`` (a column of device numbers)."""
        out = x[self.cfg.key(name, 0)]
        for d in range(1, self.D):
            out = where(dev == d, x[self.cfg.key(name, d)], out)
        return out

    def current_device(self, x: View | Next) -> Term:
        """The device the unit of each row works on (0 outside device phases)."""
        pc, cur = x["pc"], x["cursor"]
        out = 0 * cur
        for ph in DEVICE_PHASES:
            if ph in self.plan.reachable:
                out = where(pc == ph, self.plan.device_at(x, ph, cur), out)
        return out

    def has_work(self, t: View | Next) -> Term:
        pc = t["pc"]
        work = true_like(pc == 0)
        dev = self.current_device(t)
        for ph in REQUEST_PHASES:
            if ph not in self.plan.reachable:
                continue
            prefix = "dst_" if IS_DST[ph] else ""
            k = self.at(t, f"{prefix}kstate", dev)
            here = pc == ph
            # only devices with migration v2 are asked (migration_flags.is_some()), and a
            # SET to the state the device is in changes nothing
            ok = (lookup(self.plan.migratable_table, dev) == 1) & (k != TARGET[ph])
            work = where(here, ok, work)
        write = pc == Phase.LOAD_WRITE
        if is_any(write):
            work = where(write, lookup(self.plan.migratable_table, dev) == 1, work)
        for ph in (Phase.FINAL_SEND, Phase.SNAP_SEND, Phase.DRAIN):
            work = where(pc == ph, t["bitmap"] != 0, work)
        # Vm::pause only for a VM that is not paused already (send_migration checks
        # vm.get_state() != VmState::Paused); the resume of check_migration only for a VM
        # that was running and is Paused now.
        work = where(pc == Phase.VM_PAUSE, t["src_run"] == SrcRun.RUNNING, work)
        work = where(pc == Phase.VM_PAUSED, t["src_run"] == SrcRun.VCPUS_PAUSED, work)
        return work

    # ------------------------------------------------------------------ moving on
    def step(self, t: Next, rows: Term) -> None:
        """Move ``rows`` past their unit: the pair's second step, the next device, or
        the next phase."""
        if not is_any(rows):
            return
        pc, cur = t["pc"], t["cursor"]
        per_dev = lookup(_IS_DEVICE, pc) == 1
        is_first = lookup(_PAIR_FIRST, pc) == 1
        sec = lookup(_PAIR_SECOND, pc) == 1
        to_pair = rows & is_first
        more = rows & per_dev & ~is_first & (cur + 1 < self.D)
        leave = rows & ~to_pair & ~more
        new_pc = where(to_pair, lookup(_TO_SECOND, pc),
                       where(more & sec, lookup(_TO_FIRST, pc), where(leave, lookup(self.plan.next, pc), pc)))
        t["cursor"] = where(more, cur + 1, where(leave, 0, cur))
        t["pc"] = new_pc

    def settle(self, t: Next, rows: Term) -> None:
        """Skip units without work until every row in ``rows`` points at work (IDLE
        always counts as work: the migration is over there)."""
        symbolic = is_symbolic(rows) or is_symbolic(t["pc"]) or is_symbolic(t["cursor"])
        for _ in range(self.bound):
            stuck = rows & ~self.has_work(t) & (t["pc"] != Phase.IDLE)
            if not symbolic and not is_any(stuck):
                return
            self.step(t, stuck)
        if not symbolic and is_any(rows & ~self.has_work(t) & (t["pc"] != Phase.IDLE)):
            raise RuntimeError("cloud-hypervisor phase plan does not settle")

    def finish(self, t: Next, rows: Term) -> None:
        """The unit of ``rows`` is done: move on and settle."""
        self.step(t, rows)
        self.settle(t, rows)

    def enter(self, t: Next, rows: Term, phase: Term) -> None:
        """Jump ``rows`` to ``phase`` (cursor 0) and settle."""
        t["pc"] = where(rows, phase, t["pc"])
        t["cursor"] = where(rows, 0, t["cursor"])
        self.settle(t, rows)

    def enter_failure(self, t: Next, rows: Term) -> None:
        """send_migration() returned an error: check_migration()'s recovery.  The source
        VM is resumed if it was running before and is Paused now; a destination that has
        not started is gone (its receive loop fails on the closed socket)."""
        if self.cfg.starts_paused:
            entry: Term = Phase.FAIL_STOP_LOG
        else:
            entry = where(t["src_run"] == SrcRun.PAUSED, Phase.FAIL_RESUME, Phase.FAIL_STOP_LOG)
        gone = rows & (t["dst_run"] == DstRun.INMIGRATE)
        t["dst_run"] = where(gone, DstRun.ABORTED, t["dst_run"])
        t["req"] = where(rows, Req.IDLE, t["req"])
        # the migration has failed from here on; check_migration() only recovers
        t["status"] = where(rows, Status.FAILED, t["status"])
        self.enter(t, rows, entry)
