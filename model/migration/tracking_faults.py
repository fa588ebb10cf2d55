"""iommufd's set-tracking failing at log_global_start (``[migration].hwpt_tracking_faults``)
and at log_global_stop (``[migration].log_stop_faults``, :func:`add_stop_tracking_faults`).

QEMU (9.1+, 52ce88229c; read at Q-9.1 fd1952d814 and Q-master ece408818d,
hw/vfio/iommufd.c iommufd_set_dirty_page_tracking): log_global_start on a container without
DMA logging on every device (vfio_listener_log_global_start) calls
vfio_container_set_dirty_page_tracking(), which for iommufd walks the container's hwpt list,
issues IOMMU_HWPT_SET_DIRTY_TRACKING on every dirty-capable hwpt, and at the first failure
turns tracking off again on every dirty-capable hwpt of the list (not only the ones it had
set) and returns an error (from 10.0, d77e85dbd7, dirty_pages_started is then left false).
From there the failure takes the path of a failed DMA_LOGGING_START
(``ActionBuilder._log_start_failed``): 9.1+ fails RAM's save_setup (3688fec892 /
639ec3fbf9, the profile's log_global_start_fails_setup), and, since
memory_global_dirty_log_start() cleared the global flag, ram_save_cleanup() never calls
log_global_stop, so the rollback is the only thing that turns the hwpts off
(docs/sources.md#qemu-tracking-start-failure).

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: one "some hwpt tracks" flag (``hwpt_tracking``) for the container.      ║
║                                                                                      ║
║ model.decision.tracking.hwpt_dirty_tracking() reads iommufd_cdev_autodomains_get()  ║
║ as "a capable device joins the newest hwpt, a plain one takes any device", so a     ║
║ container of the model has at most one dirty-capable hwpt: the one whose SET fails  ║
║ is the only one, and the rollback has nothing it had set to undo.  Several          ║
║ dirty-capable hwpts need devices behind IOMMU instances that refuse each other's    ║
║ domains (e.g. two SMMUv3 instances), which the model does not describe.  So a "no   ║
║ rollback" mutation would change no state here and is not offered; the flag still    ║
║ lets the ignored-failure mutation (ignore_log_start_failure) show what the rollback ║
║ costs when nobody hears of the error, and SourceRecovers checks it is off after a   ║
║ failed attempt.                                                                      ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from collections.abc import Callable

from checker.lang.layout import Next, View
from checker.lang.ops import Term
from checker.lang.spec import Effect, Predicate
from model.migration.config import ModelConfig
from model.migration.dirty import Trackers
from model.migration.phases import Control, Phase, SrcRun

#: ActionBuilder.add: (family, guard, effect, **params).
AddAction = Callable[..., None]


def add_set_tracking_faults(cfg: ModelConfig, add: AddAction, idle_none: Predicate,
                            start_failed: Effect) -> None:
    """``HwptSetDirtyTrackingFails``: the first attempt's log_global_start finds
    IOMMU_HWPT_SET_DIRTY_TRACKING failing on the dirty-capable hwpt of a device (named by
    the first device attached to it); ``start_failed`` is the migration start with a failed
    log_global_start (ActionBuilder._start with ``log_start_fails``)."""
    if not cfg.hwpt_tracking_can_fail:
        return
    # One dirty-capable hwpt per container (the box above): the first capable device's.
    owner = next((d for d in range(cfg.devices) if cfg.hwpt_dirty[d]), None)
    if owner is not None:
        add("HwptSetDirtyTrackingFails", idle_none, start_failed, hwpt=cfg.names[owner])


def add_stop_tracking_faults(cfg: ModelConfig, add: AddAction, trk: Trackers, ctl: Control) -> None:
    """``HwptStopTrackingFails``: log_global_stop of a failed or cancelled migration finds
    IOMMU_HWPT_SET_DIRTY_TRACKING failing (``[migration].log_stop_faults``).

    iommufd_set_dirty_page_tracking()'s rollback then sends the opposite request, *start*,
    to every dirty-capable hwpt, so tracking stays on (from 10.0 dirty_pages_started stays
    true too, d77e85dbd7); vfio_listener_log_global_stop() reports the error through
    vfio_set_migration_error(), which sets nothing in FAILED (8.0-9.2: nor in CANCELLING;
    10.0+: the stream's error, just before migration_cleanup() closes it), so the cleanup
    goes on (docs/sources.md#qemu-log-stop-failure).  Offered only where QEMU runs the stop
    at cleanup: global tracking on and the VM running (memory_global_dirty_log_stop()
    postpones it while the VM is not running, so not after a completed migration).

    ╔════════════════════════════════════════════════════════════════════════════════╗
    ║ Abstraction: a retry's start still clears the hwpt's dirty bits.               ║
    ║ From 10.0 vfio_container_set_dirty_page_tracking() returns early for a        ║
    ║ container still "started", so the bits gathered since stay; they only add     ║
    ║ pages, every one of which ram_init_bitmaps() marks dirty at that start anyway. ║
    ╚════════════════════════════════════════════════════════════════════════════════╝
    """
    if not cfg.log_stop_can_fail:
        return

    def guard(s: View) -> Term:
        return (s.pc == Phase.FAIL_LOG_STOP) & (s.dirty_log == 1) & (s.src_run == SrcRun.RUNNING)

    def fails(s: View, t: Next) -> None:
        trk.log_stop(t)
        t["hwpt_tracking"] = 1
        ctl.finish(t, s.ones(), phases=(Phase.FAIL_LOG_STOP,))

    add("HwptStopTrackingFails", guard, fails)
