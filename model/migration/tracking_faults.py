"""iommufd's set-tracking failing at log_global_start (``[migration].hwpt_tracking_faults``).

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

from checker.lang.spec import Effect, Predicate
from model.migration.config import ModelConfig

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
