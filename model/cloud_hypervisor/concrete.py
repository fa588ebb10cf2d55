"""cloud-hypervisor's precopy on a realistic guest: its iteration and downtime rules.

The concrete executor (:mod:`model.concrete.executor`) supplies the guest: packed page
bitmaps, KVM's log and each device's DMA log, per-page version counters that prove every
page arrived.  What differs from QEMU's run is how cloud-hypervisor iterates and when it
switches over (vmm/src/lib.rs and vm-migration/src/context.rs at ae44c2971c83,
docs/sources.md#ch-iterations):

* iteration 0 sends the whole memory (``memory_range_table(Sparse)``, 1ad1de1398); every
  later iteration takes ``vm.dirty_log()`` (KVM's log and every device's DMA_LOGGING_REPORT)
  as its table and sends all of it before the next one: writes during a send wait for the
  next table (``do_memory_iterations()``);
* ``is_precopy_converged()`` runs on each new table before it is sent: converged when the
  table is empty, or when its bytes over the bandwidth measured in the last transfer
  (``MemoryMigrationContext::update_metrics_before_transfer()``) fit the downtime budget
  (default 300 ms, ``downtime_ms``); iteration 0 has no estimate.  The estimate counts
  only memory: the device state (VFIO STOP_COPY data) is left out (the comment in
  ``is_precopy_converged()`` says so);
* after ``timeout_s`` (here: ``max_rounds`` iterations) ``timeout_strategy=cancel`` (the
  default) fails the migration and ``ignore`` switches over anyway;
* then ``vm.pause()`` (vCPUs, then each device to STOP), the final ``vm.dirty_log()`` sent
  with the unsent table, ``vm.snapshot()`` (each device's state read in STOP_COPY) and one
  more dirty log.  The downtime is that memory plus the device state over the link.

Not modelled: several connections, TLS, the cost of ``dirty_log()`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.concrete.executor import DEVICE_DMA_LOGGING, Executor, RunConfig, WorkloadWriter
from model.concrete.plan import GuestLoad, device_loads
from model.concrete.results import MigrationResult, RoundStats, RunStatus
from model.concrete.workload import PageSet, Workload
from model.contract import PAGE_SIZE
from model.scenario import Scenario

DEFAULT_DOWNTIME = 0.3  # VmSendMigrationData::default_downtime_ms: 300 ms
TIMEOUT_STRATEGIES = ("cancel", "ignore")


@dataclass(frozen=True)
class ChRun:
    """One timed cloud-hypervisor precopy and what its rules decided."""

    result: MigrationResult
    cancelled: bool  # the timeout with timeout_strategy=cancel failed the migration
    estimated_downtime_s: float | None  # what is_precopy_converged() compared last
    device_state_bytes: int  # sent in the downtime, not in the estimate


def run_config(scenario: Scenario, load: GuestLoad, **run: object) -> RunConfig:
    """The executor's guest for ``scenario``: DMA logging on every device that has it
    (cloud-hypervisor refuses a precopy with a device without it), KVM's log for vCPUs."""
    n = load.guest_bytes // PAGE_SIZE
    workload = Workload(
        cpu_dirty_rate=load.cpu_dirty_rate if scenario.vm.cpu_writes else 0.0,
        hot_set=PageSet.span(0, min(n, max(1, load.hot_set // PAGE_SIZE))),
        devices=device_loads(scenario, n, dma_set_pages=load.dma_set // PAGE_SIZE,
                             dma_rate=load.dma_rate, stop_copy_bytes=load.stop_copy_bytes),
    )
    return RunConfig(method=DEVICE_DMA_LOGGING, guest_pages=n, workload=workload,
                     **run)  # type: ignore[arg-type]


def run_precopy(config: RunConfig, *, timeout_strategy: str = "cancel",
                progress: Callable[[RunStatus], None] | None = None) -> ChRun:
    """A whole precopy migration by cloud-hypervisor's rules (see the module doc);
    ``config.downtime_limit`` is ``downtime_ms``, ``config.max_rounds`` the iterations the
    timeout allows."""
    ex = Executor(config)
    c = config
    bw = c.bandwidth
    budget = max(1, int(bw * c.step / PAGE_SIZE))
    load = WorkloadWriter(ex, np.random.default_rng(c.seed))
    t = 0.0
    ex.mark_all_dirty()
    ex.log_global_start()  # vm.start_dirty_log(): KVM's log and DMA_LOGGING_START
    rounds: list[RoundStats] = []
    estimate: float | None = None
    converged = cancelled = False
    iteration = 0
    while True:
        table = ex.dirty
        if iteration > 0:
            # bandwidth of the last transfer (the link's, here): bytes / duration
            estimate = table * PAGE_SIZE / bw
            if table == 0 or estimate <= c.downtime_limit:
                converged = True
                break
            if iteration >= c.max_rounds:  # timeout_s reached
                cancelled = timeout_strategy == "cancel"
                break
        sent_before = ex.pages_sent
        while ex.dirty:  # send_memory(table): the whole table, writes go to the logs
            n = ex.send_next(budget)
            dt = n * PAGE_SIZE / bw
            load.write(dt)
            t += dt
            if progress is not None:
                progress(RunStatus(iteration, c.max_rounds, t, ex.dirty, ex.pages_sent, "pre-copy"))
        newly = ex.log_sync()  # the next table: vm.dirty_log()
        rounds.append(RoundStats(round=iteration, time_s=t, pages_sent=ex.pages_sent - sent_before,
                                 pages_written=load.take_written(), pages_dirtied=newly,
                                 pages_remaining=ex.dirty, pending_bytes=ex.dirty * PAGE_SIZE,
                                 expected_downtime_s=ex.dirty * PAGE_SIZE / bw))
        iteration += 1
    device_bytes = ex.stop_copy_bytes
    if cancelled:
        ex.cancel()
        result = _result(ex, rounds, converged=False, t=t, downtime=0.0, final=0, lost=0)
        return ChRun(result, True, estimate, device_bytes)
    # vm.pause(): the guest and devices run on until they stopped
    load.write(c.stop_latency)
    ex.stop_vcpus()
    ex.stop_devices()
    ex.log_sync()  # the final dirty log, sent with the unsent table
    final = ex.send_all()
    ex.log_sync()  # after vm.snapshot()
    final += ex.send_all()
    downtime = (final * PAGE_SIZE + device_bytes) / bw
    t += c.stop_latency + downtime
    lost = ex.complete()
    if progress is not None:
        progress(RunStatus(iteration, c.max_rounds, t, 0, ex.pages_sent, "done"))
    return ChRun(_result(ex, rounds, converged=converged, t=t, downtime=downtime, final=final,
                         lost=lost), False, estimate, device_bytes)


def _result(ex: Executor, rounds: list[RoundStats], *, converged: bool, t: float,
            downtime: float, final: int, lost: int) -> MigrationResult:
    examples = tuple(int(p) for p in ex.stale_pages(16)) if lost else ()
    return MigrationResult(
        method=ex.config.method, guest_pages=ex.n, rounds=tuple(rounds), converged=converged,
        forced_switchover=not converged, total_time_s=t, downtime_s=downtime,
        pages_sent=ex.pages_sent, pages_sent_in_downtime=final,
        bytes_sent=ex.pages_sent * PAGE_SIZE + ex.stop_copy_bytes, lost_pages=lost,
        lost_examples=examples, mutations=(),
    )
