"""The benchmarks run and agree: the C yardstick, the engine's CLI and (when the bench
machine has it) TLC count TwoPhase's states alike; bench/explore.py measures a spec."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler for the yardstick")
def test_compare_tlc_runs_the_engine_and_the_yardstick_on_the_same_states() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/compare_tlc.py"), "--rms", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["all_tools_agree"] and set(doc["results"]) == {"engine", "c_yardstick"}
    assert all(r["matches_tlc"] for r in doc["results"].values())
    assert doc["results"]["engine"]["distinct_states"] == 8832


def test_bench_explore_measures_one_spec() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/explore.py"),
            "--one",
            str(ROOT / "specs/engine/twophase-broken-liveness.toml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    row = json.loads(out.stdout)
    assert row["outcome"] == "violation" and row["liveness_properties"] == 1
    assert set(row["seconds"]) == {"load", "search", "liveness", "compile", "process"}
    assert row["bytes_per_state"]["search"] is not None


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler for the yardstick")
def test_compare_tlc_runs_another_tree_as_the_engine_before() -> None:
    # this tree as its own "before": the same counts, and a ratio for every round
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/compare_tlc.py"), "--rms", "4", "--rounds", "1"]
        + ["--before", str(ROOT), "--touch-first", "8"],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["order"] == ["engine", "engine_before", "c_yardstick"] and doc["all_tools_agree"]
    assert set(doc["paired_ratios"]) == {"engine_before/engine", "c_yardstick/engine"}
    assert doc["touch_first_mb"] == 8


def test_first_touch_measures_fresh_memory_after_a_pause_and_after_a_free() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/first_touch.py"), "--mb", "16", "--rounds", "1", "--pause", "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout)
    for case in ("after_pause", "after_free"):
        assert len(doc[case]["seconds_all"]) == 1 and doc[case]["seconds_per_gb_median"] > 0


def test_bench_explore_fifty_is_cancel_recovers_with_six_pages(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import explore as bench_explore
    finally:
        sys.path.remove(str(ROOT / "bench"))
    [(label, path)] = bench_explore.cases(["fifty"], [], tmp_path)
    text = path.read_text()
    assert label == "cancel-recovers, 6 pages" and "\npages = 6\n" in text
    assert "distinct_states" not in text and "cancel = true" in text
