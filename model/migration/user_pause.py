"""A user's ``stop`` and ``cont`` of the source VM during pre-copy (``[vm].user_pause``).

QEMU (read at Q-8.0 c1eb2ddf0f, Q-8.1 7e5a8bb223, Q-8.2 1600b9f46b and Q-master
ece408818d; docs/sources.md#qemu-save-path, "A pause during the migration"):
- ``stop`` (qmp_stop -> vm_stop(RUN_STATE_PAUSED) -> do_vm_stop, system/cpus.c) pauses the
  vCPUs, then runs the VM-state callbacks with PAUSED: the prepare callback (8.2+, P2P
  devices, 94f775e428) moves PRE_COPY to PRE_COPY_P2P and anything else to RUNNING_P2P;
  vfio_vmstate_change() then asks STOP_COPY for a device QEMU caches in a pre-copy state
  (8.1 eda7362af9, both pre-copy states from 8.2 3d4d0f0e06) and STOP otherwise (8.0:
  always STOP, and no device is in PRE_COPY there).  The migration thread goes on.
- ``cont`` (qmp_cont, monitor/qmp-cmds.c) is refused only in FINISH_MIGRATE, so during
  pre-copy it runs vm_start(): prepare (STOP_COPY is not PRE_COPY: RUNNING_P2P), then
  RUNNING.  The kernel walks STOP_COPY -> STOP -> ..., which ends the saving session,
  while QEMU keeps its data_fd until vfio_save_cleanup().
- At the switchover migration_stop_vm() records the run state (vm_old_state, -1 until
  then) and vm_stop_force_state(FINISH_MIGRATE) of a VM that is not running only sets the
  run state: no VM-state callback runs (the phase plan's paused switchover entry).  A cont
  before it left the device cached RUNNING, so the switchover stops it to STOP and
  vfio_save_complete_precopy()'s STOP -> STOP_COPY opens a new session while QEMU holds the
  old data_fd: "data_fd out of sync" (vfio_migration_set_state), and the migration fails.
  migration_iteration_finish() restarts the VM only when vm_old_state was running
  (Control.enter_failure reads ``upause``).

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: one stop and one cont per run, between pre-copy steps, no error pending.║
║                                                                                      ║
║ ``upause`` counts never / paused / continued.  A second stop would walk the same     ║
║ arcs from the states a first one reaches (the callbacks read only QEMU's cached      ║
║ state), and without a bound a stop/cont loop would be a behaviour in which the       ║
║ migration never ends without any QEMU fault.  The user acts where the migration      ║
║ thread is between steps of pre-copy (pc ACTIVE, no SET in flight): the callbacks run ║
║ under the BQL, which the migration thread takes for each step.  A stop with an error ║
║ pending is not offered (the next check fails the migration either way; a VM paused  ║
║ before a failure is the [vm].paused path).  The vCPUs resume at cont before the      ║
║ callbacks run (vm_start resumes them after): a vCPU write in between is logged by   ║
║ KVM like any pre-copy write.  Reads of the device's data_fd during pre-copy are not  ║
║ modelled (no data volumes), so a cont is seen at save_complete, not earlier.        ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from collections.abc import Callable

from checker.lang.layout import Next, View
from checker.lang.ops import Term, where
from model.migration.config import ModelConfig
from model.migration.phases import Control, Phase, PhasePlan, Req, SrcRun, Status

USER_PAUSE_NAMES = ("never", "paused", "continued")
NEVER, PAUSED, CONTINUED = range(3)

#: ActionBuilder.add: (family, guard, effect, **params).
AddAction = Callable[..., None]


def _between_steps(s: View) -> Term:
    return ((s.pc == Phase.ACTIVE) & (s.req == Req.IDLE) & (s.status == Status.ACTIVE)
            & (s.mig_error == 0))


def add_user_pause(cfg: ModelConfig, ctl: Control, add: AddAction) -> None:
    """``QmpStop`` and ``QmpCont``: the user's commands, then the devices' VM-state
    callbacks as device phases (USER_STOP_PREPARE, USER_STOP; USER_CONT_PREPARE,
    USER_CONT), back to pre-copy."""
    if not cfg.user_pause:
        return

    def stop_guard(s: View) -> Term:
        return _between_steps(s) & (s.src_run == SrcRun.RUNNING) & (s.upause == NEVER)

    def stop(s: View, t: Next) -> None:
        t.src_run = SrcRun.PAUSED
        t.upause = PAUSED
        ctl.enter(t, s.ones(), Phase.USER_STOP_PREPARE, phases=(Phase.USER_STOP_PREPARE,))

    def cont_guard(s: View) -> Term:
        return _between_steps(s) & (s.src_run == SrcRun.PAUSED) & (s.upause == PAUSED)

    def cont(s: View, t: Next) -> None:
        t.src_run = SrcRun.RUNNING
        t.upause = CONTINUED
        ctl.enter(t, s.ones(), Phase.USER_CONT_PREPARE, phases=(Phase.USER_CONT_PREPARE,))

    add("QmpStop", stop_guard, stop)
    add("QmpCont", cont_guard, cont)


def switchover_entry(cfg: ModelConfig, plan: PhasePlan, s: View) -> tuple[Term, tuple[int, ...]]:
    """Where the switchover goes on (and the phases it can be): past the VM-stop callbacks
    for a VM the user paused (vm_stop_force_state() runs none)."""
    if not cfg.user_pause:
        return plan.switchover_entry, (plan.switchover_entry,)
    entry = where(s.src_run == SrcRun.PAUSED, plan.paused_switchover_entry, plan.switchover_entry)
    return entry, (plan.switchover_entry, plan.paused_switchover_entry)
