"""model.concrete.executor: the concrete migration on bitmaps (small guests, fast)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.concrete.executor import (
    ALL_DIRTY,
    DEVICE_DMA_LOGGING,
    IOMMUFD_HW,
    METHODS,
    NO_VFIO_REPORT,
    TYPE1,
    Executor,
    ExecutorError,
    RunConfig,
)
from model.concrete.workload import DeviceLoad, PageSet, Workload
from model.contract import PAGE_SIZE

MiB = 1 << 20
GUEST = 64 * MiB // PAGE_SIZE  # 16384 pages
DEV_PAGES = PageSet.span(GUEST // 2, GUEST // 2 + 2048)


def workload(pins: PageSet | None = None, logging: bool = True, iommu_dirty: bool = True) -> Workload:
    return Workload(
        cpu_dirty_rate=8 * MiB,
        hot_set=PageSet.span(0, 1024),
        devices=(
            DeviceLoad("nic0", dma_rate=4 * MiB, pages=DEV_PAGES, dma_logging=logging,
                       iommu_dirty=iommu_dirty, pins=pins if pins is not None else PageSet()),
        ),
    )


def config(method: str = DEVICE_DMA_LOGGING, **kw: object) -> RunConfig:
    base: dict[str, object] = dict(
        method=method,
        guest_pages=GUEST,
        workload=workload(),
        bandwidth=80 * MiB,  # threshold = 24 MiB at 300 ms: a third of the guest
        max_rounds=8,
        step=0.02,
        seed=1,
    )
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- whole runs


def test_dma_logging_converges_where_type1_unpinned_does_not() -> None:
    logging = Executor(config(DEVICE_DMA_LOGGING)).run()
    type1 = Executor(config(TYPE1)).run()
    assert logging.converged and logging.all_arrived
    assert logging.downtime_s <= 0.3
    # type1 without pinned scope reports every mapped page at every sync: RAM pending
    # never falls below the threshold, whatever the workload.
    assert not type1.converged and type1.forced_switchover
    assert type1.precopy_rounds == 8
    assert all(r.pages_remaining == GUEST for r in type1.rounds)
    assert type1.all_arrived  # slow, but sound
    assert type1.bytes_sent > 5 * logging.bytes_sent


@pytest.mark.parametrize("method", [DEVICE_DMA_LOGGING, TYPE1, IOMMUFD_HW, ALL_DIRTY])
def test_no_page_lost_without_mutations(method: str) -> None:
    cfg = config(method)
    if method == TYPE1:  # pinned scope too: the device pins what it writes
        pinned = config(method, workload=workload(pins=DEV_PAGES), type1_pinned_scope=True)
        res = Executor(pinned).run()
        assert res.all_arrived, res.lost_examples
        # the pinned pages are reported at every sync, so they never leave the bitmap
        assert all(r.pages_remaining >= DEV_PAGES.size for r in res.rounds)
    res = Executor(cfg).run()
    assert res.all_arrived, res.lost_examples
    assert res.pages_sent >= GUEST
    assert res.rounds[0].pages_remaining == GUEST  # setup marks everything dirty


def test_run_reports_rounds_and_totals() -> None:
    res = Executor(config(DEVICE_DMA_LOGGING)).run()
    d = res.to_dict()
    assert d["converged"] and d["all_arrived"] and d["precopy_rounds"] == len(d["rounds"]) - 1
    times = [r.time_s for r in res.rounds]
    assert times == sorted(times)
    assert sum(r.pages_sent for r in res.rounds) + res.pages_sent_in_downtime == res.pages_sent
    last = res.rounds[-1]
    assert last.pending_bytes <= 80 * MiB * 0.3  # the switchover condition held
    assert res.pages_sent_in_downtime >= last.pages_remaining
    assert res.downtime_s == pytest.approx(res.pages_sent_in_downtime * PAGE_SIZE / (80 * MiB))
    assert res.total_time_s > last.time_s
    assert last.expected_downtime_s == pytest.approx(last.pages_remaining * PAGE_SIZE / (80 * MiB))


def test_stop_copy_size_counts_towards_the_threshold() -> None:
    small = Executor(config(DEVICE_DMA_LOGGING)).run()
    assert small.converged
    dev = dataclasses.replace(workload().devices[0], stop_copy_bytes=40 * MiB)  # > threshold
    big = Executor(config(DEVICE_DMA_LOGGING, workload=dataclasses.replace(
        workload(), devices=(dev,)))).run()
    assert not big.converged
    assert big.downtime_s >= 40 * MiB / (80 * MiB)
    assert big.bytes_sent == big.pages_sent * PAGE_SIZE + 40 * MiB


def test_lost_pages_named_under_no_final_sync() -> None:
    res = Executor(config(DEVICE_DMA_LOGGING, mutations=frozenset({"no_final_sync"}))).run()
    assert res.lost_pages > 0 and not res.all_arrived
    hot, dev = PageSet.span(0, 1024), DEV_PAGES
    assert res.lost_examples and all(p in hot or p in dev for p in res.lost_examples)
    assert list(res.lost_examples) == sorted(res.lost_examples)


def test_sync_before_devices_stop_loses_only_dma_pages() -> None:
    res = Executor(config(IOMMUFD_HW, mutations=frozenset({"sync_before_devices_stop"}))).run()
    assert res.lost_pages > 0
    assert all(p in DEV_PAGES for p in res.lost_examples)


def test_type1_ignores_unpinned_groups_loses_dma_writes() -> None:
    res = Executor(config(TYPE1, mutations=frozenset({"type1_ignores_unpinned_groups"}))).run()
    assert res.lost_pages > 0
    assert all(p in DEV_PAGES for p in res.lost_examples)


def test_mixed_container_and_non_dirty_capable_hwpt_lose_dma_writes() -> None:
    with pytest.raises(ExecutorError, match="every device to support DMA logging"):
        Executor(config(DEVICE_DMA_LOGGING, workload=workload(logging=False)))
    mixed = config(DEVICE_DMA_LOGGING, workload=workload(logging=False),
                   mutations=frozenset({"device_logging_for_mixed_container"}))
    assert Executor(mixed).run().lost_pages > 0
    plain_hwpt = config(IOMMUFD_HW, workload=workload(iommu_dirty=False))
    assert Executor(plain_hwpt).run().lost_pages > 0
    assert Executor(config(NO_VFIO_REPORT)).run().lost_pages > 0


def test_determinism_with_a_seed() -> None:
    a = Executor(config(DEVICE_DMA_LOGGING)).run().to_dict()
    b = Executor(config(DEVICE_DMA_LOGGING)).run().to_dict()
    c = Executor(config(DEVICE_DMA_LOGGING, seed=2)).run().to_dict()
    assert a == b
    assert a["rounds"] != c["rounds"]


def test_precopy_tracking_off_defers_device_pages_to_the_final_sync() -> None:
    on = Executor(config(DEVICE_DMA_LOGGING)).run()
    dev = dataclasses.replace(workload().devices[0], precopy_dirty_tracking=False)
    wl = dataclasses.replace(workload(), devices=(dev,))
    off = Executor(config(DEVICE_DMA_LOGGING, workload=wl)).run()
    assert off.all_arrived
    # devices' writes are folded in only at the last sync, so more is left for downtime
    assert off.pages_sent_in_downtime > on.pages_sent_in_downtime


@pytest.mark.parametrize(("bad", "message"), [
    (dict(method="bogus"), "method 'bogus': allowed device-dma-logging, type1, iommufd-hw, "
                           "all-dirty, none"),
    (dict(guest_pages=0), "guest size must be at least one page"),
    (dict(bandwidth=0), "bandwidth must be positive"),
    (dict(downtime_limit=0), "downtime limit must be positive"),
    (dict(step=0), "time step must be positive"),
    (dict(stop_latency=-1), "stop latency cannot be negative"),
    (dict(max_rounds=0), "max rounds must be at least 1"),
    (dict(mutations=frozenset({"skip_p2p_prepare"})),
     "mutation(s) skip_p2p_prepare not modelled by the executor; allowed no_final_sync, "
     "sync_before_devices_stop, type1_ignores_unpinned_groups, "
     "device_logging_for_mixed_container, retry_keeps_cleared_bits"),
    (dict(version_dtype="int8"), "version_dtype: allowed uint16, uint32, uint64"),
    (dict(workload=Workload(cpu_dirty_rate=-1.0)), "dirty rates cannot be negative"),
    (dict(workload=Workload(cpu_dirty_rate=1.0)), "a CPU dirty rate needs a non-empty hot set"),
    (dict(workload=Workload(devices=(DeviceLoad("vf0", pages=PageSet.span(0, GUEST + 1)),))),
     "device vf0: pages beyond the guest's last page"),
    (dict(workload=Workload(devices=(DeviceLoad("vf0", pins=PageSet.span(GUEST, GUEST + 1)),))),
     "device vf0: pins beyond the guest's last page"),
    (dict(workload=Workload(devices=(DeviceLoad("vf0", dma_rate=1.0),))),
     "device vf0: a DMA rate needs a non-empty page set"),
    (dict(workload=Workload(hot_set=PageSet.span(0, GUEST + 1))),
     "CPU hot set beyond the guest's last page"),
    (dict(workload=Workload(devices=(DeviceLoad("vf0", dma_logging=False),))),
     "device-dma-logging needs every device to support DMA logging "
     "(or the mutation device_logging_for_mixed_container)"),
])
def test_config_errors_are_one_line(bad: dict[str, Any], message: str) -> None:
    bad.setdefault("method", DEVICE_DMA_LOGGING)
    with pytest.raises(ExecutorError) as err:
        Executor(config(**bad))
    assert str(err.value) == message


# ---------------------------------------------------------------------------- step by step


def small(method: str, n: int = 200, **kw: object) -> Executor:
    devs = (DeviceLoad("d0", pages=PageSet.span(100, 150), pins=PageSet.span(100, 110)),)
    kw.setdefault("workload", Workload(devices=devs))
    return Executor(RunConfig(method=method, guest_pages=n, **kw))  # type: ignore[arg-type]


def test_step_api_send_only_dirty_pages_and_stale_tracking() -> None:
    ex = small(DEVICE_DMA_LOGGING)
    assert ex.stale_pages().size == 200  # nothing sent yet
    ex.setup()
    assert ex.dirty == 200
    assert ex.send([3, 3, 7]).tolist() == [3, 7]
    assert ex.send([3]).size == 0  # no longer dirty: not sent again
    ex.cpu_write([3])
    assert 3 in ex.stale_pages().tolist()
    assert ex.log_sync() == 1  # KVM's log reports page 3
    ex.dma_write(0, [120, 120])
    assert ex.log_sync() == 0  # 120 was still dirty: nothing new
    assert ex.send_next(5) == 5  # pages 0..4 (3 is dirty again)
    assert ex.cursor == 5
    assert ex.send_next(3) == 3  # 5, 6, 8: page 7 was sent and not written since
    assert ex.cursor == 9
    ex.stop_vcpus()
    with pytest.raises(ExecutorError):
        ex.cpu_write([1])
    ex.stop_devices()
    with pytest.raises(ExecutorError):
        ex.dma_write(0, [120])
    ex.log_sync()
    ex.send_all()
    assert ex.complete() == 0


def test_send_next_wraps_around_from_the_cursor() -> None:
    ex = small(DEVICE_DMA_LOGGING, n=100, workload=Workload())
    ex.setup()
    ex.send(np.arange(100))
    ex.cursor = 50
    ex.cpu_write([10, 60, 90])
    ex.log_sync()
    assert ex.send_next(2) == 2
    assert ex.cursor == 91  # 60 and 90 first, from the cursor
    assert ex.send_next(5) == 1  # then wraps to 10
    assert ex.cursor == 11 and ex.dirty == 0


def test_type1_reporting_semantics() -> None:
    unpinned = small(TYPE1)
    unpinned.setup()
    unpinned.send(np.arange(200))
    assert unpinned.log_sync() == 200  # every mapped page, every time
    pinned = small(TYPE1, type1_pinned_scope=True)
    pinned.setup()
    pinned.send(np.arange(200))
    assert pinned.log_sync() == 10  # the pinned pages, perpetually
    pinned.send(np.arange(200))
    pinned.dma_write(0, [120])  # a physical device's DMA bypasses type1
    assert pinned.log_sync() == 10
    assert 120 in pinned.stale_pages().tolist()


def test_vfio_dma_rw_writes_are_reported_once_by_type1() -> None:
    devs = (DeviceLoad("mdev", pages=PageSet.span(0, 50), pins=PageSet.span(0, 5),
                       kernel_access=True),)
    ex = small(TYPE1, type1_pinned_scope=True, workload=Workload(devices=devs))
    ex.setup()
    ex.send(np.arange(200))
    ex.dma_write(0, [30])
    assert ex.log_sync() == 6  # 5 pinned + 30
    ex.send(np.arange(200))
    assert ex.log_sync() == 5


def test_dma_logging_reads_and_clears_and_all_dirty_marks_all() -> None:
    ex = small(DEVICE_DMA_LOGGING)
    ex.setup()
    ex.send(np.arange(200))
    ex.dma_write(0, [101, 102])
    assert ex.log_sync() == 2
    ex.send(np.arange(200))
    assert ex.log_sync() == 0
    alld = small(ALL_DIRTY)
    alld.setup()
    alld.send(np.arange(200))
    assert alld.log_sync() == 200


def test_precopy_opt_out_skips_vfio_while_devices_run() -> None:
    devs = (DeviceLoad("d0", pages=PageSet.span(100, 150), precopy_dirty_tracking=False),
            DeviceLoad("d1", pages=PageSet.span(0, 10)))
    ex = small(ALL_DIRTY, workload=Workload(devices=devs))
    ex.setup()
    ex.send(np.arange(200))
    ex.cpu_write([1])
    assert ex.log_sync() == 1  # KVM only: vfio_log_sync_needed() is false
    ex.stop_vcpus()
    ex.stop_devices([1])
    assert ex.log_sync() == 0  # d0, which opted out, still runs
    ex.dma_write(0, [120])
    with pytest.raises(ExecutorError):
        ex.dma_write(1, [5])  # d1 is stopped
    ex.stop_devices([0])
    assert ex.log_sync() == 199  # devices stopped: everything marked dirty


# ---------------------------------------------------------------------------- vs a reference


class Reference:
    """The reporting rules with Python sets, for a random action sequence."""

    def __init__(self, method: str, n: int, dev_pages: set[int], pins: set[int]) -> None:
        self.method, self.n, self.pins = method, n, pins
        self.mig: set[int] = set(range(n))
        self.kvm: set[int] = set()
        self.dev: set[int] = set()
        self.src = [1] * n
        self.dst = [0] * n

    def cpu(self, pages: list[int]) -> None:
        for p in set(pages):
            self.src[p] += 1
        self.kvm |= set(pages)

    def dma(self, pages: list[int]) -> None:
        for p in set(pages):
            self.src[p] += 1
        if self.method in (DEVICE_DMA_LOGGING, IOMMUFD_HW):
            self.dev |= set(pages)

    def sync(self) -> None:
        self.mig |= self.kvm
        self.kvm = set()
        if self.method in (DEVICE_DMA_LOGGING, IOMMUFD_HW):
            self.mig |= self.dev
            self.dev = set()
        elif self.method in (ALL_DIRTY, TYPE1):
            self.mig = set(range(self.n))

    def send(self, pages: list[int]) -> None:
        for p in set(pages) & self.mig:
            self.dst[p] = self.src[p]
        self.mig -= set(pages)


ACTIONS = st.lists(
    st.tuples(st.sampled_from(["cpu", "dma", "sync", "send"]),
              st.lists(st.integers(0, 129), max_size=12)),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([m for m in METHODS if m != NO_VFIO_REPORT]), ACTIONS)
def test_step_api_matches_a_set_reference(method: str, actions: list[tuple[str, list[int]]]) -> None:
    n = 130  # not a multiple of 64
    devs = (DeviceLoad("d", pages=PageSet.span(0, n)),)
    ex = Executor(RunConfig(method=method, guest_pages=n, workload=Workload(devices=devs)))
    ref = Reference(method, n, set(range(n)), set())
    ex.setup()
    ref.sync()
    for what, pages in actions:
        if what == "cpu":
            ex.cpu_write(pages)
            ref.cpu(pages)
        elif what == "dma":
            ex.dma_write(0, pages)
            ref.dma(pages)
        elif what == "sync":
            ex.log_sync()
            ref.sync()
        else:
            ex.send(pages)
            ref.send(pages)
        assert set(ex.migration.indices().tolist()) == ref.mig
        assert ex.dirty == len(ref.mig)
        stale = {p for p in range(n) if ref.src[p] != ref.dst[p]}
        assert set(ex.stale_pages().tolist()) == stale
    ex.stop_vcpus()
    ex.stop_devices()
    ex.log_sync()
    ex.send_all()
    assert ex.complete() == 0  # no mutation: nothing lost, whatever happened before


@pytest.mark.parametrize("mutations, lost", [(frozenset(), 0),
                                             (frozenset({"retry_keeps_cleared_bits"}), 150)])
def test_cancel_then_retry(mutations: frozenset[str], lost: int) -> None:
    ex = small(DEVICE_DMA_LOGGING, mutations=mutations)
    ex.setup()
    ex.send(np.arange(150))
    ex.stop_vcpus()
    ex.cancel()  # the source runs again; the next destination has nothing
    assert ex.vcpus_running and ex.devices_running
    assert ex.stale_pages().size == 200
    ex.setup()
    ex.stop_vcpus()
    ex.stop_devices()
    ex.log_sync()
    ex.send_all()
    assert ex.complete() == lost
