"""Benchmark of the concrete executor's bitmap hot path; prints JSON on stdout.

For guests of 64 GiB, 1 TiB and 4 TiB (4 KiB pages: 2^24, 2^28, 2^30 bits) it times one
dirty-sync + send-selection round exactly as ``model.concrete.executor`` does it:

1. merge a tracker bitmap (a read-and-clear report: KVM's log, a DMA log) into the
   migration bitmap, clearing the tracker and counting the result (``Bitmap.merge_from``);
2. select the next pages to send for one 100 ms step at 10 Gbit/s from the cursor
   (``Bitmap.find_set``) and clear them (``Bitmap.clear_range``);

beside a plain ``numpy.copyto`` of a bitmap of the same size measured in the same run, and
reports the medians and their ratio.  Then it times a whole simulated migration of a
64 GiB guest (``Executor.run``) for two methods.

Usage: ``python bench/executor.py [--quick]`` (``--quick``: 64 GiB and 1 TiB only, fewer
repetitions).
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from model.concrete.bitmap import Bitmap
from model.concrete.executor import Executor, RunConfig
from model.concrete.workload import DeviceLoad, PageSet, Workload
from model.contract import PAGE_SIZE

GiB = 1 << 30
STEP_BUDGET = int(10e9 / 8 * 0.1 / PAGE_SIZE)  # pages sent per 100 ms at 10 Gbit/s


def median_time(fn: Callable[[], object], prepare: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        prepare()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sync_round(guest_bytes: int, runs: int, rng: np.random.Generator) -> dict[str, object]:
    n = guest_bytes // PAGE_SIZE
    # A migration bitmap after the first pass (1% still dirty) and a tracker report with
    # a dense hot set (1/64 of RAM) plus 0.5% scattered writes.
    mig_template = Bitmap.from_indices(n, rng.integers(0, n, n // 100))
    trk_template = Bitmap.from_indices(n, rng.integers(0, n, n // 200))
    trk_template.set_range(n // 4, n // 4 + n // 64)
    mig, trk = mig_template.copy(), trk_template.copy()
    copy_dst = np.empty_like(mig.words)
    cursor = n // 3

    def prepare() -> None:
        np.copyto(mig.words, mig_template.words)
        np.copyto(trk.words, trk_template.words)

    def one_round() -> int:
        total = mig.merge_from(trk, clear_source=True)
        idx = mig.find_set(cursor, STEP_BUDGET)
        if idx.size:
            mig.clear_range(cursor, int(idx[-1]) + 1)
        return total - idx.size

    def plain_copy() -> None:
        np.copyto(copy_dst, trk.words)

    def merge_only() -> int:
        return mig.merge_from(trk, clear_source=True)

    def merged() -> None:
        prepare()
        mig.merge_from(trk, clear_source=True)

    def select_only() -> None:
        idx = mig.find_set(cursor, STEP_BUDGET)
        mig.clear_range(cursor, int(idx[-1]) + 1)

    # Interleave the measurements so all see the same machine state.
    t_round, t_copy, t_merge, t_select = [], [], [], []
    for _ in range(runs):
        t_round.append(median_time(one_round, prepare, 1))
        t_copy.append(median_time(plain_copy, lambda: None, 1))
        t_merge.append(median_time(merge_only, prepare, 1))
        t_select.append(median_time(select_only, merged, 1))
    prepare()
    expected = len(set(mig_template.indices().tolist()) | set(trk_template.indices().tolist())) \
        if n <= 1 << 24 else None
    got = mig.merge_from(trk, clear_source=True)
    if expected is not None and got != expected:
        raise AssertionError(f"merge count {got} != {expected}")
    r, c = statistics.median(t_round), statistics.median(t_copy)
    return {
        "guest": f"{guest_bytes // GiB} GiB" if guest_bytes < 1 << 40 else f"{guest_bytes >> 40} TiB",
        "pages": n,
        "bitmap_bytes": mig.words.nbytes,
        "runs": runs,
        "sync_round_s": round(r, 6),
        "plain_copy_s": round(c, 6),
        "ratio": round(r / c, 2),
        "merge_count_s": round(statistics.median(t_merge), 6),
        "select_clear_s": round(statistics.median(t_select), 6),
        "copy_gb_per_s": round(2 * mig.words.nbytes / c / 1e9, 2),  # read + write
    }


def whole_migration(method: str, max_rounds: int) -> dict[str, object]:
    n = 64 * GiB // PAGE_SIZE
    wl = Workload(
        cpu_dirty_rate=256 * (1 << 20),
        hot_set=PageSet.span(0, 2 * GiB // PAGE_SIZE),
        devices=(DeviceLoad("vf0", dma_rate=128 * (1 << 20),
                            pages=PageSet.span(n // 2, n // 2 + GiB // PAGE_SIZE)),),
    )
    cfg = RunConfig(method=method, guest_pages=n, workload=wl, max_rounds=max_rounds)
    t = time.perf_counter()
    res = Executor(cfg).run()
    wall = time.perf_counter() - t
    return {
        "guest": "64 GiB",
        "method": method,
        "wall_s": round(wall, 3),
        "simulated_s": round(res.total_time_s, 3),
        "rounds": res.precopy_rounds,
        "converged": res.converged,
        "pages_sent": res.pages_sent,
        "all_arrived": res.all_arrived,
    }


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    rng = np.random.default_rng(0)
    sizes = [(64 * GiB, 9), (1 << 40, 7)] + ([] if quick else [(4 << 40, 5)])
    rounds = [sync_round(size, 3 if quick else runs, rng) for size, runs in sizes]
    migrations = [whole_migration("device-dma-logging", 30),
                  whole_migration("all-dirty", 3 if quick else 10)]
    doc = {
        "benchmark": "executor",
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "step_budget_pages": STEP_BUDGET,
        "sync_round": rounds,
        "target": "sync_round_s within 3x of plain_copy_s",
        "within_target": all(r["ratio"] <= 3 for r in rounds),
        "migration": migrations,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
