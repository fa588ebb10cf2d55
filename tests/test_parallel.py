"""Several threads give the result of one: same counts, coverage, verdicts and traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from checker import explore as explore_module
from checker import store as store_module
from checker.explore import Explorer
from checker.parallel import Workers
from checker.result import Result
from cli.load import load_target

SPECS = Path(__file__).resolve().parent.parent / "specs"
# every shipped spec small enough to run twice here (the largest runs in bench/)
SHIPPED = sorted(
    p
    for p in [*SPECS.glob("*.toml"), *SPECS.glob("engine/*.toml"), *SPECS.glob("cloud-hypervisor/*.toml")]
    if "three-pages" not in p.name
)


def _summary(r: Result) -> tuple[object, ...]:
    v = r.violation
    trace = None
    if v is not None:
        trace = ([s.action for s in v.trace], np.array([s.row for s in v.trace]).tolist(), v.loop_start)
    return (
        r.outcome,
        r.stats.distinct,
        r.stats.generated,
        r.stats.depth,
        r.coverage,
        r.properties,
        r.witnesses,
        v and v.name,
        trace,
    )


def _run(path: Path, workers: int) -> Result:
    ex = Explorer(load_target(path).spec, workers=workers)
    ex.workers = Workers(workers, min_rows=0)  # threads even on the smallest level
    return ex.run()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_two_threads_give_the_result_of_one(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_PARALLEL_CANDIDATES", 0)
    assert _summary(_run(path, 2)) == _summary(_run(path, 1))


def _every_trace(r: Result) -> list[tuple[object, ...]]:
    return [
        (v.name, [s.action for s in v.trace], np.array([s.row for s in v.trace]).tolist(), v.loop_start)
        for v in r.violations
    ]


LIVE = [p for p in SHIPPED if load_target(p).spec.liveness]


@pytest.mark.parametrize("path", LIVE, ids=lambda p: p.stem)
def test_chunks_of_seven_rows_give_the_result_of_whole_levels(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Levels cut in many chunks are put back in whole-level order (states renumbered,
    their table entries and edges following), so every count, verdict and trace, liveness
    lassos included, is that of one chunk per level."""
    spec = load_target(path).spec

    def run(rows: int) -> Result:
        monkeypatch.setattr(explore_module, "MIN_CHUNK_ROWS", rows)
        monkeypatch.setattr(explore_module, "MAX_CHUNK_ROWS", rows)
        ex = Explorer(spec, workers=1)
        ex._chunk_rows = rows
        return ex.run()

    whole, cut = run(1 << 24), run(7)
    assert _summary(cut) == _summary(whole) and _every_trace(cut) == _every_trace(whole)
