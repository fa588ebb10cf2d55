"""The guest's vIOMMU: it maps and unmaps IOVAs, and QEMU's notifier follows in the
container, querying the unmapped range's dirty bits where QEMU's decision says so."""

from __future__ import annotations

from collections.abc import Callable

from checker.lang.layout import Next, View
from checker.lang.ops import Term
from model.decision.tracking import Method
from model.migration.config import ModelConfig
from model.migration.dirty import Trackers
from model.migration.phases import migrating


def add_viommu_actions(cfg: ModelConfig, trk: Trackers, guest_runs: Callable[[View], Term],
                       add: Callable[..., None]) -> None:
    """IommuMap / IommuUnmap of every device's IOVAs (and UnmapQueryFails where the unmap's
    dirty query may fail)."""
    queries = cfg.decision.unmap_queries_dirty
    can_fail = (cfg.scenario.migration.query_faults and queries
                and cfg.method is not Method.ALL_DIRTY)
    for d in range(cfg.devices):
        for i in cfg.dma_iovas[d]:
            key = trk.map_key(d, i)
            for p in range(cfg.pages):

                def mguard(s: View, key: str = key) -> Term:
                    return guest_runs(s) & (s[key] == 0)

                def do_map(s: View, t: Next, key: str = key, p: int = p) -> None:
                    # The guest maps IOVA -> page in its vIOMMU; QEMU's notifier maps
                    # it in the container (vfio_iommu_map_notify).
                    t[key] = p + 1

                add("IommuMap", mguard, do_map, dev=cfg.names[d], iova=str(i),
                    page=f"p{p}")

            def uguard(s: View, key: str = key) -> Term:
                return guest_runs(s) & (s[key] != 0)

            def unmap(s: View, t: Next, d: int = d, i: int = i) -> None:
                for k, v in trk.unmap(s, d, i, queries).items():
                    t[k] = v

            add("IommuUnmap", uguard, unmap, dev=cfg.names[d], iova=str(i))

            if can_fail:

                def qguard(s: View, key: str = key) -> Term:
                    return uguard(s, key) & (s.dirty_log == 1) & migrating(s)

                def qfail(s: View, t: Next, d: int = d, i: int = i) -> None:
                    # The dirty query of the unmap fails; the mapping goes anyway and
                    # the error fails the migration (iommufd_cdev_unmap, master).
                    for k, v in trk.unmap(s, d, i, False).items():
                        t[k] = v
                    t.mig_error = 1

                add("UnmapQueryFails", qguard, qfail, dev=cfg.names[d], iova=str(i))
