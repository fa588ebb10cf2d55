"""Engine throughput on TwoPhase with 5..8 resource managers; prints JSON.

For each size: distinct and generated state counts (which must equal TLC's), the median
wall time of ``--runs`` runs, distinct and generated states per second, and the peak RSS
of a fresh process exploring that size alone (so sizes do not share a high-water mark).

    python bench/explore.py [--runs 3] [--sizes 5,6,7,8]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

# TLC's figures for the same spec (distinct, generated, depth), for the check below.
TLC = {5: (8832, 58146, 17), 6: (50816, 402306, 20), 7: (296448, 2744706, 23), 8: (1745408, 18507778, 26)}


def one(rms: int) -> tuple[float, tuple[int, int, int]]:
    from checker.examples.transaction_commit import two_phase
    from checker.explore import explore

    spec = two_phase(rms)
    t = time.perf_counter()
    r = explore(spec)
    dt = time.perf_counter() - t
    return dt, (r.stats.distinct, r.stats.generated, r.stats.depth)


def peak_rss_mb(rms: int) -> float:
    code = (
        "import resource, sys; sys.path.insert(0, '.');"
        "from checker.examples.transaction_commit import two_phase;"
        "from checker.explore import explore;"
        f"explore(two_phase({rms}));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="5,6,7,8")
    args = ap.parse_args()
    rows = []
    for rms in [int(x) for x in args.sizes.split(",")]:
        times = []
        counts = None
        for _ in range(args.runs):
            dt, counts = one(rms)
            times.append(dt)
        med = statistics.median(times)
        assert counts is not None
        rows.append(
            {
                "spec": f"TwoPhase(RM={rms})",
                "distinct_states": counts[0],
                "generated_states": counts[1],
                "depth": counts[2],
                "matches_tlc": rms not in TLC or counts == TLC[rms],
                "seconds_median": round(med, 4),
                "seconds_all": [round(t, 4) for t in times],
                "distinct_per_second": round(counts[0] / med),
                "generated_per_second": round(counts[1] / med),
                "peak_rss_mb": round(peak_rss_mb(rms), 1),
            }
        )
    doc = {
        "benchmark": "explore",
        "runs": args.runs,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "results": rows,
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
