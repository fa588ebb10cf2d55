"""The VFIO device config load on the destination, and the interrupt controller it needs
first on ARM (``[vm] arch = "aarch64"``; ``x-migration-load-config-after-iter``, 10.1+).

Read in QEMU 10.0 (7c949c53e9), 10.1 (f8b2f64e23), 10.2 (698104725e), master (ece408818d):

* Main stream.  The config of a device (vfio_pci_load_config: BARs, MSI / MSI-X, whose
  routes on ARM go through the GIC's ITS) is the device's non-iterable section
  (vfio_save_state / vfio_load_state, VFIO_MIG_FLAG_DEV_CONFIG_STATE), placed there so it
  follows the interrupt controller (d329f5032e17).  Non-iterable sections are saved in
  handler order, which savevm_state_handler_insert() (migration/savevm.c) sorts by
  priority: the GICv3 and its ITS (MIG_PRI_GICV3, MIG_PRI_GICV3_ITS,
  hw/intc/arm_gicv3_common.c, arm_gicv3_its_common.c) come before VFIO's
  (register_savevm_live, MIG_PRI_DEFAULT); the destination loads them in stream order.
* Multifd (10.0+).  The config travels over the multifd channels as the last buffer, and
  the device's load thread (vfio_load_bufs_thread, hw/vfio/migration-multifd.c) loads it
  right after the data, with no tie to the main stream: in 10.0 it can run before the
  GIC's section is loaded.  From 10.1 (6380b0a02f), with the property in effect
  (vfio_load_config_after_iter(): on, or auto on an ARM target), the source's
  vfio_save_state writes VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY in the device's non-iterable
  section instead of the empty end marker, and the thread waits on
  load_bufs_iter_done_cond until vfio_load_state_config_load_ready() (that section's
  load) sets load_bufs_iter_done; so the config follows the GIC again.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the interrupt controller is one non-iterable load before the devices'.  ║
║                                                                                      ║
║ On aarch64 the destination loads the interrupt controller's state (GICv3 and ITS     ║
║ sections: no VFIO ioctl, no page) in one step (``LoadInterruptController``) before   ║
║ the devices' load sections (LOAD_STATE), which the model runs in the order QEMU's    ║
║ priorities give.  A main-stream device loads its config in its LOAD_STATE step.  A   ║
║ multifd load thread stays one step (model/migration/multifd.py) that writes the data ║
║ and loads the config: without the property it may run from the interrupt            ║
║ controller's step on (QEMU's thread starts at the switchover, earlier still; nothing ║
║ the model reads on the destination changes in between, the device is RESUMING       ║
║ throughout); with it, only after its device's LOAD_STATE step (the                  ║
║ DEV_CONFIG_LOAD_READY section).  Its data writes then also move after that point,   ║
║ which changes nothing either: they touch only that RESUMING device.  Not modelled:   ║
║ the GIC's own contents, a 10.0 source sending to a 10.1+ destination with the        ║
║ property on (the thread waits for a section that never comes), and x86_64's          ║
║ interrupt controller (no VFIO dependency on it is known; the variables exist on      ║
║ aarch64 only).                                                                       ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from collections.abc import Callable

from checker.lang.layout import Layout, Next, View
from checker.lang.ops import Term, any_of, isin, where
from checker.lang.spec import Action
from model.migration.config import ModelConfig
from model.migration.phases import Control, Phase

#: The action family weak fairness applies to (QEMU's main thread loads the section).
CONFIG_LOAD_FAIR_FAMILIES = ("LoadInterruptController",)


def orders_config(cfg: ModelConfig) -> bool:
    """The model tracks the config load against the interrupt controller (aarch64)."""
    return cfg.scenario.vm.arch == "aarch64"


def declare(lay: Layout, cfg: ModelConfig) -> None:
    if not orders_config(cfg):
        return
    lay.flag("irqchip_loaded", doc="destination: the interrupt controller's state (GICv3, ITS) is loaded")
    lay.flag("dst_config", count=cfg.devices, array=True,
             doc="destination device: its config (vfio_load_config) is loaded")


def reset(cfg: ModelConfig, t: Next) -> None:
    """A new attempt: a fresh destination has loaded nothing."""
    if not orders_config(cfg):
        return
    t.irqchip_loaded = 0
    for d in range(cfg.devices):
        t[cfg.key("dst_config", d)] = 0


def config_loaded(cfg: ModelConfig, t: Next, d: int, ok: Term | bool = True) -> None:
    """Device ``d``'s config is loaded where ``ok`` (its main-stream section, or its load
    thread's last buffer)."""
    if orders_config(cfg):
        key = cfg.key("dst_config", d)
        t[key] = where(ok, 1, t[key])


def thread_window(cfg: ModelConfig, d: int, window: tuple[int, ...]) -> Callable[[View], Term]:
    """Where device ``d``'s load thread may run (``window``: the phases multifd.py gives
    it).  Without the config ordering it may also run before the interrupt controller is
    loaded; with it (10.1+), only once its device's non-iterable section (LOAD_STATE at
    the cursor) has passed."""
    if not orders_config(cfg):
        return lambda s: isin(s.pc, window)
    if not cfg.config_after_iter[d]:
        early = (Phase.LOAD_IRQCHIP, *window)
        return lambda s: isin(s.pc, early)
    later = tuple(p for p in window if p != Phase.LOAD_STATE)

    def after_ready(s: View) -> Term:
        return isin(s.pc, later) | ((s.pc == Phase.LOAD_STATE) & (s.cursor > d))

    return after_ready


def actions(cfg: ModelConfig, ctl: Control) -> list[Action]:
    """The interrupt controller's load (aarch64 only)."""
    if not orders_config(cfg):
        return []

    def load(s: View, t: Next) -> None:
        # qemu_loadvm_state_main: the GICv3 / ITS sections (vmstate load, no VFIO ioctl).
        t.irqchip_loaded = 1
        ctl.finish(t, s.ones(), phases=(Phase.LOAD_IRQCHIP,))

    return [Action("LoadInterruptController", lambda s: s.pc == Phase.LOAD_IRQCHIP, load, {})]


def config_before_interrupt_controller(cfg: ModelConfig, s: View) -> Term | None:
    """Some device's config is loaded while the interrupt controller's state is not (None:
    not aarch64, no such order)."""
    if not orders_config(cfg):
        return None
    early = any_of([s[cfg.key("dst_config", d)] == 1 for d in range(cfg.devices)])
    return early & (s.irqchip_loaded == 0)
