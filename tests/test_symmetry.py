"""check --symmetry: the canonical form, the verdicts it keeps and the states it saves."""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.examples.transaction_commit import tcommit, two_phase
from checker.explore import Limits, explore
from checker.lang.layout import View
from checker.lang.spec import Eventually, Symmetry
from checker.symmetry import Canonical, SymmetryError, explore_symmetric, with_symmetry
from checker.trace import replay
from cli.check import Mode
from cli.load import load_target
from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").rglob("*.toml"))

TWO_VFS = """
[vm]
pages = 2
[[devices]]
name = "vf0"
features = ["p2p", "pre-copy"]
dma_logging = true
[[devices]]
name = "vf1"
features = ["p2p", "pre-copy"]
dma_logging = true
"""


@cache
def both(path: Path):
    """The spec, its full exploration and check --symmetry's (which explores a spec that
    declares no symmetry, such as cloud-hypervisor's, without a reduction)."""
    target = load_target(path)
    return target.spec, explore(target.spec), Mode(symmetry=True).run(target, Limits(), None)


def _verdict(r):
    v = r.violation
    return r.outcome, v.name if v else None, v.length if v else None, r.stats.depth


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_spec_keeps_its_verdict_depth_and_counterexample_length(path):
    spec, full, reduced = both(path)
    assert _verdict(reduced) == _verdict(full)
    if spec.symmetry is not None and spec.symmetry.reduces:
        assert reduced.stats.distinct <= full.stats.distinct
    else:
        assert reduced.stats.distinct == full.stats.distinct


def test_state_counts_drop_where_indices_are_interchangeable():
    drops = {}
    for path in SHIPPED:
        spec, full, reduced = both(path)
        if reduced.stats.distinct < full.stats.distinct:
            drops[path.stem] = (full.stats.distinct, reduced.stats.distinct)
    assert drops["twophase-3"] == (288, 80)
    assert drops["tcommit-3"] == (34, 13)
    assert drops["two-identical-vfs-cancel"] == (26762, 19270)
    # two identical logging devices, either of which may fail DMA_LOGGING_START
    assert drops["log-start-fails-source-recovers"] == (624, 566)
    assert drops["mutation-ignore-log-start-failure"] == (446, 417)
    assert set(drops) == {"tcommit-3", "twophase-3", "twophase-broken-deadlock", "twophase-broken-invariant",
                          "twophase-broken-liveness", "two-identical-vfs-cancel",
                          "log-start-fails-source-recovers", "mutation-ignore-log-start-failure"}


def _classes(spec, rows) -> set[bytes]:
    whole = Canonical(spec.layout, spec.symmetry, everywhere=True)
    return {r.tobytes() for r in whole(rows)}


@pytest.mark.parametrize("spec", [tcommit(3), tcommit(4), two_phase(3), two_phase(4),
                                  two_phase(3, "commit-too-early"), two_phase(3, "lost-commit")],
                         ids=lambda s: s.name)
def test_the_reduction_is_exact_where_the_indices_are_truly_interchangeable(spec):
    """TLC's Permutations(RM): every reachable class is reached, nothing else."""
    bare = dataclasses.replace(spec, invariants={}, action_invariants={}, liveness={}, witnesses={},
                               check_deadlock=False)
    full = explore(bare, keep_graph=True, check_liveness=False).graph_data.rows
    reduced = explore(with_symmetry(bare), keep_graph=True, check_liveness=False).graph_data.rows
    assert _classes(spec, full) == _classes(spec, reduced)
    assert len(reduced) == len(_classes(spec, reduced)) < len(full)


def _scenario(tmp_path: Path, name: str, extra: str):
    p = tmp_path / f"{name}.toml"
    p.write_text(f'name = "{name}"\n' + TWO_VFS + extra)
    return load_target(p).spec


@pytest.mark.parametrize(("name", "extra", "violated"), [
    ("skip-prepare", "[mutations]\nskip_p2p_prepare = true\n", "P2PQuiescedBeforeStop"),
    ("no-final-sync", "[mutations]\nno_final_sync = true\n", "NoPageLost"),
    ("faults", "[migration]\ndevice_faults = true\n", "DestinationStartsLoaded"),
    ("cancel", "[migration]\ncancel = true\nprecopy_rounds = 0\n", None),
])
def test_two_identical_vfs_keep_their_verdicts_and_counterexamples_replay(tmp_path, name, extra, violated):
    spec = _scenario(tmp_path, name, extra)
    full, reduced = explore(spec), explore_symmetric(spec)
    assert reduced.stats.distinct < full.stats.distinct
    assert _verdict(reduced) == _verdict(full)
    assert (reduced.violation.name if reduced.violation else None) == violated
    if violated:
        v = reduced.violation
        # the lifted counterexample is a behaviour of the spec without the reduction ...
        labels = [s.action for s in v.trace[1:]]
        again = replay(spec, labels)
        assert all(np.array_equal(a.row, b.row) for a, b in zip(again, v.trace, strict=True))
        # ... that ends in a state violating the property, which it reads
        last = View(spec.layout, v.trace[-1].row.reshape(1, -1))
        assert not spec.invariants[violated](last).all()
        assert v.reads and "(states shown up to a permutation" not in v.message


