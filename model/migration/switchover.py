"""Switchover-ack: the source switches over only once the destination acked every device's
initial pre-copy data (QEMU 8.1+, ``[migration] switchover_ack``; docs/sources.md#qemu-switchover-ack).

QEMU's rule, read at 8.1 (7e5a8bb223) through master:

* the capability needs the return path (migrate_caps_check, migration/options.c);
* the destination counts the devices whose ``switchover_ack_needed`` hook says yes: for VFIO
  a device whose migration flags have PRE_COPY (vfio_switchover_ack_needed ->
  vfio_precopy_supported, hw/vfio/migration.c, 745c42912a) — qemu_loadvm_state_switchover_ack_needed;
* the source's vfio_save_iterate, once the device's ``precopy_init_size`` reached zero, puts
  VFIO_MIG_FLAG_DEV_INIT_DATA_SENT in the stream once (``initial_data_sent``); it runs only
  while QEMU caches PRE_COPY (vfio_is_active_iterate);
* the destination's vfio_load_state reads that flag and calls qemu_loadvm_approve_switchover(),
  which counts down and, at zero, sends MIG_RP_MSG_SWITCHOVER_ACK on the return path (with
  no device to wait for, at MIG_CMD_OPEN_RETURN_PATH, loadvm_process_command);
* the source's source_return_path_thread sets ``switchover_acked``, and
  migration_can_switchover() lets migration_iteration_run() complete only with it — or when
  the VM is not running ("no reason to wait" for a stopped VM, migration/migration.c);
* until then migration_iteration_run() iterates again, and each iteration with little left
  syncs the dirty log (qemu_savevm_state_pending_exact -> ram_state_pending_exact).

Before 9.0, qemu_savevm_state_iterate() stopped at the first handler that was not finished
(90697be889; removed by 4e1871c450, profile flag ``iterate_serialized``).  RAM registers its
handler first (ram_mig_init from migration_object_init, before any device realizes) and
ram_save_iterate() says "finished" only when ram_find_and_save_block() found no dirty page
(``done = 1``); vfio_save_iterate() always says finished (eda7362af9: a device's dirty_bytes
need not reach zero), so VFIO never starves another handler, but RAM starves VFIO: its
initial data goes out only in an iteration that began with RAM's bitmap empty.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: a device's initial data is one step; the stream, the destination's     ║
║ count-down and the return path are one more.                                         ║
║                                                                                      ║
║ ``init_data_sent`` (per device) is set by SaveIterate, the vfio_save_iterate call in ║
║ which ``precopy_init_size`` reaches zero; the calls before it change nothing the     ║
║ properties see (the model keeps no data sizes).  ``switchover_acked`` is set by      ║
║ SwitchoverAck once every device that needs an ack has sent its flag: the destination ║
║ reads the stream in order and does nothing else the source can see in between, and  ║
║ the return-path thread only sets the flag the migration thread reads at its next     ║
║ iteration, so one step for the three loses no outcome; it is a separate step, so the ║
║ ack may come late.  Both are QEMU's own code, under weak fairness.  The ack is       ║
║ offered only while the source is in pre-copy without a pending error (later it      ║
║ changes nothing: the switchover is the only reader).                                 ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: waiting for the ack, pre-copy goes on past ``precopy_rounds``.          ║
║                                                                                      ║
║ The round bound stands for "QEMU decides to switch over"; without the ack it cannot, ║
║ so once the bound is reached the model still offers log_syncs (``round`` stays at    ║
║ the bound, so no new states are counted) while the ack is missing and the VM runs.   ║
║ A guest that keeps writing then keeps RAM's bitmap from staying empty: with the      ║
║ serialised iterate, SaveIterate is enabled only now and then, weak fairness does not ║
║ force it, and the migration never ends — the starvation 4e1871c450 describes.  From ║
║ 9.0 SaveIterate stays enabled and fairness makes it happen.  Bandwidth is not        ║
║ modelled: the starvation the commit message says remains (a device using the whole   ║
║ max-bandwidth every epoch, qemu_savevm_state_iterate's rate-limit return) is out of  ║
║ reach, as is any choice QEMU makes from sizes.  ``precopy_rounds = 0`` keeps meaning ║
║ "no pre-copy sync at all".                                                           ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from checker.lang.layout import Layout, Next, View
from checker.lang.ops import Term, all_of, true_like
from checker.lang.spec import Action
from model.fsm.uapi import DeviceState
from model.migration.config import ModelConfig
from model.migration.dirty import Trackers
from model.migration.phases import DstRun, Phase, SrcRun, Status

S = DeviceState

#: QEMU's own steps of switchover-ack (weak fairness applies to them, as to QEMU's others).
SWITCHOVER_FAMILIES: tuple[str, ...] = ("SaveIterate", "SwitchoverAck")


def enabled(cfg: ModelConfig) -> bool:
    """The switchover-ack capability is on (``[migration] switchover_ack``)."""
    return cfg.scenario.migration.switchover_ack


def needs_ack(cfg: ModelConfig, dev: int) -> bool:
    """vfio_switchover_ack_needed(): the device supports PRE_COPY.  The hook came with VFIO's
    pre-copy support (745c42912a after eda7362af9), so a profile without it has none."""
    return cfg.profile.uses_pre_copy and cfg.has_pre_copy(dev)


def declare(lay: Layout, cfg: ModelConfig) -> None:
    """The variables of switchover-ack (only when the capability is on)."""
    if not enabled(cfg):
        return
    lay.flag("init_data_sent", count=cfg.devices, array=True,
             doc="source device: DEV_INIT_DATA_SENT is in the stream (initial_data_sent)")
    lay.flag("switchover_acked", doc="the destination's switchover ack reached the source")


def restart(cfg: ModelConfig, t: Next) -> None:
    """A new attempt: vfio_save_setup clears ``initial_data_sent``, migrate_init clears
    ``switchover_acked``."""
    if not enabled(cfg):
        return
    for d in range(cfg.devices):
        t[cfg.key("init_data_sent", d)] = 0
    t["switchover_acked"] = 0


def can_switchover(cfg: ModelConfig, s: View) -> Term:
    """migration_can_switchover(): no capability, the ack came, or the VM is not running."""
    if not enabled(cfg):
        return true_like(s.status)
    return (s.switchover_acked == 1) | (s.src_run != SrcRun.RUNNING)


def _iterating(s: View) -> Term:
    """The migration thread iterates pre-copy with no error pending on the stream."""
    return (s.pc == Phase.ACTIVE) & (s.mig_error == 0)


def actions(cfg: ModelConfig, trk: Trackers) -> list[Action]:
    """SaveIterate per device that needs an ack, SwitchoverAck, and the log_syncs of the
    iterations spent waiting for the ack."""
    if not enabled(cfg):
        return []
    out: list[Action] = []
    serialized = cfg.profile.iterate_serialized
    needed = [d for d in range(cfg.devices) if needs_ack(cfg, d)]
    for d in needed:
        sent = cfg.key("init_data_sent", d)

        def iguard(s: View, d: int = d, sent: str = sent) -> Term:
            ok = _iterating(s) & (s[sent] == 0) & (s[cfg.key("qstate", d)] == S.PRE_COPY)
            if serialized:
                # Before 9.0 VFIO's handler runs only after RAM's said it is done: RAM
                # found no dirty page (qemu_savevm_state_iterate stops at ret <= 0).
                ok = ok & (s.bitmap == 0)
            return ok

        def iterate(s: View, t: Next, sent: str = sent) -> None:
            # vfio_save_iterate: the last of the initial data, then DEV_INIT_DATA_SENT.
            t[sent] = 1

        out.append(Action("SaveIterate", iguard, iterate, {"dev": cfg.names[d]}))

    def aguard(s: View) -> Term:
        return all_of([_iterating(s), s.status == Status.ACTIVE, s.switchover_acked == 0,
                       s.dst_run == DstRun.INMIGRATE,
                       *(s[cfg.key("init_data_sent", d)] == 1 for d in needed)])

    def ack(s: View, t: Next) -> None:
        # qemu_loadvm_approve_switchover() counted the last device down and sent
        # MIG_RP_MSG_SWITCHOVER_ACK; source_return_path_thread sets switchover_acked.
        t.switchover_acked = 1

    out.append(Action("SwitchoverAck", aguard, ack, {}))

    if cfg.rounds > 0:
        def wguard(s: View) -> Term:
            return (_iterating(s) & (s.round == cfg.rounds) & (s.switchover_acked == 0)
                    & (s.src_run == SrcRun.RUNNING))

        def wait_sync(s: View, t: Next) -> None:
            # migration_iteration_run cannot complete yet, iterates again and syncs.
            trk.sync(t)

        out.append(Action("LogSync", wguard, wait_sync, {"awaiting": "switchover-ack"}))
    return out
