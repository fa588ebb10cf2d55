"""The human-readable notes of QEMU's dirty-tracking decision: why this method, what the
type1 scope reports, what a vIOMMU unmap fetches, how the iommufd hwpts came out.

Used by :func:`model.decision.tracking.decide`; each note cites the QEMU source of the rule
it explains.
"""

from __future__ import annotations

from model.contract import Method, Mutation
from model.decision.base import (
    SRC_COMPAT,
    SRC_HWPT,
    SRC_METHOD_ALL_DIRTY,
    SRC_METHOD_DEVICE,
    SRC_METHOD_IOMMUFD,
    SRC_METHOD_TYPE1,
    SRC_TYPE1_SCOPE,
    SRC_UNMAP_IOMMUFD_MASTER,
    SRC_UNMAP_IOMMUFD_OLD,
    SRC_UNMAP_TYPE1,
    Collector,
    groups_pin,
)
from model.scenario import Scenario


def explain_method(scenario: Scenario, method: Method, logging: frozenset[str],
                    out: Collector) -> None:
    names = [d.name for d in scenario.devices]
    lacking = [n for n in names if n not in logging]
    if method is Method.DEVICE_DMA_LOGGING:
        if lacking:
            out.note(f"DMA logging used although {', '.join(lacking)} cannot log (mutation "
                     f"{Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER}): their writes are not "
                     "reported",
                     SRC_METHOD_DEVICE)
        else:
            out.note("every device logs its DMA: device dirty tracking", SRC_METHOD_DEVICE)
        return
    if logging:
        out.note(f"{', '.join(lacking)} cannot use DMA logging, so the whole container "
                 f"falls back; DMA logging of {', '.join(sorted(logging))} is not used",
                 SRC_METHOD_DEVICE)
    if method is Method.TYPE1:
        out.cite(SRC_METHOD_TYPE1)
    elif method is Method.IOMMUFD_HW:
        out.note("iommufd hardware dirty tracking on the container's hwpt", SRC_METHOD_IOMMUFD)
    else:
        if scenario.host.iommu == "iommufd-compat":
            reason = "iommufd's compat container reports no dirty-tracking capability"
            out.cite(SRC_COMPAT)
        elif scenario.profile.iommufd_hw_dirty_tracking:
            reason = "no device's IOMMU has dirty tracking"
        else:
            reason = f"{scenario.profile} does not use iommufd dirty tracking"
        how = ("nothing reports their writes: log_sync waits for tracking to start, which a "
               "container without dirty support never does"
               if scenario.profile.all_dirty_unreachable
               else "every page is marked dirty at every sync")
        out.note(f"no usable dirty tracking ({reason}): {how}", SRC_METHOD_ALL_DIRTY)


def explain_hwpts(scenario: Scenario, hwpts: tuple[bool, ...], out: Collector) -> None:
    """Where the iommufd hwpts of a container differ from the devices' IOMMUs, or mix."""
    if not any(hwpts):
        return
    names = [d.name for d in scenario.devices]
    plain = [n for n, dirty in zip(names, hwpts, strict=True) if not dirty]
    if not plain:
        return
    out.note(f"the container mixes hwpts: {', '.join(plain)} sit on a plain hwpt next to a "
             "dirty-capable one; the container counts as dirty-tracking but its query "
             "reads only the dirty-capable hwpts, so their DMA is reported by nobody unless "
             "every device DMA-logs", SRC_HWPT)


def explain_type1(scenario: Scenario, method: Method, pinned_scope: bool,
                   out: Collector) -> None:
    if method is not Method.TYPE1:
        return
    out.cite(SRC_TYPE1_SCOPE)
    if not pinned_scope:
        unpinned = [d.name for d in scenario.devices if not d.pins]
        out.note(f"type1 reports every mapped page dirty at every query ({', '.join(unpinned)} "
                 "never pins)")
        return
    if (Mutation.TYPE1_IGNORES_UNPINNED_GROUPS in scenario.mutations
            and not groups_pin(scenario.devices)):
        out.note("type1 reports only pinned pages although a group does not pin "
                 f"(mutation {Mutation.TYPE1_IGNORES_UNPINNED_GROUPS})")
    else:
        out.note("every group pins: type1 reports only pinned pages (they stay dirty)")
    for dev in scenario.devices:
        beyond = sorted(set(dev.dma_pages) - set(dev.pins))
        if beyond:
            out.note(f"{dev.name} writes pages {beyond} it does not pin: type1 pinned scope "
                     "does not report them")


def explain_unmap(scenario: Scenario, queries: bool, out: Collector) -> None:
    if Mutation.NO_UNMAP_DIRTY_QUERY in scenario.mutations:
        out.note(f"vIOMMU unmaps drop dirty bits (mutation {Mutation.NO_UNMAP_DIRTY_QUERY})")
    elif scenario.host.iommu == "type1":
        out.cite(SRC_UNMAP_TYPE1)
    elif queries:
        out.cite(SRC_UNMAP_IOMMUFD_MASTER)
    else:
        out.note(f"QEMU {scenario.profile.name}: iommufd vIOMMU unmaps do not fetch dirty "
                 "bits", SRC_UNMAP_IOMMUFD_OLD)
