"""Engine throughput and memory on TwoPhase and on grown migration specs; prints JSON.

Every case runs in a fresh process (so cases share no memory high-water mark and no warm
cache) and reports: distinct and generated states and depth (TwoPhase's must equal TLC's),
the outcome, the seconds of each phase (loading the spec, the search, liveness), distinct
and generated states per second of search, and bytes per state: the growth of the
process's peak RSS over what it held before the search, divided by the distinct states,
at the end of the search and at the end of liveness.  With ``--runs`` > 1 each case is
run that many times in a row and the median is reported with every figure.

Cases (``--cases``, comma-separated, default ``twophase,cancel,largest``):

* ``twophase``: TwoPhase with 5..9 resource managers (``--sizes``);
* ``cancel``: specs/cancel-recovers.toml with 2..5 pages (the liveness-heavy one);
* ``largest``: the largest shipped migration spec, specs/two-vfs-three-pages-cancel.toml,
  grown a page at a time to 5 pages and then by a third device, each step under
  ``--max-seconds`` (default 60): a step that hits it reports ``outcome: limit`` with
  the states it reached, which is how far 60 s get on this machine;
* ``rounds``: cancel-recovers with 5 pages and 1..3 pre-copy rounds;
* ``fifty``: cancel-recovers with 6 pages (~66M states, the issue's 50M-state target, with
  its liveness property), best run alone with ``--max-seconds 0`` (no limit) to see the
  whole run, or with the default 60 s to see how far a minute gets.

    python bench/explore.py [--runs 1] [--cases twophase,cancel] [--sizes 5,6,7,8,9]
                            [--workers N] [--max-seconds 60] [--max-memory MB]
    python bench/explore.py --one SPEC.toml     # one spec file, the same figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# TLC's figures for the same spec (distinct, generated, depth), for the check below.
TLC = {5: (8832, 58146, 17), 6: (50816, 402306, 20), 7: (296448, 2744706, 23), 8: (1745408, 18507778, 26)}
THIRD_DEVICE = """
[[devices]]
name = "vf2"
features = ["p2p"]
dma_logging = true
dma_pages = [{pages}]
"""


def one(
    path: Path, workers: int | None, max_seconds: float | None, max_memory: float | None,
    compile: str = "auto",
) -> dict[str, Any]:
    """Explore one spec file in this process and measure it."""
    import resource

    t0 = time.perf_counter()
    from checker.explore import Explorer, Limits
    from cli.load import load_target

    target = load_target(path)
    loaded = time.perf_counter() - t0
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    limits = Limits(seconds=max_seconds or None, memory_mb=max_memory)
    ex = Explorer(target.spec, workers=workers, limits=limits, compile=compile)
    r = ex.run()
    st = r.stats
    search = ex.phase_seconds["search"]

    def per_state(phase: str) -> float | None:
        if phase not in ex.peak_mb or not st.distinct:
            return None
        return round((ex.peak_mb[phase] - base_mb) * 1024 * 1024 / st.distinct, 1)

    return {
        "spec": target.name,
        "outcome": str(r.outcome),
        "limit": None if r.limit is None else str(r.limit),
        "distinct_states": st.distinct,
        "generated_states": st.generated,
        "depth": st.depth,
        "liveness_properties": len(target.spec.liveness),
        "workers": ex.workers.count,
        "compiled": st.compiled,
        "seconds": {
            "load": round(loaded, 3),
            "search": round(search, 3),
            "liveness": round(ex.phase_seconds.get("liveness", 0.0), 3),
            "compile": round(ex.phase_seconds.get("compile", 0.0), 3),
            "process": round(time.perf_counter() - t0, 3),
        },
        "distinct_per_second": round(st.distinct / search) if search else None,
        "generated_per_second": round(st.generated / search) if search else None,
        "bytes_per_state": {"search": per_state("search"), "with_liveness": per_state("liveness")},
        "peak_rss_mb": round(max(ex.peak_mb.values()), 1),
    }


def _spec_text(base: Path, pages: int, devices: int = 0, rounds: int | None = None) -> str:
    """``base`` with ``pages`` guest pages, a third device if ``devices`` is 3, and
    ``rounds`` pre-copy rounds; its pinned counts removed (they are for the shipped size)."""
    text = base.read_text()
    text = re.sub(r"(?m)^(distinct_states|generated_states|depth|trace_length) = .*\n", "", text)
    text = re.sub(r'(?m)^name = "([^"]+)"', lambda m: f'name = "{m.group(1)}-bench"', text, count=1)
    text = re.sub(r"(?m)^pages = \d+", f"pages = {pages}", text)
    if rounds is not None:
        text = re.sub(r"(?m)^precopy_rounds = \d+\n", "", text)
        text = text.replace("[migration]\n", f"[migration]\nprecopy_rounds = {rounds}\n")
    if devices == 3:
        text += THIRD_DEVICE.format(pages=", ".join(str(p) for p in range(pages)))
    return text


def cases(names: list[str], sizes: list[int], work: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for name in names:
        if name == "twophase":
            for rms in sizes:
                p = work / f"twophase-{rms}.toml"
                p.write_text(f'example = "TwoPhase"\nname = "twophase-{rms}"\nrms = {rms}\n')
                out.append((f"TwoPhase(RM={rms})", p))
        elif name == "cancel":
            for pages in (2, 3, 4, 5):
                p = work / f"cancel-recovers-{pages}.toml"
                p.write_text(_spec_text(ROOT / "specs/cancel-recovers.toml", pages))
                out.append((f"cancel-recovers, {pages} pages", p))
        elif name == "rounds":
            for rounds in (1, 2, 3):
                p = work / f"cancel-recovers-5-r{rounds}.toml"
                p.write_text(_spec_text(ROOT / "specs/cancel-recovers.toml", 5, rounds=rounds))
                out.append((f"cancel-recovers, 5 pages, {rounds} rounds", p))
        elif name == "fifty":
            p = work / "cancel-recovers-6.toml"
            p.write_text(_spec_text(ROOT / "specs/cancel-recovers.toml", 6))
            out.append(("cancel-recovers, 6 pages", p))
        elif name == "largest":
            base = ROOT / "specs/two-vfs-three-pages-cancel.toml"
            for pages, devices in ((3, 2), (4, 2), (5, 2), (3, 3), (4, 3), (5, 3)):
                p = work / f"largest-{pages}p-{devices}d.toml"
                p.write_text(_spec_text(base, pages, devices))
                out.append((f"two-vfs-three-pages-cancel, {pages} pages, {devices} devices", p))
        else:
            raise SystemExit(f"unknown case {name!r}: twophase, cancel, rounds, largest or fifty")
    return out


def _child(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", str(path)]
    for flag in ("workers", "max_seconds", "max_memory", "compile"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        }
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if len(runs) == 1 or "error" in runs[0]:
        return runs[0]
    med = dict(runs[-1])
    med["seconds"] = {
        k: round(statistics.median(r["seconds"][k] for r in runs), 3) for k in runs[0]["seconds"]
    }
    med["seconds_all"] = [r["seconds"] for r in runs]
    search = med["seconds"]["search"]
    med["distinct_per_second"] = round(med["distinct_states"] / search) if search else None
    med["generated_per_second"] = round(med["generated_states"] / search) if search else None
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cases", default="twophase,cancel,largest")
    ap.add_argument("--sizes", default="5,6,7,8,9")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="per case; 0: no limit")
    ap.add_argument("--max-memory", type=float, help="MB, as check --max-memory")
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                    help="as check --compile (compiled actions; a build is cached, so only a first "
                    "run pays for it: its time is seconds.compile)")
    ap.add_argument("--one", type=Path, help="measure this one spec file in this process")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.one is not None:
        print(json.dumps(one(args.one, args.workers, args.max_seconds, args.max_memory, args.compile)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-explore-") as tmp:
        for label, path in cases(args.cases.split(","), [int(x) for x in args.sizes.split(",")], Path(tmp)):
            row = {"case": label, **_median_of([_child(path, args) for _ in range(args.runs)])}
            m = re.match(r"TwoPhase\(RM=(\d+)\)", label)
            if m and int(m.group(1)) in TLC and "error" not in row:
                got = (row["distinct_states"], row["generated_states"], row["depth"])
                row["matches_tlc"] = got == TLC[int(m.group(1))]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    doc = {
        "benchmark": "explore",
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_at_end": os.getloadavg(),
        "results": rows,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
