"""The visited set against a plain Python reference: same numbering, parents, targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from checker.explore import Limits
from checker.result import Stats
from checker.store import StateStore


class _Reference:
    def __init__(self) -> None:
        self.index: dict[bytes, int] = {}
        self.parent: list[int] = []

    def add(self, rows: np.ndarray, parents: np.ndarray) -> tuple[list[int], list[int]]:
        new, targets = [], []
        for r, p in zip(rows, parents, strict=True):
            key = r.tobytes()
            if key not in self.index:
                self.index[key] = len(self.parent)
                self.parent.append(int(p))
                new.append(self.index[key])
            targets.append(self.index[key])
        return new, targets


class _AllCollide(StateStore):
    """Every state gets the same fingerprint: the store must still tell them apart."""

    def keys(self, rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), 12345, dtype=np.uint64)


def _batches(words: int, seed: int, levels: int = 12, size: int = 3000, spread: int = 5000):
    rng = np.random.default_rng(seed)
    for level in range(levels):
        rows = rng.integers(0, spread, size=(size + 300 * level, words)).astype(np.uint64)
        yield rows, rng.integers(0, 1000, size=len(rows))


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("words", [1, 2, 3])
def test_store_numbers_states_as_a_python_dict_would(words: int, threads: int) -> None:
    store, ref = StateStore(words, 64 * words, threads=threads), _Reference()
    for rows, parents in _batches(words, seed=words * 10 + threads):
        new, targets = store.add(rows, parents, np.zeros(len(rows), dtype=np.int32), want_targets=True)
        ref_new, ref_targets = ref.add(rows, parents)
        assert new.tolist() == ref_new
        assert targets is not None and targets.tolist() == ref_targets
    assert store.n == len(ref.parent)
    assert store.parent[: store.n].tolist() == ref.parent
    assert store.collisions == 0
    assert len(store.rows) >= store.n


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("grows", [False, True])
def test_renumbering_a_block_by_its_places_equals_a_pass_over_the_table(threads: int, grows: bool) -> None:
    """A block renumbered through the places settle() recorded leaves the same table as the
    pass over every slot (the table grown inside the block: that pass is taken instead)."""
    rng = np.random.default_rng(threads + 2 * grows)
    first = rng.permutation(1 << 16)[:3000].astype(np.uint64).reshape(-1, 1)
    stores = [StateStore(1, 64, capacity=16, threads=threads) for _ in range(2)]
    for st in stores:
        st.add(first[:1000], np.full(1000, -1), np.zeros(1000, dtype=np.int32))
        if st is stores[0]:
            st.begin_block()  # the other store has no block: renumber() reads its whole table
        if not grows:  # room for the block first, so that no shard grows inside it
            for sh in st._shards or []:
                sh.grow(np.empty(0, dtype=np.int64))
                sh.grow(np.empty(0, dtype=np.int64))
        for part in np.array_split(first[1000:], 4):
            st.add(part, np.zeros(len(part)), np.zeros(len(part), dtype=np.int32))
    order = rng.permutation(2000)
    moved = [st.renumber(1000, order) for st in stores]
    assert (moved[0] == moved[1]).all()
    assert (stores[0]._block_where is None) and (stores[1]._block_where is None)
    for a, b in zip(stores[0]._shards or [], stores[1]._shards or [], strict=True):
        assert a.table.tobytes() == b.table.tobytes()
    again, targets = stores[0].add(
        first, np.full(3000, -1), np.zeros(3000, dtype=np.int32), want_targets=True
    )
    assert len(again) == 0 and targets is not None
    expect = np.concatenate([np.arange(1000), 1000 + moved[0]])
    assert targets.tolist() == expect.tolist()
    assert (stores[0].rows[: stores[0].n, 0] == first[np.argsort(expect), 0]).all()


def test_fingerprint_collisions_are_kept_apart_and_counted() -> None:
    store, ref = _AllCollide(2, 128), _Reference()
    for rows, parents in _batches(2, seed=7, levels=3, size=200, spread=40):
        new, targets = store.add(rows, parents, np.zeros(len(rows), dtype=np.int32), want_targets=True)
        ref_new, ref_targets = ref.add(rows, parents)
        assert new.tolist() == ref_new and targets is not None and targets.tolist() == ref_targets
    assert store.n == len(ref.parent) and store.collisions > 0


def test_dropped_table_makes_the_store_read_only() -> None:
    store = StateStore(1, 10)
    store.add(np.arange(5, dtype=np.uint64).reshape(-1, 1), np.full(5, -1), np.full(5, -1, dtype=np.int32))
    before = store.nbytes
    store.drop_table()
    assert store.nbytes < before and store.n == 5
    with pytest.raises(RuntimeError, match="read-only"):
        store.add(np.zeros((1, 1), dtype=np.uint64), np.zeros(1), np.zeros(1, dtype=np.int32))


def test_collision_probability_is_tlcs_formula() -> None:
    # TLC prints 1.3E-14 for TwoPhase with 3 RMs (288 distinct, 1,146 generated)
    assert Stats(distinct=288, generated=1146).collision_probability == pytest.approx(1.34e-14, rel=0.01)
    assert Stats(distinct=10, generated=5).collision_probability == 0.0
    assert Stats(distinct=288, generated=1146).fingerprint_report() is None


def test_a_wide_spec_reports_its_fingerprints() -> None:
    from checker.explore import explore
    from cli.load import load_target

    spec = load_target(Path(__file__).resolve().parent.parent / "specs/two-vfs-three-pages-cancel.toml").spec
    assert spec.layout.words == 2
    r = explore(spec, check_liveness=False, limits=Limits(states=20_000))
    report = r.stats.fingerprint_report()
    assert r.stats.fingerprints and report is not None
    assert "0 collisions" in report and "probability" in report
