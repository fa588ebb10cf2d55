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

from checker.lang.layout import Next, View
from checker.lang.ops import Term, any_of, bit, lookup_bool, maximum, minimum, pow2, where, zeros_like
from model.decision.tracking import Method
from model.migration.config import ModelConfig

Cols = dict[str, Term]
State = View | Next


def span(mask: Term, width: int) -> Term:
    """The contiguous bit range from the lowest to the highest set bit (0 if none).

    vfio_dirty_tracking_init() collapses the mapped sections into at most three ranges
    (32-bit, 64-bit, PCI hole); with a handful of IOVAs one covering range is the same.
    """
    lo: Term = width + zeros_like(mask)
    hi: Term = -1 + zeros_like(mask)
    for i in range(width):
        b = bit(mask, i)
        lo = where(b & (lo == width), i, lo)
        hi = where(b, i, hi)
    full = pow2(hi + 1, width + 1) - pow2(minimum(lo, width - 1), width)
    return where(mask != 0, full, 0)


class Trackers:
    """The dirty-tracking rules of one scenario (method, vIOMMU, profile).

    Written with :mod:`checker.lang.ops` (numpy columns and z3 terms alike).  Which tracker
    exists is fixed by the scenario, so the Python ``if``s below read only the
    configuration, never a variable.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.P = cfg.pages

    # ------------------------------------------------------------------ vIOMMU
    def map_key(self, dev: int, iova: int) -> str:
        return self.cfg.key("iova_map", dev * self.P + iova)

    def page_of(self, x: State, dev: int, iova: int) -> Term:
        """The page IOVA ``iova`` of ``dev`` maps to now, or -1 when unmapped (without a
        vIOMMU the IOVA is the guest-physical address: the page of the same number)."""
        if not self.cfg.viommu:
            return iova
        return x[self.map_key(dev, iova)] - 1

    def _page_bit(self, page: Term) -> Term:
        """The bit of ``page`` in a page set (none for -1, unmapped)."""
        return where(page >= 0, pow2(maximum(page, 0), self.P), 0)

    def mapped_iovas(self, x: State, dev: int) -> Term:
        """IOVA bit set of ``dev`` that is mapped now (all of them without a vIOMMU)."""
        if not self.cfg.viommu:
            return self.cfg.all_pages
        out: Term = 0
        for i in self.cfg.dma_iovas[dev]:
            out = out | where(self.page_of(x, dev, i) >= 0, 1 << i, 0)
        return out

    def mapped_pages(self, x: State) -> Term:
        """Pages some IOMMU mapping points at now: all guest RAM without a vIOMMU (the
        container maps it whole), the current vIOMMU mappings' pages with one."""
        if not self.cfg.viommu:
            return self.cfg.all_pages
        out: Term = 0
        for d in range(self.cfg.devices):
            for i in self.cfg.dma_iovas[d]:
                out = out | self._page_bit(self.page_of(x, d, i))
        return out

    def translate(self, x: State, dev: int, iovas: Term) -> Term:
        """Pages for an IOVA bit set of ``dev``, through the mappings of the moment."""
        if not self.cfg.viommu:
            return iovas
        out: Term = 0
        for i in self.cfg.dma_iovas[dev]:
            p = self.page_of(x, dev, i)
            out = out | where(bit(iovas, i) & (p >= 0), pow2(maximum(p, 0), self.P), 0)
        return out

    # ------------------------------------------------------------------ reports
    def vfio_report(self, x: State) -> Term:
        """The pages VFIO's part of a log_sync would report in this state (not clearing).

        Also the "will be reported at the next sync" half of DirtyTrackingSound.
        """
        cfg = self.cfg
        started = x["dirty_log"] == 1
        out: Term = zeros_like(x["dirty_log"])
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            # DMA_LOGGING_REPORT on every logging device, OR'ed into one bitmap
            # (vfio_container_devices_query_dirty_bitmap).
            for d in range(cfg.devices):
                if cfg.logs[d]:
                    out = out | self.translate(x, d, x[self.cfg.key("dma_log", d)])
        elif cfg.method is Method.TYPE1:
            mapped = self.mapped_pages(x)
            rep = mapped & cfg.pinned_mask if cfg.decision.type1_pinned_scope else mapped
            out = out | where(started, rep, 0)
        elif cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                out = out | self.translate(x, s, x[self.cfg.key("iommu_dirty", s)])
        elif cfg.all_dirty_reports:  # Method.ALL_DIRTY up to 9.2
            out = out | where(started, self.mapped_pages(x), 0)
        return out & where(started, cfg.all_pages, 0)

    def sync_needed(self, x: State) -> Term:
        """vfio_log_sync_needed() (master; vfio_devices_all_dirty_tracking() before 10.0):
        tracking on, and no device with x-pre-copy-dirty-page-tracking=off in one of the
        profile's suppressing states (QEMU's cached device_state)."""
        ok = x["dirty_log"] == 1
        states = self.cfg.sync_suppressing_states
        for d in range(self.cfg.devices):
            if self.cfg.precopy_opt_out[d]:
                ok = ok & ~lookup_bool(states, x[self.cfg.key("qstate", d)])
        return ok

    def query_can_fail(self) -> bool:
        """A sync's VFIO part is an ioctl that can fail (all-dirty issues none)."""
        return self.cfg.method is not Method.ALL_DIRTY

    def sync(self, t: Next) -> None:
        """migration_bitmap_sync(): KVM's log, then VFIO's log_sync (when needed)."""
        cfg = self.cfg
        bitmap = t["bitmap"] | t["kvm_dirty"]
        t["kvm_dirty"] = 0
        need = self.sync_needed(t)
        rep = self.vfio_report(t)
        bitmap = bitmap | where(need, rep, 0)
        t["bitmap"] = bitmap
        # What the queries read and cleared: the currently mapped IOVAs.
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            for d in range(cfg.devices):
                if cfg.logs[d]:
                    key = self.cfg.key("dma_log", d)
                    t[key] = where(need, t[key] & ~self.mapped_iovas(t, d), t[key])
        elif cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                key = self.cfg.key("iommu_dirty", s)
                t[key] = where(need, t[key] & ~self.mapped_iovas(t, s), t[key])

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
        if cfg.log_start_can_fail:
            t["dma_logging"] = 1
        if cfg.hwpt_flag:
            t["hwpt_tracking"] = 1
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
        self.start_rollback(t)
        if cfg.method is Method.IOMMUFD_HW:
            for s in range(cfg.spaces):
                t[self.cfg.key("iommu_dirty", s)] = 0

    def start_rollback(self, t: Next) -> None:
        """What a failed log_global_start leaves: no device logging (the DMA logging
        rollback) and no hwpt tracking (iommufd_set_dirty_page_tracking's rollback,
        :mod:`model.migration.tracking_faults`); log_global_stop ends the same way."""
        self.dma_logging_stop(t)
        if self.cfg.hwpt_flag:
            t["hwpt_tracking"] = 0

    def dma_logging_stop(self, t: Next) -> None:
        """vfio_devices_dma_logging_stop(): DMA_LOGGING_STOP on every device that logs,
        freeing its log (log_global_stop, and the rollback of a failed start)."""
        cfg = self.cfg
        if cfg.log_start_can_fail:
            t["dma_logging"] = 0
        if cfg.method is Method.DEVICE_DMA_LOGGING:
            for d in range(cfg.devices):
                t[self.cfg.key("dma_log", d)] = 0
                if cfg.viommu:
                    t[self.cfg.key("log_range", d)] = 0

    # ------------------------------------------------------------------ writes
    def dma_write(self, x: State, dev: int, iova: int) -> Cols:
        """New values of the variables a DMA write of ``dev`` to ``iova`` changes."""
        cfg = self.cfg
        on = x["dirty_log"] == 1
        page = self.page_of(x, dev, iova)
        out: Cols = {"stale": x["stale"] | pow2(maximum(page, 0), self.P)}
        if cfg.logs[dev]:
            key = self.cfg.key("dma_log", dev)
            logged = on
            if cfg.log_start_can_fail:
                logged = logged & (x["dma_logging"] == 1)
            if cfg.viommu:
                logged = logged & bit(x[self.cfg.key("log_range", dev)], iova)
            out[key] = x[key] | where(logged, 1 << iova, 0)
        if cfg.method is Method.IOMMUFD_HW and cfg.hwpt_dirty[dev]:
            # Only a dirty-capable hwpt records the write; a device on a plain hwpt of the
            # same container is written down nowhere (docs/sources.md#qemu-iommufd-hwpt).
            key = self.cfg.key("iommu_dirty", cfg.space_of(dev))
            tracked = on
            if cfg.hwpt_flag:
                tracked = tracked & (x["hwpt_tracking"] == 1)
            out[key] = x[key] | where(tracked, 1 << iova, 0)
        return out

    def changes(self, x: State, new: Cols) -> Term:
        """Whether assigning ``new`` would change any variable of ``x``."""
        return any_of(val != x[key] for key, val in new.items())

    def unmap(self, x: State, dev: int, iova: int, query: bool) -> Cols:
        """A vIOMMU unmap of ``iova`` of ``dev``: the dirty query QEMU makes first (or,
        for device logs and all-dirty, right after, for the translated range) when
        ``query``, then the mapping (and its IOPTE dirty bit) disappears."""
        cfg = self.cfg
        on = x["dirty_log"] == 1
        pbit = self._page_bit(self.page_of(x, dev, iova))
        out: Cols = {self.map_key(dev, iova): 0}
        rep: Term = 0
        if cfg.method is Method.DEVICE_DMA_LOGGING and cfg.logs[dev]:
            key = self.cfg.key("dma_log", dev)
            if query:
                rep = where(bit(x[key], iova), pbit, 0)
                out[key] = where(on, x[key] & ~(1 << iova), x[key])
        elif cfg.method is Method.TYPE1:
            if query:
                scope = cfg.pinned_mask if cfg.decision.type1_pinned_scope else cfg.all_pages
                rep = pbit & scope
        elif cfg.method is Method.IOMMUFD_HW:
            key = self.cfg.key("iommu_dirty", cfg.space_of(dev))
            if query:
                rep = where(bit(x[key], iova), pbit, 0)
            out[key] = x[key] & ~(1 << iova)
        elif cfg.method is Method.ALL_DIRTY and query and cfg.all_dirty_reports:
            rep = pbit
        out["bitmap"] = x["bitmap"] | where(on, rep, 0)
        return out