def test_devices_in_different_states_are_not_swapped_and_their_logs_sort(tmp_path):
    spec = _scenario(tmp_path, "x", "")
    lay, sym = spec.layout, spec.symmetry
    assert sym.groups == ((0, 1),) and "dma_log" in sym.elements and "kstate" in sym.fixed
    c = Canonical(lay, sym)
    base = lay.display(spec.init_rows()[0])
    # between hooks (pc idle), both RUNNING: the DMA logs are sorted onto the devices
    logged = lay.pack([{"pc": "active", "status": "active", "kstate": ["RUNNING", "RUNNING"],
                        "qstate": ["RUNNING", "RUNNING"], "dma_log": [["iova0"], []]}])
    assert lay.unpack(c(logged)[0])["dma_log"] == [[], ["iova0"]]
    # the same devices in different states: nothing moves
    apart = lay.pack([{"pc": "active", "status": "active", "kstate": ["PRE_COPY", "RUNNING"],
                       "qstate": ["PRE_COPY", "RUNNING"], "dma_log": [["iova0"], []]}])
    assert np.array_equal(c(apart), apart)
    # inside a device hook: nothing moves either
    inside = lay.pack([{"pc": "vm_stop", "status": "device", "kstate": ["RUNNING", "RUNNING"],
                        "qstate": ["RUNNING", "RUNNING"], "dma_log": [["iova0"], []]}])
    assert np.array_equal(c(inside), inside)
    assert base["kstate"] == ["RUNNING", "RUNNING"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=4, max_size=4), min_size=1, max_size=20),
       st.lists(st.integers(0, 63), min_size=1, max_size=20), st.permutations([0, 1, 2, 3]))
def test_the_canonical_form_is_a_class_representative(rm_states, masks, perm):
    """Idempotent, the same for every permutation of the RMs, computed row by row or as a batch."""
    spec = two_phase(4)
    lay = spec.layout
    n = min(len(rm_states), len(masks))
    states = [{"rmState": rm_states[i], "tmPrepared": masks[i] & 15, "msgs": masks[i] & 15} for i in range(n)]
    rows = lay.pack(states)
    permuted = lay.pack([{"rmState": [s["rmState"][perm[r]] for r in range(4)],
                          "tmPrepared": sum(1 << r for r in range(4) if s["tmPrepared"] >> perm[r] & 1),
                          "msgs": sum(1 << r for r in range(4) if s["msgs"] >> perm[r] & 1)} for s in states])
    c = Canonical(lay, spec.symmetry)
    assert np.array_equal(c(rows), c(permuted))
    assert np.array_equal(c(c(rows)), c(rows))
    assert np.array_equal(np.concatenate([c(r.reshape(1, -1)) for r in rows]), c(rows))


def test_fairness_of_one_instance_refuses_the_reduction():
    spec = two_phase(3)
    one = Eventually(lambda s: s.tmState == 1, fair=("RMPrepare(rm=0)",))
    spec = dataclasses.replace(spec, liveness={"X": one})
    with pytest.raises(SymmetryError, match=r"fairness of the action instance RMPrepare\(rm=0\)"):
        with_symmetry(spec)
    with pytest.raises(SymmetryError, match="declares no symmetry"):
        with_symmetry(dataclasses.replace(spec, symmetry=None))
    with pytest.raises(SymmetryError, match="fixed variable nope"):
        Canonical(spec.layout, Symmetry(groups=((0, 1),), elements=("rmState",), fixed=("nope",)))


def test_check_symmetry_on_the_command_line(tmp_path):
    engine = ROOT / "specs" / "engine"
    r = CliRunner().invoke(main, ["check", str(engine), "--symmetry", "--json", "-"])
    assert r.exit_code == 0, r.output  # distinct/generated pins are not compared, depth and lengths are
    res = {x["spec"]: x for x in json.loads(r.stdout)["results"]}
    assert res["twophase-3"]["stats"]["distinct_states"] == 80
    assert res["twophase-3"]["exploration"] == "symmetry"
    assert "Exploration: symmetry reduction" in r.stderr
    bad = tmp_path / "x.toml"
    bad.write_text('example = "TwoPhase"\n[check]\ndepth = 12\n')
    r = CliRunner().invoke(main, ["check", str(bad), "--symmetry"])
    assert r.exit_code == 1 and "expected depth 12, explored 11" in r.stdout
    r = CliRunner().invoke(main, ["check", str(engine), "--symmetry", "--simulate", "3"])
    assert r.exit_code == 2 and "--symmetry and --simulate do not combine" in r.stderr
