"""Dirty-page tracking in the migration model: who records a write, what a sync reports.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: pages are interchangeable, so every tracker is a bit set over a few     ║
║ pages (or IOVAs) and every rule is per page.                                         ║
║                                                                                      ║
║ ``stale``     ground truth: the destination's copy of the page differs from the      ║
║               source's (set by every write during a migration, cleared when the     ║
║               page is sent).  Only properties read it; QEMU never does.             ║
║ ``bitmap``    QEMU's migration bitmap (RAMBlock bmap, migration/ram.c).              ║
║ ``kvm_dirty`` KVM's dirty log: vCPU writes, folded in at every sync                 ║
║               (migration_bitmap_sync -> memory_global_dirty_log_sync).              ║
║ ``dma_log``   per device, indexed by IOVA: the device's DMA log                     ║
║               (VFIO_DEVICE_FEATURE_DMA_LOGGING_*, uAPI vfio.h; read and cleared by  ║
║               REPORT).                                                               ║
║ ``iommu_dirty`` per IOVA space: iommufd hwpt dirty bits (IOMMU_HWPT_GET_DIRTY_BITMAP ║
║               reads and clears, uAPI iommufd.h, Linux 6.7).                          ║
║ type1 and the all-dirty fallback have no per-page memory: type1 reports every       ║
║ mapped page unless every IOMMU-backed group pins (then the pinned pages, which stay ║
║ dirty) — vfio_iommu_type1.c update_user_bitmap(), vfio_dma_populate_bitmap();       ║
║ all-dirty marks the synced section dirty — vfio_container_query_dirty_bitmap()      ║
║ (master hw/vfio/container.c; vfio_get_dirty_bitmap() in 8.0, b051a3f640).           ║
║                                                                                      ║
║ With a vIOMMU each device writes IOVAs; ``iova_map`` (per device and IOVA: unmapped ║
║ or a page) translates them.  A log_sync replays the *current* mappings and queries  ║
║ each mapped IOVA (vfio_sync_iommu_dirty_bitmap / vfio_iommu_map_dirty_notify), so a ║
║ bit is reported against the page its IOVA maps to at that moment; an unmap fetches  ║
║ the range's bits first where the method and QEMU version allow it                   ║
║ (decision.unmap_queries_dirty, vfio_legacy_dma_unmap_one / iommufd_cdev_unmap).     ║
║ DMA logging covers only the IOVA ranges given at DMA_LOGGING_START                   ║
║ (vfio_dirty_tracking_init computes them once): ``log_range`` keeps that span.       ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

import numpy as np

from checker.layout import Next
from model.migration_config import ModelConfig
from model.tracking import Method

Cols = dict[str, np.ndarray]


def bit(x: np.ndarray, i: int) -> np.ndarray:
    return ((np.asarray(x) >> i) & 1) == 1


def span(mask: np.ndarray, width: int) -> np.ndarray:
    """The contiguous bit range from the lowest to the highest set bit (0 if none).

    vfio_dirty_tracking_init() collapses the mapped sections into at most three ranges
    (32-bit, 64-bit, PCI hole); with a handful of IOVAs one covering range is the same.
    """
    mask = np.asarray(mask)
    lo = np.full(mask.shape, width, dtype=np.int64)
    hi = np.full(mask.shape, -1, dtype=np.int64)
    for i in range(width):
        b = bit(mask, i)
        lo = np.where(b & (lo == width), i, lo)
        hi = np.where(b, i, hi)
    full = (np.left_shift(1, hi + 1) - np.left_shift(1, np.minimum(lo, width - 1)))
    return np.where(mask != 0, full, 0)


class Trackers:
    """The dirty-tracking rules of one scenario (method, vIOMMU, profile)."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.P = cfg.pages

    # ------------------------------------------------------------------ vIOMMU
    def map_key(self, dev: int, iova: int) -> str:
        return self.cfg.key("iova_map", dev * self.P + iova)

    def page_of(self, x: Next, dev: int, iova: int) -> np.ndarray:
        """The page IOVA ``iova`` of ``dev`` maps to now, or -1 when unmapped."""
        if not self.cfg.viommu:
            return np.full(len(np.asarray(x["status"])), iova, dtype=np.int64)
        return np.asarray(x[self.map_key(dev, iova)]) - 1

    def mapped_iovas(self, x: Next, dev: int) -> np.ndarray | int:
        """IOVA bit set of ``dev`` that is mapped now (all of them without a vIOMMU)."""
        if not self.cfg.viommu:
            return self.cfg.all_pages
        out = np.zeros(len(np.asarray(x["status"])), dtype=np.int64)
        for i in self.cfg.dma_iovas[dev]:
            out |= np.where(self.page_of(x, dev, i) >= 0, 1 << i, 0)
        return out

    def mapped_pages(self, x: Next) -> np.ndarray | int:
        """Pages some IOMMU mapping points at now: all guest RAM without a vIOMMU (the
        container maps it whole), the current vIOMMU mappings' pages with one."""
        if not self.cfg.viommu:
            return self.cfg.all_pages
        out = np.zeros(len(np.asarray(x["status"])), dtype=np.int64)
        for d in range(self.cfg.devices):
            for i in self.cfg.dma_iovas[d]:
                p = self.page_of(x, d, i)
                out |= np.where(p >= 0, np.left_shift(1, np.maximum(p, 0)), 0)
        return out

    def translate(self, x: Next, dev: int, iovas: np.ndarray) -> np.ndarray:
        """Pages for an IOVA bit set of ``dev``, through the mappings of the moment."""
        if not self.cfg.viommu:
            return np.asarray(iovas)
        out = np.zeros(len(np.asarray(x["status"])), dtype=np.int64)
        for i in self.cfg.dma_iovas[dev]:
            p = self.page_of(x, dev, i)
            out |= np.where(bit(iovas, i) & (p >= 0), np.left_shift(1, np.maximum(p, 0)), 0)
        return out

    # ------------------------------------------------------------------ reports
    def vfio_report(self, x: Next) -> np.ndarray:
        """The pages VFIO's part of a log_sync would report in this state (not clearing).

        Also the "will be reported at the next sync" half of DirtyTrackingSound.
        """
        cfg = self.cfg
        n = len(np.asarray(x["status"]))
        started = np.asarray(x["dirty_log"]) == 1
        out = np.zeros(n, dtype=np.int64)
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            # DMA_LOGGING_REPORT on every logging device, OR'ed into one bitmap
            # (vfio_container_devices_query_dirty_bitmap).
            for d in range(cfg.devices):
                if cfg.logs[d]:
                    out |= self.translate(x, d, np.asarray(x[self.cfg.key("dma_log", d)]))
        elif cfg.method is Method.TYPE1:
            mapped = self.mapped_pages(x)
            rep = mapped & cfg.pinned_mask if cfg.decision.type1_pinned_scope else mapped
            out |= np.where(started, rep, 0)
        elif cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                out |= self.translate(x, s, np.asarray(x[self.cfg.key("iommu_dirty", s)]))
        elif cfg.all_dirty_reports:  # Method.ALL_DIRTY up to 9.2
            out |= np.where(started, self.mapped_pages(x), 0)
        return out & np.where(started, cfg.all_pages, 0)

    def sync_needed(self, x: Next) -> np.ndarray:
        """vfio_log_sync_needed() (master; vfio_devices_all_dirty_tracking() before 10.0):
        tracking on, and no device with x-pre-copy-dirty-page-tracking=off in one of the
        profile's suppressing states (QEMU's cached device_state)."""
        ok = np.asarray(x["dirty_log"]) == 1
        states = self.cfg.sync_suppressing_states
        for d in range(self.cfg.devices):
            if self.cfg.precopy_opt_out[d]:
                ok = ok & ~states[np.asarray(x[self.cfg.key("qstate", d)])]
        return ok

    def query_can_fail(self) -> bool:
        """A sync's VFIO part is an ioctl that can fail (all-dirty issues none)."""
        return self.cfg.method is not Method.ALL_DIRTY

    def sync(self, t: Next) -> None:
        """migration_bitmap_sync(): KVM's log, then VFIO's log_sync (when needed)."""
        cfg = self.cfg
        bitmap = np.asarray(t["bitmap"]) | np.asarray(t["kvm_dirty"])
        t["kvm_dirty"] = 0
        need = self.sync_needed(t)
        rep = self.vfio_report(t)
        bitmap = bitmap | np.where(need, rep, 0)
        t["bitmap"] = bitmap
        # What the queries read and cleared: the currently mapped IOVAs.
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            for d in range(cfg.devices):
                if cfg.logs[d]:
                    key = self.cfg.key("dma_log", d)
                    t[key] = np.where(need, np.asarray(t[key]) & ~self.mapped_iovas(t, d),
                                      t[key])
        elif cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                key = self.cfg.key("iommu_dirty", s)
                t[key] = np.where(need, np.asarray(t[key]) & ~self.mapped_iovas(t, s), t[key])

    # ------------------------------------------------------------------ lifecycle
    def log_start(self, t: Next) -> None:
        """memory_global_dirty_log_start -> KVM logging and VFIO log_global_start:
        DMA_LOGGING_START on each logging device (fresh log over the ranges mapped now),
        VFIO_IOMMU_DIRTY_PAGES START (type1), IOMMU_HWPT_SET_DIRTY_TRACKING (iommufd,
        which clears stale dirty bits first, iopt_set_dirty_tracking), nothing (all-dirty).
        """
        cfg = self.cfg
        t["dirty_log"] = 1
        t["kvm_dirty"] = 0
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            for d in range(cfg.devices):
                t[self.cfg.key("dma_log", d)] = 0
                if cfg.viommu:
                    t[self.cfg.key("log_range", d)] = (
                        span(self.mapped_iovas(t, d), self.P) if cfg.logs[d] else 0
                    )
        if cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                t[self.cfg.key("iommu_dirty", s)] = 0

    def log_stop(self, t: Next) -> None:
        """memory_global_dirty_log_stop -> VFIO log_global_stop: DMA_LOGGING_STOP frees
        the device logs; container tracking stops; KVM stops logging."""
        cfg = self.cfg
        t["dirty_log"] = 0
        t["kvm_dirty"] = 0
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            for d in range(cfg.devices):
                t[self.cfg.key("dma_log", d)] = 0
                if cfg.viommu:
                    t[self.cfg.key("log_range", d)] = 0
        if cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                t[self.cfg.key("iommu_dirty", s)] = 0

    # ------------------------------------------------------------------ writes
    def dma_write(self, x: Next, dev: int, iova: int) -> Cols:
        """New values of the variables a DMA write of ``dev`` to ``iova`` changes."""
        cfg = self.cfg
        on = np.asarray(x["dirty_log"]) == 1
        page = self.page_of(x, dev, iova)
        out: Cols = {"stale": np.asarray(x["stale"]) | np.left_shift(1, np.maximum(page, 0))}
        if cfg.logs[dev]:
            key = self.cfg.key("dma_log", dev)
            logged = on
            if cfg.viommu:
                logged = logged & bit(x[self.cfg.key("log_range", dev)], iova)
            out[key] = np.asarray(x[key]) | np.where(logged, 1 << iova, 0)
        if cfg.method is Method.IOMMUFD_HW:
            key = self.cfg.key("iommu_dirty", cfg.space_of(dev))
            out[key] = np.asarray(x[key]) | np.where(on, 1 << iova, 0)
        return out

    def unmap(self, x: Next, dev: int, iova: int, query: bool) -> Cols:
        """A vIOMMU unmap of ``iova`` of ``dev``: the dirty query QEMU makes first (or,
        for device logs and all-dirty, right after, for the translated range) when
        ``query``, then the mapping (and its IOPTE dirty bit) disappears."""
        cfg = self.cfg
        on = np.asarray(x["dirty_log"]) == 1
        page = self.page_of(x, dev, iova)
        pbit = np.where(page >= 0, np.left_shift(1, np.maximum(page, 0)), 0)
        out: Cols = {self.map_key(dev, iova): np.zeros_like(page)}
        rep = np.zeros_like(page)
        if cfg.method is Method.DEVICE_DMA_LOGGING and cfg.logs[dev]:
            key = self.cfg.key("dma_log", dev)
            if query:
                rep = np.where(bit(x[key], iova), pbit, 0)
                out[key] = np.where(on, np.asarray(x[key]) & ~(1 << iova), x[key])
        elif cfg.method is Method.TYPE1:
            if query:
                scope = cfg.pinned_mask if cfg.decision.type1_pinned_scope else cfg.all_pages
                rep = pbit & scope
        elif cfg.method is Method.IOMMUFD_HW:
            key = self.cfg.key("iommu_dirty", cfg.space_of(dev))
            if query:
                rep = np.where(bit(x[key], iova), pbit, 0)
            out[key] = np.asarray(x[key]) & ~(1 << iova)
        elif cfg.method is Method.ALL_DIRTY and query and cfg.all_dirty_reports:
            rep = pbit
        out["bitmap"] = np.asarray(x["bitmap"]) | np.where(on, rep, 0)
        return out
