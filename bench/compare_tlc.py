"""The engine against TLC and a hand-written C explorer on TwoPhase, side by side; prints JSON.

Every run is a whole process timed from outside, as a user would see it: the engine as
``vfio-migcheck check`` on a spec file of TwoPhase with N resource managers (start-up,
loading, search and output included), TLC as ``java -jar tla2tools.jar -workers 1`` on
bench/TwoPhase.tla (with ``--tlc PATH``; the jar is never committed) and the yardstick
bench/twophase.c compiled here with ``cc -O2``.  The tools run in alternating rounds
(A B C, A B C, ...), so a slow moment of the machine hits all of them alike, and each
round gives one paired ratio; the medians of the ratios are printed with every time.
Each tool's state counts are printed, checked against TLC's figures where
known and against each other.

    python bench/compare_tlc.py [--rms 8] [--rounds 5] [--tlc /path/to/tla2tools.jar]
                                [--workers N] [--engine-workers-1] [--engine-numpy]
                                [--engine-cold] [--before TREE] [--touch-first MB]

The engine compiles the spec's actions (``check --compile auto``) into a cache of this run,
filled by one untimed warm-up run, as a user's second run of a spec finds it;
``--engine-cold`` adds the engine with an empty cache every run (it compiles each time),
``--engine-numpy`` the engine with ``--compile off``.

Before the rounds the engine's Python is compiled to bytecode (``compileall``, as pip does
when it installs a package), so that no run parses its modules again where
``PYTHONDONTWRITEBYTECODE`` is set (as on the development machine: 60 ms a process).

``--touch-first MB`` writes and frees that much memory in this process just before every
timed run, each tool alike, so that the run finds pages the machine already backs: on a
virtual machine that backs guest memory lazily and takes freed memory back (see
bench/first_touch.py), a tool's first use of fresh memory otherwise costs more the more it
allocates, and by how much depends on what ran in the seconds before.  Give both figures.

``--before TREE`` adds the engine of another source tree (``git archive COMMIT | tar -x -C
TREE``, e.g. the commit before the hash-set store) run by this Python with ``PYTHONPATH=TREE``,
for a before/after ratio measured in the same rounds.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from first_touch import touch  # bench/first_touch.py, beside this script

HERE = Path(__file__).resolve().parent
# TLC's figures for TwoPhase (distinct, generated, depth), as in bench/explore.py.
TLC_COUNTS = {
    5: (8832, 58146, 17),
    6: (50816, 402306, 20),
    7: (296448, 2744706, 23),
    8: (1745408, 18507778, 26),
}

Counts = tuple[int, int, int]


def _timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        tail = out.stdout[-2000:] + out.stderr[-2000:]
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{tail}")
    return dt, out.stdout


def _engine(
    work: Path, rms: int, workers: int | None, tree: Path | None = None, compile: str | None = None,
    cold: bool = False,
) -> Callable[[], tuple[float, Counts]]:
    spec = work / f"twophase-{rms}.toml"
    spec.write_text(f'example = "TwoPhase"\nname = "twophase-{rms}"\nrms = {rms}\n[check]\nexpect = "pass"\n')
    args = ["check", str(spec), "--json", "-", "--quiet"]
    if workers is not None:
        args += ["--workers", str(workers)]
    if compile is not None:
        args += ["--compile", compile]
    env = None
    cache = work / "cache"  # compiled actions: built on the warm-up run, loaded after that
    if tree is None:
        exe = shutil.which("vfio-migcheck", path=str(Path(sys.executable).parent)) or "vfio-migcheck"
        cmd = [exe, *args]
    else:
        # the other tree's entry point, as its console script would call it
        entry = "import sys; from cli.main import main; sys.argv[0] = 'vfio-migcheck'; main()"
        cmd = [sys.executable, "-c", entry, *args]
        env = {**os.environ, "PYTHONPATH": str(tree.resolve())}

    def run() -> tuple[float, Counts]:
        where = Path(tempfile.mkdtemp(dir=work)) if cold else cache  # cold: compiled every run
        dt, out = _timed(cmd, work, {**(env or os.environ), "VFIO_MIGCHECK_CACHE": str(where)})
        st = json.loads(out)["results"][0]["stats"]
        return dt, (st["distinct_states"], st["generated_states"], st["depth"])

    return run


def _yardstick(work: Path, rms: int, cc: str) -> Callable[[], tuple[float, Counts]]:
    exe = work / "twophase"
    subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "twophase.c")], check=True)

    def run() -> tuple[float, Counts]:
        dt, out = _timed([str(exe), str(rms)], work)
        d = json.loads(out)
        return dt, (d["distinct"], d["generated"], d["depth"])

    return run


def _tlc(work: Path, rms: int, jar: Path, java: str) -> Callable[[], tuple[float, Counts]]:
    shutil.copy(HERE / "TwoPhase.tla", work / "TwoPhase.tla")
    rm_set = ", ".join(f"r{i}" for i in range(1, rms + 1))
    cfg = (HERE / "TwoPhase.cfg").read_text()
    (work / "TwoPhase.cfg").write_text(re.sub(r"(?m)^CONSTANT RM = .*$", f"CONSTANT RM = {{{rm_set}}}", cfg))
    cmd = [
        java,
        "-XX:+UseParallelGC",
        "-jar",
        str(jar),
        "-workers",
        "1",
        "-config",
        "TwoPhase.cfg",
        "-metadir",
        str(work / "states"),
        "TwoPhase.tla",
    ]

    def run() -> tuple[float, Counts]:
        shutil.rmtree(work / "states", ignore_errors=True)
        dt, out = _timed(cmd, work)
        m = re.search(r"([\d,]+) states generated, ([\d,]+) distinct states found", out)
        d = re.search(r"depth of the complete state graph search is (\d+)", out)
        if not m or not d:
            raise SystemExit(f"TLC printed no statistics:\n{out[-2000:]}")
        gen, dist = (int(x.replace(",", "")) for x in m.groups())
        return dt, (dist, gen, int(d.group(1)))

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rms", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tlc", type=Path, help="tla2tools.jar (built from tlaplus/tlaplus; never committed)")
    ap.add_argument("--java", default="java")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--workers", type=int, help="the engine's --workers (default: one per core)")
    ap.add_argument("--engine-workers-1", action="store_true", help="also run the engine with --workers 1")
    ap.add_argument("--engine-numpy", action="store_true", help="also run the engine with --compile off")
    ap.add_argument("--engine-cold", action="store_true",
                    help="also run the engine with an empty cache of compiled actions (compiles every run)")
    ap.add_argument("--before", type=Path, help="also run the engine of this source tree (PYTHONPATH=TREE)")
    ap.add_argument("--touch-first", type=int, default=0, metavar="MB",
                    help="write and free MB of memory before every timed run (every tool alike)")
    args = ap.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="compare-tlc-") as tmp:
        work = Path(tmp)
        tools: dict[str, Callable[[], tuple[float, Counts]]] = {}
        tools["engine"] = _engine(work, args.rms, args.workers)
        if args.engine_workers_1:
            tools["engine_workers_1"] = _engine(work, args.rms, 1)
        if args.engine_numpy:
            tools["engine_numpy"] = _engine(work, args.rms, args.workers, compile="off")
        if args.engine_cold:
            tools["engine_cold_cache"] = _engine(work, args.rms, args.workers, cold=True)
        if args.before is not None:
            tools["engine_before"] = _engine(work, args.rms, None, args.before)
        tools["c_yardstick"] = _yardstick(work, args.rms, args.cc)
        if args.tlc is not None:
            tools["tlc_workers_1"] = _tlc(work, args.rms, args.tlc.resolve(), args.java)
        for tree in (HERE.parent, args.before):
            if tree is not None:
                for package in ("checker", "cli", "model"):
                    compileall.compile_dir(str(Path(tree) / package), quiet=1)
        tools["engine"]()  # warm-up, not timed: fills the cache of compiled actions
        times: dict[str, list[float]] = {name: [] for name in tools}
        counts: dict[str, Counts] = {}
        for _ in range(args.rounds):
            for name, run in tools.items():
                if args.touch_first:  # the next process gets pages the host backs
                    touch(args.touch_first)
                dt, c = run()
                times[name].append(dt)
                counts[name] = c
    want = TLC_COUNTS.get(args.rms)
    ratios: dict[str, float] = {}
    for name in tools:
        if name != "engine":
            paired = [t / e for t, e in zip(times[name], times["engine"], strict=True)]
            ratios[f"{name}/engine"] = round(statistics.median(paired), 3)
    doc = {
        "benchmark": "compare_tlc",
        "spec": f"TwoPhase(RM={args.rms})",
        "rounds": args.rounds,
        "touch_first_mb": args.touch_first,
        "order": list(tools),
        "what": "whole-process wall time per tool, alternating rounds; ratios: medians of per-round ratios",
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "results": {
            name: {
                "seconds_all": [round(t, 3) for t in times[name]],
                "seconds_median": round(statistics.median(times[name]), 3),
                "distinct_states": counts[name][0],
                "generated_states": counts[name][1],
                "depth": counts[name][2],
                "matches_tlc": want is None or counts[name] == want,
            }
            for name in tools
        },
        "all_tools_agree": len(set(counts.values())) == 1,
        "paired_ratios": ratios,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
