"""The one mapping from a scenario (and QEMU's decision for it) to an executor run.

Two callers drive the executor: the conformance test steps it next to the abstract model,
one executor page per model page (:func:`stepped_config`); ``vfio-migcheck simulate`` runs
it timed on a guest of realistic size (:func:`timed_config`).  Both go through the same
rules here:

* the method: QEMU's choice (:func:`model.decision.tracking.decide`), except that where
  the profile gates log_sync on "tracking started" (``all_dirty_unreachable``,
  QEMU 10.0+) the all-dirty fallback is never reached, which the executor calls "none"
  (:func:`executor_method`);
* the devices (:func:`device_loads`): the guest is cut into ``[vm].pages`` equal regions,
  abstract page ``p`` being region ``p``.  A device writes into its DMA set: ``dma_set``
  pages split evenly over the regions of its ``dma_pages``, each share at the start of its
  region; it pins the same-sized share of each region in ``pins`` (so ``pins = dma_pages``
  means it pins exactly the buffers it writes).  With one page per region and a DMA set
  of one page this is the model's own pages.  Devices are physical functions: their DMA
  bypasses type1's ``vfio_dma_rw()``; the host's iommufd dirty capability applies to every
  hwpt (as :mod:`model.decision.tracking` assumes);
* type1's pinned scope (:func:`pinned_scope`) and the mutations the executor applies
  (:func:`executor_mutations`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model.concrete.executor import (
    MUTATIONS,
    NO_VFIO_REPORT,
    RUN_MUTATIONS,
    RunConfig,
)
from model.concrete.workload import DeviceLoad, PageSet, Workload
from model.contract import PAGE_SIZE
from model.decision.tracking import (
    Method,
    TrackingDecision,
    decide,
    device_dirty_tracking_enabled,
    groups_pin,
)
from model.scenario import Scenario


@dataclass(frozen=True)
class GuestLoad:
    """The concrete guest of a timed run and what writes into it (sizes in bytes, rates in
    bytes per second, per device for DMA)."""

    guest_bytes: int
    cpu_dirty_rate: float = 0.0  # only when the scenario's [vm].cpu_writes
    hot_set: int = PAGE_SIZE  # the vCPUs write from the start of guest memory
    dma_rate: float = 0.0
    dma_set: int = PAGE_SIZE  # spread over the regions of the device's dma_pages
    stop_copy_bytes: int = 0  # each device's state at stop-copy


def executor_method(scenario: Scenario, decision: TrackingDecision) -> str:
    """The executor's reporting semantics for QEMU's choice in this profile.

    From QEMU 10.0 log_sync waits for "tracking started", which a container without
    dirty-tracking support never is (d77e85dbd7, 0ae05e087f), so the all-dirty fallback
    QEMU chose reports nothing: the executor's method "none".  The abstract model reads the
    same flag (``ModelConfig.all_dirty_reports``).
    """
    if decision.method is Method.ALL_DIRTY and scenario.profile.all_dirty_unreachable:
        return NO_VFIO_REPORT
    return str(decision.method.value)


def pinned_scope(scenario: Scenario) -> bool:
    """type1's pinned scope for the executor: the kernel's rule, every group pins.

    The one rule for both callers, chosen because it keeps the executor independent of
    the two things that would otherwise leak into it:

    * not the mutation ``type1_ignores_unpinned_groups`` (which QEMU's decision counts as
      pinned scope): the executor applies that mutation itself when it has it
      (``RunConfig.mutations``), so a mutation switched on for the model only or for the
      executor only shows up as a disagreement instead of being copied across;
    * not the host backend: the executor reads the scope only for method type1, and a
      type1 run on a non-type1 host only comes from ``simulate --method type1``, which
      asks how these devices would fare on a type1 container; there their groups pin
      exactly as they do (vfio_iommu_type1.c num_non_pinned_groups; iommufd has no pinned
      scope at all, docs/sources.md#kernel-type1-dirty and #qemu-tracking-decision).
    """
    return groups_pin(scenario.devices)


def executor_mutations(scenario: Scenario, *, timed: bool) -> frozenset[str]:
    """The scenario's mutations the executor applies: a timed run makes one attempt, so
    ``retry_keeps_cleared_bits`` (which needs a retry) only acts when stepped."""
    return frozenset(scenario.mutations) & frozenset(RUN_MUTATIONS if timed else MUTATIONS)


def unexercised_mutations(scenario: Scenario) -> list[str]:
    """The scenario's mutations a timed run does not exercise (vIOMMU, P2P ordering,
    retries, cancel: the abstract model's)."""
    return sorted(set(scenario.mutations) - set(RUN_MUTATIONS))


def unexercised_keys(scenario: Scenario) -> list[str]:
    """The spec's keys a timed run does not exercise: it makes one attempt without faults,
    cancel or a user's stop (those paths are the abstract model's)."""
    m = scenario.migration
    keys = [f"[migration].{k}" for k in ("cancel", "device_faults", "query_faults", "log_start_faults",
                                         "hwpt_tracking_faults", "log_stop_faults", "load_faults")
            if getattr(m, k)]
    if m.attempts > 1:
        keys.append("[migration].attempts")
    if scenario.vm.user_pause:
        keys.append("[vm].user_pause")  # a timed run has no user stopping the VM
    if scenario.vm.arch != "x86_64":
        keys.append("[vm].arch")  # nor the destination's section order (config vs. GIC)
    return keys


def _regions(pages: int, abstract: int) -> list[tuple[int, int]]:
    """Abstract page ``p`` -> the ``p``-th of ``abstract`` equal slices of the guest."""
    bounds = [pages * i // abstract for i in range(abstract + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(abstract)]


def _share(abstract_pages: Sequence[int], regions: list[tuple[int, int]], share: int) -> PageSet:
    return PageSet.of((regions[p][0], min(regions[p][1], regions[p][0] + share))
                      for p in abstract_pages)


def device_loads(scenario: Scenario, guest_pages: int, *, dma_set_pages: int = 1,
                 dma_rate: float = 0.0, stop_copy_bytes: int = 0) -> tuple[DeviceLoad, ...]:
    """Each device of the scenario on a guest of ``guest_pages`` (see the module doc)."""
    regions = _regions(guest_pages, scenario.vm.pages)
    out = []
    for dev in scenario.devices:
        share = math.ceil(max(1, dma_set_pages) / max(1, len(dev.dma_pages)))
        pages = _share(dev.dma_pages, regions, share)
        out.append(DeviceLoad(
            name=dev.name,
            dma_rate=dma_rate if pages else 0.0,
            pages=pages,
            dma_logging=device_dirty_tracking_enabled(dev, scenario.profile),
            iommu_dirty=True,  # the host's capability applies to every hwpt
            pins=_share(dev.pins, regions, share),
            kernel_access=False,  # physical functions: their DMA bypasses type1
            stop_copy_bytes=stop_copy_bytes,
            precopy_dirty_tracking=dev.properties.x_pre_copy_dirty_page_tracking,
        ))
    return tuple(out)


def stepped_config(scenario: Scenario, decision: TrackingDecision | None = None, *,
                   mutations: frozenset[str] | None = None) -> RunConfig:
    """The executor mirroring ``scenario`` step by step: one executor page per model page,
    no rates (the caller makes every write).

    ``mutations`` replaces the executor's mutations (to apply one to the executor only);
    the method stays QEMU's choice for the scenario as written (so
    ``device_logging_for_mixed_container`` picks DMA logging there, the executor's copy of
    it only allows that choice).
    """
    decision = decision if decision is not None else decide(scenario)
    return RunConfig(
        method=executor_method(scenario, decision),
        guest_pages=scenario.vm.pages,
        workload=Workload(devices=device_loads(scenario, scenario.vm.pages)),
        type1_pinned_scope=pinned_scope(scenario),
        mutations=(executor_mutations(scenario, timed=False) if mutations is None
                   else frozenset(mutations)),
    )


def timed_config(scenario: Scenario, decision: TrackingDecision, load: GuestLoad, *,
                 method: str | None = None, **run: Any) -> RunConfig:
    """A timed run of ``scenario`` on the guest ``load`` describes, with QEMU's method (or
    ``method``); ``run``: the link and timing fields of :class:`RunConfig` (bandwidth,
    downtime_limit, max_rounds, step, stop_latency, seed).  Not validated here."""
    n = load.guest_bytes // PAGE_SIZE
    # A VM paused before the migration (``[vm].paused``) stays paused throughout: its vCPUs
    # are stopped and every VFIO device is in STOP (vfio_vmstate_change() on the user's
    # stop, docs/sources.md "A VM paused before the migration"), so nothing dirties memory.
    writes = not scenario.vm.paused
    cpu_rate = load.cpu_dirty_rate if scenario.vm.cpu_writes and writes else 0.0
    workload = Workload(
        cpu_dirty_rate=cpu_rate,
        hot_set=PageSet.span(0, min(n, max(1, load.hot_set // PAGE_SIZE))),
        devices=device_loads(scenario, n, dma_set_pages=load.dma_set // PAGE_SIZE,
                             dma_rate=load.dma_rate if writes else 0.0,
                             stop_copy_bytes=load.stop_copy_bytes),
    )
    return RunConfig(
        method=method if method is not None else executor_method(scenario, decision),
        guest_pages=n,
        workload=workload,
        type1_pinned_scope=pinned_scope(scenario),
        mutations=executor_mutations(scenario, timed=True),
        **run,
    )

