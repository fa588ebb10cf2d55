"""What fresh memory costs on this machine: the first write to pages the process never had; prints JSON.

On a virtual machine the host may back guest memory only when the guest first touches it,
and take back what the guest frees (virtio-balloon free page reporting, as on the
Firecracker machines these benchmarks ran on): every page a run allocates beyond what was
recently freed then costs a trip to the host.  The explorer's runs allocate gigabytes (the
hash table, the stored states, the edges for liveness), so on such a machine this cost is
part of every figure, and it changes with what ran in the seconds before.  Run this next
to a benchmark to know which machine it ran on:

    python bench/first_touch.py [--mb 1024] [--rounds 3] [--pause 3]

For each round: ``after_pause``: MB written after ``--pause`` seconds with the memory
freed (what a run that grows its heap meets); ``after_free``: the same right after
freeing it (pages the guest still holds).  On a bare machine both are about the speed of
zeroing and writing memory (several GB/s).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np


def touch(mb: int) -> float:
    """Write ``mb`` MB once and free them; the seconds the writing took."""
    t = time.perf_counter()
    a = np.ones(mb << 20, dtype=np.uint8)  # every page written once
    dt = time.perf_counter() - t
    del a
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pause", type=float, default=3.0, help="seconds with the memory freed first")
    args = ap.parse_args()
    paused, freed = [], []
    for _ in range(args.rounds):
        time.sleep(args.pause)
        paused.append(touch(args.mb))
        freed.append(touch(args.mb))

    def per_gb(ts: list[float]) -> dict[str, object]:
        return {
            "seconds_all": [round(t, 3) for t in ts],
            "seconds_per_gb_median": round(statistics.median(ts) * 1024 / args.mb, 3),
        }

    print(json.dumps({
        "benchmark": "first_touch",
        "mb": args.mb,
        "pause_seconds": args.pause,
        "machine": platform.machine(),
        "kernel": platform.release(),
        "after_pause": per_gb(paused),
        "after_free": per_gb(freed),
    }, indent=2))


if __name__ == "__main__":
    main()
