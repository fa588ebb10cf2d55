"""A destination load error and the return path ([migration] load_faults; docs/sources.md#qemu-return-path).

The destination's vfio_load_state() writes the device data to the RESUMING data_fd
(vfio_load_buffer -> qemu_file_get_to_fd, hw/vfio/migration.c at master ece408818d); a
driver that refuses the data fails the write, the load fails, and qemu_loadvm_state_main()
sets the incoming stream's error (migration/savevm.c).  The destination QEMU then leaves
through process_incoming_migration_co()'s fail path: migration_incoming_state_destroy()
sends SHUT with that error, and the destination exits; its VM never runs.

* With the return path the source is still in migration_completion(), waiting for SHUT
  (close_return_path_on_source): the error fails the completion and the source restarts
  its VM (migration_iteration_finish), as on any failure after the switchover.
* Without it the source has already completed (COMPLETED, POSTMIGRATE) and cleaned up:
  nobody restarts the guest; only management can (the model's source stays POSTMIGRATE).

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the load error, the SHUT and the destination's exit are one step.       ║
║                                                                                      ║
║ The destination does nothing else after its load failed, and the source only reads   ║
║ SHUT's error, at its next check: with the return path, the check at LOAD_STATE where ║
║ the model's source waits.  The write of the data is where the fault is offered (any  ║
║ device, before its state was written); the RESUMING -> STOP validation at vm_start  ║
║ is the kernel's and is ``device_faults``' (its failure is never reported: the        ║
║ finding dst-validation-fault-runs-unloaded).                                        ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from checker.lang.layout import Next, View
from checker.lang.ops import Term
from checker.lang.spec import Action
from model.migration.config import ModelConfig
from model.migration.phases import Control, DstRun, Phase


def actions(cfg: ModelConfig, ctl: Control) -> list[Action]:
    """LoadStateFails per device (``[migration] load_faults``; a fault, not fair)."""
    if not cfg.scenario.migration.load_faults:
        return []
    rp = cfg.scenario.migration.return_path
    out: list[Action] = []
    for d in range(cfg.devices):
        loaded = cfg.key("dst_loaded", d)

        def guard(s: View, d: int = d, loaded: str = loaded) -> Term:
            return (s.pc == Phase.LOAD_STATE) & (s.cursor == d) & (s.mig_error == 0) & (s[loaded] == 0)

        def fail(s: View, t: Next) -> None:
            t.dst_run = DstRun.LOAD_FAILED
            for e in range(cfg.devices):
                t[cfg.key("dst_fd", e)] = 0  # the destination QEMU exits
            if rp:
                # SHUT reports the stream's error: the waiting source fails at this check.
                t.mig_error = 1
            else:
                # The source completed and cleaned up before the destination loaded.
                ctl.enter(t, s.ones(), Phase.IDLE, phases=(Phase.IDLE,))

        out.append(Action("LoadStateFails", guard, fail, {"dev": cfg.names[d]}))
    return out
