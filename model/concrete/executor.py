"""A concrete migration of a realistic guest on numpy bitmaps (docs/design.md#concrete-executor).

The abstract model (``model/migration/spec.py``) checks the protocol on a few pages; this
executor runs the same protocol on a whole guest (a page per bit, 2^28 pages for 1 TiB)
to show what each dirty-tracking method costs (rounds, bytes, downtime, convergence) and
to check, with per-page version counters, that every page arrives.

Two ways to drive it:

* step by step, by external actions, for a conformance test against the abstract model:
  :meth:`Executor.setup` (or its parts ``mark_all_dirty``, ``log_global_start``,
  ``log_sync``), :meth:`~Executor.cpu_write`, :meth:`~Executor.dma_write`,
  :meth:`~Executor.send`, :meth:`~Executor.send_next`, :meth:`~Executor.stop_vcpus`,
  :meth:`~Executor.stop_devices` (all or some devices), :meth:`~Executor.start_devices`
  (a device reset after a failed state change runs again), :meth:`~Executor.send_all`,
  :meth:`~Executor.complete`, :meth:`~Executor.cancel` (then ``setup`` again for a new
  attempt), and the observers ``migration`` (bitmap), ``kvm_log``,
  :meth:`~Executor.device_dma_log`, :meth:`~Executor.iommu_dirty_bits`,
  :meth:`~Executor.stale_pages`, :meth:`~Executor.pending_bytes`,
  :meth:`~Executor.vfio_log_sync_needed`.  An action out
  of order (a vCPU write after ``stop_vcpus``, a DMA write from a stopped device, a send
  outside a migration) raises :class:`ExecutorError`;
* as a whole timed run, :meth:`Executor.run`, which drives the same actions from a
  :class:`~model.concrete.workload.Workload` in time steps and reports per round and in total.

What is modelled, with sources (see docs/sources.md):

* Setup follows ``ram_init_bitmaps()`` (``migration/ram.c``): every page set in the
  migration bitmap, ``memory_global_dirty_log_start()`` (→ VFIO ``log_global_start``),
  then a first dirty sync.
* A dirty sync (``migration_bitmap_sync()``) folds KVM's dirty log (vCPU writes; always,
  whatever the VFIO method) and then the VFIO container's report into the migration
  bitmap, as ``vfio_listener_log_sync()`` does, skipped when ``vfio_log_sync_needed()``
  says no (a device with ``x-pre-copy-dirty-page-tracking=off`` still running).
* How each method reports (docs/sources.md#qemu-tracking-decision, #kernel-type1-dirty,
  #kernel-iommufd-dirty, #kernel-dma-logging): DMA logging reports and clears what each
  logging device wrote (``VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT``); type1 reports every
  mapped page unless every IOMMU-backed group is in pinned scope, then the pinned pages
  (perpetually) plus pages written through ``vfio_dma_rw()`` (``update_user_bitmap()``,
  ``vfio_dma_populate_bitmap()`` in ``drivers/vfio/vfio_iommu_type1.c``); iommufd
  hardware tracking reports and clears the pages written through dirty-capable page
  tables (``IOMMU_HWPT_GET_DIRTY_BITMAP``); with no usable method QEMU marks every page
  dirty at every sync (``vfio_container_query_dirty_bitmap()``).
* Pages are sent in bitmap order from where the last send stopped, wrapping
  (``migration_bitmap_find_dirty()``); a sent page carries its current contents.
* Convergence as ``migration_iteration_run()`` (``migration/migration.c``): when the
  pending estimate (the migration bitmap) falls below ``threshold = bandwidth ×
  downtime-limit``, do the exact pass (a dirty sync, plus every device's
  ``stop_copy_length`` from ``VFIO_DEVICE_FEATURE_MIG_DATA_SIZE``); switch over when
  that is ``<= threshold``.
* Switchover (``migration_completion_precopy()``): vCPUs and devices stop (the guest and
  the devices keep writing for ``stop_latency`` after the decision: ``vm_stop`` and the
  device-state ioctls take time), the last dirty sync (``ram_save_complete()``), the rest
  of RAM and the device state are sent; downtime = those bytes / bandwidth.

Not modelled here: vIOMMU mappings (and the mutations about them), VFIO pre-copy device
data and switchover-ack, QEMU's measured bandwidth (the configured bandwidth is used, as
with ``avail-switchover-bandwidth``), the time a dirty sync itself takes, auto-converge,
multifd, postcopy; retries only step by step.

"none" (no VFIO report at all) is not one of QEMU's intended methods: it is what the
code of QEMU >= 10.0 does, as far as I read it, when neither the devices nor the
container can track (``enable-migration=on``): ``vfio_container_set_dirty_page_tracking()``
returns early without setting ``dirty_pages_started``, so
``vfio_container_dirty_tracking_is_started()`` stays false, ``vfio_log_sync_needed()``
says no and the all-dirty fallback in ``vfio_container_query_dirty_bitmap()`` is never
reached from log_sync (d77e85dbd7, 0ae05e087f) **[inference from code, not run]**.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from model.concrete.bitmap import Bitmap
from model.concrete.results import MigrationResult, RoundStats, RunStatus
from model.concrete.workload import Workload, writes_in
from model.contract import PAGE_SIZE, Mutation

# Reporting semantics per method.  The first four are the values of QEMU's choice
# (``model.decision.tracking``); "none" reports nothing from VFIO at all.
DEVICE_DMA_LOGGING = "device-dma-logging"
TYPE1 = "type1"
IOMMUFD_HW = "iommufd-hw"
ALL_DIRTY = "all-dirty"
NO_VFIO_REPORT = "none"
METHODS = (DEVICE_DMA_LOGGING, TYPE1, IOMMUFD_HW, ALL_DIRTY, NO_VFIO_REPORT)

# The mutations (model.contract) the executor can express; the vIOMMU ones, P2P ordering
# and cancel recovery belong to the abstract model only.
# The ones a timed :meth:`Executor.run` exercises (it makes a single attempt).
RUN_MUTATIONS: tuple[Mutation, ...] = (
    Mutation.NO_FINAL_SYNC,
    Mutation.SYNC_BEFORE_DEVICES_STOP,
    Mutation.TYPE1_IGNORES_UNPINNED_GROUPS,
    Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER,
)
# retry_keeps_cleared_bits needs a cancelled attempt: step-by-step driving only.
MUTATIONS: tuple[Mutation, ...] = (*RUN_MUTATIONS, Mutation.RETRY_KEEPS_CLEARED_BITS)

# QEMU's defaults: downtime-limit DEFAULT_MIGRATE_SET_DOWNTIME = 300 ms; the migration
# thread re-evaluates bandwidth and the threshold every BUFFER_DELAY = 100 ms.
DEFAULT_DOWNTIME_LIMIT = 0.3
DEFAULT_STEP = 0.1

_LOST_EXAMPLES = 16
_SEND_CHUNK_BITS = 1 << 22


class ExecutorError(ValueError):
    """A configuration the executor cannot run, or an action out of order (one line)."""


_VERSION_DTYPES = ("uint16", "uint32", "uint64")


@dataclass(frozen=True)
class RunConfig:
    """Everything one concrete run depends on (no dependency on the spec-file loader;
    :mod:`model.concrete.plan` derives it from a scenario)."""

    method: str
    guest_pages: int
    workload: Workload = field(default_factory=Workload)
    bandwidth: float = 10e9 / 8  # bytes per second
    downtime_limit: float = DEFAULT_DOWNTIME_LIMIT  # seconds
    max_rounds: int = 30  # pre-copy dirty syncs after setup before giving up
    step: float = DEFAULT_STEP  # seconds of simulated time per iteration
    stop_latency: float = 0.005  # seconds the guest/devices run on after the decision
    type1_pinned_scope: bool = False  # type1: every IOMMU-backed group pins pages
    mutations: frozenset[str] = frozenset()
    seed: int = 0
    version_dtype: str = "uint32"

    def validate(self) -> None:
        """Raise :class:`ExecutorError` (one line) for a configuration the executor cannot run."""
        problems = chain(self._run_problems(), self._workload_problems(), self._method_problems())
        first = next(problems, None)
        if first is not None:
            raise ExecutorError(first)

    def _run_problems(self) -> Iterator[str]:
        """The link, the timing and the bookkeeping."""
        checks = (
            (self.method in METHODS, f"method {self.method!r}: allowed {', '.join(METHODS)}"),
            (self.guest_pages >= 1, "guest size must be at least one page"),
            (self.bandwidth > 0, "bandwidth must be positive"),
            (self.downtime_limit > 0, "downtime limit must be positive"),
            (self.step > 0, "time step must be positive"),
            (self.stop_latency >= 0, "stop latency cannot be negative"),
            (self.max_rounds >= 1, "max rounds must be at least 1"),
        )
        yield from (message for ok, message in checks if not ok)
        unknown = sorted(set(self.mutations) - set(MUTATIONS))
        if unknown:
            yield (f"mutation(s) {', '.join(unknown)} not modelled by the executor; "
                   f"allowed {', '.join(MUTATIONS)}")
        if self.version_dtype not in _VERSION_DTYPES:
            yield f"version_dtype: allowed {', '.join(_VERSION_DTYPES)}"

    def _workload_problems(self) -> Iterator[str]:
        """Rates and page sets: non-negative, non-empty where written, inside the guest."""
        wl = self.workload
        if wl.cpu_dirty_rate < 0 or any(d.dma_rate < 0 for d in wl.devices):
            yield "dirty rates cannot be negative"
        if wl.cpu_dirty_rate > 0 and not wl.hot_set:
            yield "a CPU dirty rate needs a non-empty hot set"
        for d in wl.devices:
            for what, ps in (("pages", d.pages), ("pins", d.pins)):
                if ps.max_page() >= self.guest_pages:
                    yield f"device {d.name}: {what} beyond the guest's last page"
            if d.dma_rate > 0 and not d.pages:
                yield f"device {d.name}: a DMA rate needs a non-empty page set"
        if wl.hot_set.max_page() >= self.guest_pages:
            yield "CPU hot set beyond the guest's last page"

    def _method_problems(self) -> Iterator[str]:
        # QEMU only uses DMA logging when every device of the container supports it
        # (vfio_container_devices_dirty_tracking_is_supported()).
        if (self.method == DEVICE_DMA_LOGGING
                and not all(d.dma_logging for d in self.workload.devices)
                and Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER not in self.mutations):
            yield ("device-dma-logging needs every device to support DMA logging "
                   f"(or the mutation {Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER})")


class Executor:
    """Source and destination of one migration, on packed bitmaps and version counters.

    State:
      ``migration``    QEMU's migration bitmap (pages still to send).
      ``kvm_log``      KVM's dirty log (vCPU writes since the last sync).
      per method:      each logging device's DMA log, the iommufd dirty bits, or type1's
                       bitmap (pinned pages + ``vfio_dma_rw()`` writes).
      ``src_version``  per page, bumped by every write (a page's contents).
      ``dst_version``  per page, the version the destination received.
    A page is *stale* when its two versions differ; after :meth:`complete` a stale page
    is a lost page.
    """

    def __init__(self, config: RunConfig) -> None:
        config.validate()
        self.config = config
        n = config.guest_pages
        self.n = n
        devices = list(config.workload.devices)
        self.devices = devices
        self.migration = Bitmap(n)
        self.kvm_log = Bitmap(n)
        method = config.method
        self._dev_logs: list[Bitmap | None] = [
            Bitmap(n) if method == DEVICE_DMA_LOGGING and d.dma_logging else None for d in devices
        ]
        self._iommu_dirty = Bitmap(n) if method == IOMMUFD_HW else None
        self._type1_dirty = Bitmap(n) if method == TYPE1 else None
        self._type1_pins: Bitmap | None = None
        if method == TYPE1:
            pins = Bitmap(n)
            for d in devices:
                for a, b in d.pins.ranges:
                    pins.set_range(a, b)
            self._type1_pins = pins
        dtype = np.dtype(config.version_dtype)
        # Every page has contents (version 1) the destination does not have yet (0).
        self.src_version = np.ones(n, dtype=dtype)
        self.dst_version = np.zeros(n, dtype=dtype)
        self.tracking = False
        self.vcpus_running = True
        self.device_running = [True] * len(devices)
        self.completed = False
        self.attempts = 0
        self.dirty = 0  # population of ``migration``, kept incrementally
        self.cursor = 0
        self.pages_sent = 0
        self.syncs = 0

    # ------------------------------------------------------------------ setup
    @property
    def devices_running(self) -> bool:
        """Some device may still DMA."""
        return any(self.device_running)

    def mark_all_dirty(self) -> None:
        """``ram_list_init_bitmaps()``: every page must be sent at least once."""
        self._require(not self.completed, "mark_all_dirty after completion")
        self.migration.set_all()
        self.dirty = self.n

    def log_global_start(self) -> None:
        """``memory_global_dirty_log_start()``: KVM dirty logging and the VFIO method start.

        DMA logging starts empty (``VFIO_DEVICE_FEATURE_DMA_LOGGING_START``); type1's
        START pre-populates its bitmaps with the pinned pages (kept apart here, they are
        reported at every sync); iommufd clears stale dirty bits on enable
        (``iopt_set_dirty_tracking()``).
        """
        self._require(not self.tracking and not self.completed, "log_global_start twice")
        self.kvm_log.clear_all()
        for log in self._dev_logs:
            if log is not None:
                log.clear_all()
        if self._iommu_dirty is not None:
            self._iommu_dirty.clear_all()
        if self._type1_dirty is not None:
            self._type1_dirty.clear_all()
        self.tracking = True

    def setup(self, *, first_sync: bool = True) -> int:
        """``ram_init_bitmaps()``: all pages dirty, dirty logging on, first sync.

        A new attempt after :meth:`cancel` marks every page dirty again, except under the
        mutation ``retry_keeps_cleared_bits``: then the pages the failed attempt sent stay
        clear although the new destination has none of them.

        ``first_sync=False`` leaves the first sync out, as the abstract model's
        ``MigrateStart``/``MigrateRetry`` step does (``model.concrete.conformance``).  Without
        ``retry_keeps_cleared_bits`` that sync changes nothing: every page is already
        dirty and every tracker was cleared a moment before.  With it, a type1 (unpinned)
        or all-dirty report at that sync marks every page again (where QEMU queries VFIO
        during SETUP at all: 8.0 did, 8.1-9.2 did not (ff180c6bd7), 10.0+ does again (0ae05e087f);
        docs/sources.md#qemu-log-sync).
        """
        if not (self.attempts and Mutation.RETRY_KEEPS_CLEARED_BITS in self.config.mutations):
            self.mark_all_dirty()
        self.attempts += 1
        self.log_global_start()
        return self.log_sync() if first_sync else 0

    def cancel(self) -> None:
        """The attempt fails or is cancelled: dirty logging stops
        (``memory_global_dirty_log_stop``), the source VM and its devices run again, and
        the destination (a fresh QEMU for the next attempt) holds nothing."""
        self._require(self.tracking, "cancel outside a migration")
        self.tracking = False
        self.vcpus_running = True
        self.device_running = [True] * len(self.devices)
        self.dst_version.fill(0)

    # ------------------------------------------------------------------ guest and devices
    def cpu_write(self, pages: Any) -> None:
        """vCPUs write ``pages``; KVM's dirty log records them while logging is on."""
        self._require(self.vcpus_running, "cpu_write while the vCPUs are stopped")
        idx = self._pages(pages)
        if idx.size == 0:
            return
        self.src_version[idx] += 1  # one bump per distinct page: its contents changed
        if self.tracking:
            self.kvm_log.set_indices(idx)

    def dma_write(self, dev: int, pages: Any) -> None:
        """Device ``dev`` DMA-writes ``pages`` (no vIOMMU: IOVA = guest page).

        Recorded by the active method only: the device's DMA log if it logs; the iommufd
        dirty bits if its page table tracks them; type1 only when the access goes through
        the kernel (``vfio_dma_rw()``) — a physical device's DMA bypasses type1.
        """
        d = self.devices[dev]
        self._require(self.device_running[dev], f"dma_write while {d.name} is stopped")
        idx = self._pages(pages)
        if idx.size == 0:
            return
        self.src_version[idx] += 1
        if not self.tracking:
            return
        log = self._dev_logs[dev]
        if log is not None:
            log.set_indices(idx)
        if self._iommu_dirty is not None and d.iommu_dirty:
            self._iommu_dirty.set_indices(idx)
        if self._type1_dirty is not None and d.kernel_access:
            self._type1_dirty.set_indices(idx)

    # ------------------------------------------------------------------ QEMU: sync and send
    def vfio_log_sync_needed(self) -> bool:
        """``vfio_log_sync_needed()``: tracking on, and no device that opted out of pre-copy
        tracking (``x-pre-copy-dirty-page-tracking=off``) is still running."""
        if not self.tracking:
            return False
        return not any(
            running and not d.precopy_dirty_tracking
            for d, running in zip(self.devices, self.device_running, strict=True)
        )

    def log_sync(self) -> int:
        """One dirty sync; returns the number of pages it newly marked dirty."""
        self._require(self.tracking, "log_sync before log_global_start")
        before = self.dirty
        # KVM_GET_DIRTY_LOG (+ clear): vCPU writes, for every tracking method.
        total = self.migration.merge_from(self.kvm_log, clear_source=True)
        if self.vfio_log_sync_needed():
            total = self._vfio_report(total)
        self.dirty = total
        self.syncs += 1
        return total - before

    def _vfio_report(self, total: int) -> int:
        method = self.config.method
        mig = self.migration
        if method == DEVICE_DMA_LOGGING:
            # DMA_LOGGING_REPORT on each device into one bitmap; read-and-clear.
            for log in self._dev_logs:
                if log is not None:
                    total = mig.merge_from(log, clear_source=True)
        elif method == TYPE1:
            assert self._type1_dirty is not None and self._type1_pins is not None
            pinned_only = (
                self.config.type1_pinned_scope
                or Mutation.TYPE1_IGNORES_UNPINNED_GROUPS in self.config.mutations
            )
            if pinned_only:
                # Pinned pages stay dirty (re-populated after every report); vfio_dma_rw
                # writes are reported once.
                mig.merge_from(self._type1_pins)
                total = mig.merge_from(self._type1_dirty, clear_source=True)
            else:
                # A group outside pinned scope: every mapped page (all guest RAM here).
                mig.set_all()
                self._type1_dirty.clear_all()
                total = self.n
        elif method == IOMMUFD_HW:
            assert self._iommu_dirty is not None
            total = mig.merge_from(self._iommu_dirty, clear_source=True)
        elif method == ALL_DIRTY:
            mig.set_all()
            total = self.n
        return total

    def send(self, pages: Any) -> np.ndarray:
        """Send those of ``pages`` that are dirty in the migration bitmap (QEMU sends only
        dirty pages, clearing the bit first); returns the pages sent."""
        self._require(self.tracking, "send outside a migration")
        idx = np.unique(self._pages(pages))
        sent = idx[self.migration.test_indices(idx)] if idx.size else idx
        if sent.size:
            self.migration.clear_indices(sent)
            self._deliver(sent)
        return sent

    def send_next(self, limit: int) -> int:
        """Send up to ``limit`` dirty pages in bitmap order from the cursor, wrapping
        around once; returns how many were sent."""
        self._require(self.tracking, "send outside a migration")
        sent = 0
        for start in (self.cursor, 0):
            if sent >= limit or self.dirty == 0:
                break
            idx = self.migration.find_set(start, limit - sent)
            if idx.size == 0:
                continue
            last = int(idx[-1]) + 1
            self.migration.clear_range(start, last)  # exactly ``idx`` was set there
            self._deliver(idx)
            sent += idx.size
            self.cursor = last % self.n
        return sent

    def send_all(self) -> int:
        """Send every dirty page (stop-copy); returns how many."""
        self._require(self.tracking, "send outside a migration")
        sent = 0
        for idx in self.migration.iter_set_bits(chunk_bits=_SEND_CHUNK_BITS):
            self._deliver(idx)
            sent += idx.size
        self.migration.clear_all()
        self.dirty = 0
        return sent

    def _deliver(self, idx: np.ndarray) -> None:
        """The destination receives the current contents of the pages ``idx`` (ascending)."""
        if idx.size == 0:
            return
        a, b = int(idx[0]), int(idx[-1]) + 1
        if b - a == idx.size:  # a dense run: copy a slice instead of gathering
            self.dst_version[a:b] = self.src_version[a:b]
        else:
            self.dst_version[idx] = self.src_version[idx]
        self.dirty -= idx.size
        self.pages_sent += idx.size

    # ------------------------------------------------------------------ switchover
    def stop_vcpus(self) -> None:
        """``vm_stop(RUN_STATE_FINISH_MIGRATE)``: no vCPU writes from now on."""
        self.vcpus_running = False

    def stop_devices(self, devs: Any = None) -> None:
        """The VM-state handlers: P2P devices to a quiescent state, then every device to
        STOP_COPY/STOP (``vfio_vmstate_change_prepare()``, ``vfio_vmstate_change()``):
        no DMA from the stopped devices (``devs``: indices; default all) from now on."""
        for i in range(len(self.devices)) if devs is None else devs:
            self.device_running[i] = False

    def start_devices(self, devs: Any = None) -> None:
        """Devices ``devs`` (indices; default all) may DMA again: a device QEMU reset after a
        failed state change is RUNNING (``VFIO_DEVICE_RESET`` in
        ``vfio_migration_set_state()``), and a failed migration's recovery restarts them
        (``vfio_vmstate_change(running=true)``, which :meth:`cancel` does for all)."""
        for i in range(len(self.devices)) if devs is None else devs:
            self.device_running[i] = True

    def complete(self) -> int:
        """End of migration: dirty logging stops and the destination VM starts.  Returns
        the number of lost pages (stale at the destination)."""
        self._require(
            not self.vcpus_running and not self.devices_running,
            "complete while the guest or its devices still run",
        )
        self.tracking = False  # log_global_stop
        self.completed = True
        return self.count_stale()

    # ------------------------------------------------------------------ observers
    def device_dma_log(self, dev: int) -> Bitmap | None:
        """A copy of device ``dev``'s DMA log (what its next
        ``VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT`` returns), or None when it does not log."""
        log = self._dev_logs[dev]
        return None if log is None else log.copy()

    def iommu_dirty_bits(self) -> Bitmap | None:
        """A copy of the iommufd hwpt dirty bits (method iommufd-hw), else None."""
        return None if self._iommu_dirty is None else self._iommu_dirty.copy()

    def pending_bytes(self) -> int:
        """QEMU's exact pending: RAM in the migration bitmap + the devices' stop-copy data."""
        return self.dirty * PAGE_SIZE + self.stop_copy_bytes

    @property
    def stop_copy_bytes(self) -> int:
        return sum(d.stop_copy_bytes for d in self.devices)

    def iter_stale(self, chunk: int = 1 << 24) -> Iterator[np.ndarray]:
        """Pages whose destination copy differs from the source, ascending, in chunks."""
        for a in range(0, self.n, chunk):
            diff = np.flatnonzero(self.src_version[a : a + chunk] != self.dst_version[a : a + chunk])
            if diff.size:
                yield diff.astype(np.int64) + a

    def count_stale(self) -> int:
        return sum(int(x.size) for x in self.iter_stale())

    def stale_pages(self, limit: int | None = None) -> np.ndarray:
        out: list[np.ndarray] = []
        got = 0
        for x in self.iter_stale():
            out.append(x)
            got += x.size
            if limit is not None and got >= limit:
                break
        idx = np.concatenate(out) if out else np.empty(0, dtype=np.int64)
        return idx if limit is None else idx[:limit]

    # ------------------------------------------------------------------ the timed run
    def run(self, progress: Callable[[RunStatus], None] | None = None) -> MigrationResult:
        """A whole migration driven by the configured workload (see the module doc)."""
        self._require(not self.tracking and not self.completed, "run on a used executor")
        c = self.config
        bw = c.bandwidth
        threshold = bw * c.downtime_limit
        budget = max(1, int(bw * c.step / PAGE_SIZE))
        load = WorkloadWriter(self, np.random.default_rng(c.seed))
        t = 0.0
        self.setup()
        rounds = [self._round(0, t, 0, 0, 0)]
        sent_mark = self.pages_sent
        converged = False
        while True:
            # migration_iteration_run(): the estimate is the migration bitmap (VFIO's
            # pre-copy estimate is not modelled); below the threshold, the exact pass
            # syncs and adds the devices' stop-copy size.
            if self.dirty * PAGE_SIZE < threshold:
                newly = self.log_sync()
                rounds.append(
                    self._round(
                        len(rounds), t, self.pages_sent - sent_mark, load.take_written(), newly
                    )
                )
                sent_mark = self.pages_sent
                if self.pending_bytes() <= threshold:
                    converged = True
                    break
                if len(rounds) - 1 >= c.max_rounds:
                    break
            n = self.send_next(budget)
            dt = n * PAGE_SIZE / bw if n else c.step
            load.write(dt)
            t += dt
            if progress is not None:
                progress(
                    RunStatus(len(rounds) - 1, c.max_rounds, t, self.dirty, self.pages_sent, "pre-copy")
                )
        if progress is not None:
            progress(RunStatus(len(rounds) - 1, c.max_rounds, t, self.dirty, self.pages_sent, "switchover"))
        # Switchover.  The guest and its devices run on until vm_stop has stopped them.
        load.write(c.stop_latency)
        self.stop_vcpus()
        if Mutation.SYNC_BEFORE_DEVICES_STOP in c.mutations:
            if Mutation.NO_FINAL_SYNC not in c.mutations:
                self.log_sync()
            load.write(c.stop_latency)  # devices still DMA until their state change
            self.stop_devices()
        else:
            self.stop_devices()
            if Mutation.NO_FINAL_SYNC not in c.mutations:
                self.log_sync()  # ram_save_complete(): the last sync, devices stopped
        final = self.send_all()
        downtime = (final * PAGE_SIZE + self.stop_copy_bytes) / bw
        t += c.stop_latency + downtime
        lost = self.complete()
        examples = tuple(int(p) for p in self.stale_pages(_LOST_EXAMPLES)) if lost else ()
        if progress is not None:
            progress(RunStatus(len(rounds) - 1, c.max_rounds, t, 0, self.pages_sent, "done"))
        return MigrationResult(
            method=c.method,
            guest_pages=self.n,
            rounds=tuple(rounds),
            converged=converged,
            forced_switchover=not converged,
            total_time_s=t,
            downtime_s=downtime,
            pages_sent=self.pages_sent,
            pages_sent_in_downtime=final,
            bytes_sent=self.pages_sent * PAGE_SIZE + self.stop_copy_bytes,
            lost_pages=lost,
            lost_examples=examples,
            mutations=tuple(sorted(c.mutations)),
        )

    def _round(self, number: int, t: float, sent: int, written: int, dirtied: int) -> RoundStats:
        return RoundStats(
            round=number,
            time_s=t,
            pages_sent=sent,
            pages_written=written,
            pages_dirtied=dirtied,
            pages_remaining=self.dirty,
            pending_bytes=self.pending_bytes(),
            expected_downtime_s=self.dirty * PAGE_SIZE / self.config.bandwidth,
        )

    # ------------------------------------------------------------------ internals
    def _pages(self, pages: Any) -> np.ndarray:
        idx = np.asarray(pages, dtype=np.int64).reshape(-1)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.n):
            raise ExecutorError(f"page out of range 0..{self.n - 1}")
        return idx

    @staticmethod
    def _require(ok: bool, what: str) -> None:
        if not ok:
            raise ExecutorError(f"action out of order: {what}")


class WorkloadWriter:
    """Applies the workload's writes for an interval (rates → page writes): the vCPUs'
    while they run, each device's while it runs (also used by cloud-hypervisor's timed run,
    model/cloud_hypervisor/concrete.py)."""

    def __init__(self, ex: Executor, rng: np.random.Generator) -> None:
        self.ex = ex
        self.rng = rng
        wl: Workload = ex.config.workload
        self.wl = wl
        self.cpu_carry = 0.0
        self.dev_carry = [0.0] * len(wl.devices)
        self.written = 0

    def write(self, seconds: float) -> None:
        ex, wl = self.ex, self.wl
        if ex.vcpus_running and wl.cpu_dirty_rate > 0:
            k, self.cpu_carry = writes_in(wl.cpu_dirty_rate, seconds, self.cpu_carry)
            if k:
                ex.cpu_write(wl.hot_set.sample(self.rng, k))
                self.written += k
        for i, d in enumerate(wl.devices):
            if d.dma_rate <= 0 or not ex.device_running[i]:
                continue
            k, self.dev_carry[i] = writes_in(d.dma_rate, seconds, self.dev_carry[i])
            if k:
                ex.dma_write(i, d.pages.sample(self.rng, k))
                self.written += k

    def take_written(self) -> int:
        w, self.written = self.written, 0
        return w
