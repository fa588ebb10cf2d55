"""One spec file checked by two source trees of the engine, side by side; prints JSON.

Each run is a whole ``vfio-migcheck check`` process, as a user would see it: this tree's
and the tree given by ``--before`` (``git archive COMMIT | tar -x -C TREE``), the latter
run by this Python with ``PYTHONPATH=TREE``.  The two alternate (A B, A B, ...) so a slow
moment of the shared machine hits both alike; every round gives one paired ratio of wall
time and one of peak RSS (the child's, from ``wait4``), and their medians are printed with
the counts each tree found (which must agree).

    python bench/before_after.py SPEC.toml --before TREE [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from cli.main import main; sys.argv[0] = 'vfio-migcheck'; main()"


def _run(tree: Path, spec: Path, workers: int | None, out_dir: Path) -> dict[str, Any]:
    out = out_dir / "result.json"
    cmd = [sys.executable, "-c", ENTRY, "check", str(spec), "--json", str(out), "--quiet"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if not out.exists():
        raise SystemExit(f"{tree}: check wrote no result (status {status}):\n{err[-2000:]}")
    res = json.loads(out.read_text())["results"][0]
    out.unlink()
    st = res["stats"]
    return {
        "seconds": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "counts": (st["distinct_states"], st["generated_states"], st["depth"]),
        "outcome": res.get("outcome", res.get("verdict")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="the other source tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, help="both trees' --workers (the old one must know it)")
    args = ap.parse_args()
    trees = {"after": ROOT, "before": args.before.resolve()}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="before-after-") as tmp:
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(_run(tree, args.spec.resolve(), args.workers, Path(tmp)))

    def paired(key: str) -> float:
        return round(
            statistics.median(b[key] / a[key] for a, b in zip(runs["after"], runs["before"], strict=True)), 3
        )

    doc = {
        "benchmark": "before_after",
        "spec": str(args.spec),
        "before": str(trees["before"]),
        "rounds": args.rounds,
        "order": list(trees),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "results": {
            name: {
                "seconds_all": [round(r["seconds"], 3) for r in rs],
                "seconds_median": round(statistics.median(r["seconds"] for r in rs), 3),
                "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in rs), 1),
                "distinct_states": rs[0]["counts"][0],
                "generated_states": rs[0]["counts"][1],
                "depth": rs[0]["counts"][2],
            }
            for name, rs in runs.items()
        },
        "same_counts": len({r["counts"] for rs in runs.values() for r in rs}) == 1,
        "paired_ratios": {
            "seconds before/after": paired("seconds"),
            "peak_rss before/after": paired("peak_rss_mb"),
        },
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
