"""The rows of edges the explorer writes as it searches (checker/edge_rows.py) equal the
rows compressed from every edge once the search is over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from checker import digraph
from checker import explore as explore_module
from checker.edge_rows import EdgeRows
from checker.explore import Explorer
from checker.liveness import LiveGraph
from cli.load import load_target

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("seed", range(4))
def test_chunks_appended_in_source_order_are_the_compressed_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    cuts = np.unique(np.concatenate([[0, n], rng.integers(1, n, 30)]))
    rows, batches = EdgeRows(), []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        m = int(rng.integers(0, 6 * (hi - lo)))
        # within a chunk, edges come grouped by action, not by source (as candidates do)
        act = np.sort(rng.integers(0, 7, m)).astype(np.int32)
        src = rng.integers(lo, hi, m)
        dst = np.where(rng.random(m) < 0.2, src, rng.integers(0, n, m))  # some self-loops
        rows.append(int(lo), int(hi), src, dst, act)
        batches.append((src.astype(np.int32), dst.astype(np.int32), act))
    got = rows.rows(n + 10)  # ten states never expanded: empty rows
    want = digraph.compress(n + 10, batches)
    for g, w in zip(got, want, strict=True):
        assert g.tolist() == w.tolist()


def test_rows_must_come_in_source_order() -> None:
    rows = EdgeRows()
    rows.append(0, 4, np.array([1, 2]), np.array([2, 3]), np.array([0, 0], dtype=np.int32))
    with pytest.raises(ValueError, match="expected sources from 4, got 5"):
        rows.append(5, 6, np.array([5]), np.array([1]), np.array([0], dtype=np.int32))
    with pytest.raises(ValueError, match="outside the chunk"):
        rows.append(4, 6, np.array([7]), np.array([1]), np.array([0], dtype=np.int32))


def test_remap_moves_only_targets_in_the_block() -> None:
    rows = EdgeRows()
    rows.append(0, 3, np.array([0, 1, 2, 2]), np.array([3, 4, 5, 1]), np.zeros(4, dtype=np.int32))
    rows.remap(1, 3, np.array([2, 0, 1]))  # 3 -> 5, 4 -> 3, 5 -> 4, from edge 1 on
    assert rows.rows(6)[1].tolist() == [3, 3, 4, 1]


@pytest.mark.parametrize("spec", ["cancel-recovers", "two-vfs-three-pages-cancel"])
def test_the_search_writes_the_rows_of_its_whole_graph(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On shipped specs, their levels cut in chunks of at most 64 rows and so renumbered,
    the rows written during the search equal those of the graph a keep_graph search keeps."""
    monkeypatch.setattr(explore_module, "FIRST_CHUNK_ROWS", 16)
    monkeypatch.setattr(explore_module, "MAX_CHUNK_ROWS", 64)
    renumbered = []
    real = explore_module.StateStore.renumber

    def renumber(self: explore_module.StateStore, base: int, order: np.ndarray) -> np.ndarray:
        renumbered.append(base)
        return real(self, base, order)

    monkeypatch.setattr(explore_module.StateStore, "renumber", renumber)
    target = load_target(ROOT / "specs" / f"{spec}.toml")
    live = Explorer(target.spec)
    live.run()
    assert live._live_rows is not None
    got = live._live_rows.rows(live.store.n)
    kept = Explorer(target.spec, keep_graph=True)
    result = kept.run()
    assert result.graph_data is not None
    want = LiveGraph.of(result.graph_data)
    assert len(got[1]) > 1000 and renumbered
    for g, w in zip(got, (want.indptr, want.col, want.act), strict=True):
        assert np.array_equal(g, w)
