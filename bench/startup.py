"""Start-up time of the command line; prints JSON.

Times ``vfio-migcheck --help`` and ``vfio-migcheck fsm path RUNNING STOP_COPY`` (each a fresh
interpreter, wall time until it exits) for this tree and for a baseline (a git ref, default
``main``, exported to a temporary directory), alternating the two, ``--runs`` times each;
reports the medians.  Two ways of starting:

* ``cached``: Python's bytecode cache kept (in a temporary ``PYTHONPYCACHEPREFIX``, warmed
  by one run first), as an installed package starts;
* ``uncached``: ``PYTHONDONTWRITEBYTECODE=1`` and no cache, so every module of the project
  is compiled on every run (the environment this project is developed in sets it).

    python bench/startup.py [--runs 9] [--baseline main]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"help": ["--help"], "fsm path": ["fsm", "path", "RUNNING", "STOP_COPY"]}
LAUNCH = "import sys; from cli.main import main; sys.argv[0] = 'vfio-migcheck'; main()"


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (git archive), so the baseline's own code runs."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_once(tree: Path, args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", LAUNCH, *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def environments(cache: Path) -> dict[str, dict[str, str]]:
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return {
        "cached": {**base, "PYTHONPYCACHEPREFIX": str(cache)},
        "uncached": {**base, "PYTHONDONTWRITEBYTECODE": "1"},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--baseline", default="main", help="git ref to compare with (default: main)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"current": ROOT, "baseline": export(args.baseline, Path(tmp) / "baseline")}
        envs = environments(Path(tmp) / "pycache")
        results: dict[str, dict[str, dict[str, float]]] = {}
        for name, cmd in COMMANDS.items():
            for mode, env in envs.items():
                times: dict[str, list[float]] = {tree: [] for tree in trees}
                for tree in trees.values():  # warm the caches (and the OS's file cache)
                    run_once(tree, cmd, env)
                for _ in range(args.runs):  # alternating: A, B, A, B, ...
                    for label, tree in trees.items():
                        times[label].append(run_once(tree, cmd, env))
                results.setdefault(name, {})[mode] = {
                    label: round(statistics.median(ts), 3) for label, ts in times.items()
                }
    print(json.dumps({
        "bench": "startup",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": args.runs,
        "baseline": args.baseline,
        "median_seconds": results,
    }, indent=1))


if __name__ == "__main__":
    main()
