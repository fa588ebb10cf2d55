"""``vfio-migcheck check``: exit codes, JSON contract, JUnit, ITF and user errors."""

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.load import load_target
from cli.main import main

ENGINE = Path(__file__).resolve().parent.parent / "specs" / "engine"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_engine_specs_match_their_expectations():
    r = run("check", str(ENGINE), "--quiet")
    assert r.exit_code == 0, r.output


def test_json_contract_shape():
    r = run("check", str(ENGINE / "twophase-broken-invariant.toml"), "--json", "-")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["version"] == 1
    (res,) = doc["results"]
    for key in (
        "spec",
        "outcome",
        "expected",
        "matched",
        "violated",
        "blocked_by",
        "tracking_method",
        "stats",
        "trace",
    ):
        assert key in res
    assert res["outcome"] == "violation" and res["violated"] == "TCConsistent" and res["matched"] is True
    assert res["expected"] == {"violation": "TCConsistent"}
    assert set(res["stats"]) == {"distinct_states", "generated_states", "depth", "seconds", "compiled"}
    assert [s["action"] for s in res["trace"]] == [
        None,
        "TMCommit",
        "RMRcvCommitMsg(rm=1)",
        "RMChooseToAbort(rm=0)",
    ]
    assert res["trace"][0]["state"]["tmState"] == "init"


def test_unexpected_violation_exits_1(tmp_path):
    p = write(
        tmp_path, "x.toml", 'example = "TwoPhase"\nbroken = "commit-too-early"\n[check]\nexpect = "pass"\n'
    )
    r = run("check", str(p))
    assert r.exit_code == 1
    assert "UNEXPECTED" in r.stdout and "Counterexample: 4 states" in r.stdout


def test_expected_violation_that_does_not_happen_exits_1(tmp_path):
    p = write(tmp_path, "x.toml", 'example = "TwoPhase"\n[check]\nexpect = { violation = "TCConsistent" }\n')
    assert run("check", str(p), "-q").exit_code == 1


def test_a_pin_that_differs_is_a_mismatch_with_a_one_line_reason(tmp_path):
    p = write(tmp_path, "x.toml",
              'example = "TwoPhase"\n[check]\nexpect = "pass"\ndistinct_states = 289\ndepth = 11\n')
    r = run("check", str(p), "-q", "--json", "-")
    assert r.exit_code == 1
    (res,) = json.loads(r.stdout)["results"]
    assert res["outcome"] == "pass" and res["matched"] is False
    assert res["reason"] == "expected 289 distinct states, explored 288"
    r = run("check", str(p))
    assert r.exit_code == 1
    assert f"MISMATCH x ({p}): expected 289 distinct states, explored 288" in r.stdout


def test_pins_that_hold_match_and_every_difference_is_listed(tmp_path):
    ok = write(tmp_path, "ok.toml", 'example = "TwoPhase"\nbroken = "commit-too-early"\n[check]\n'
               'expect = { violation = "TCConsistent" }\ndistinct_states = 623\n'
               'generated_states = 2508\ndepth = 11\ntrace_length = 4\n')
    assert run("check", str(ok), "-q").exit_code == 0
    # --first stops at the level of the first violation: TLC's figures without -continue
    first = write(tmp_path, "first.toml", 'example = "TwoPhase"\nbroken = "commit-too-early"\n[check]\n'
                  'expect = { violation = "TCConsistent" }\ndistinct_states = 110\n'
                  'generated_states = 252\ndepth = 4\ntrace_length = 4\n')
    assert run("check", str(first), "-q", "--first").exit_code == 0
    assert run("check", str(first), "-q").exit_code == 1
    bad = write(tmp_path, "bad.toml", 'example = "TwoPhase"\nbroken = "commit-too-early"\n[check]\n'
                'expect = { violation = "TCConsistent" }\ngenerated_states = 250\ndepth = 5\n'
                'trace_length = 5\n')
    r = run("check", str(bad), "--json", "-", "--first")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["results"][0]["reason"] == (
        "expected 250 generated states, explored 252; expected depth 5, explored 4; "
        "expected a counterexample of 5 states, found 4")
    r = run("check", str(bad))
    assert "bad (" in r.stdout and "UNEXPECTED" not in r.stdout  # the violation itself was expected


def test_an_unexpected_outcome_is_reported_before_the_pins(tmp_path):
    p = write(tmp_path, "x.toml",
              'example = "TwoPhase"\nbroken = "commit-too-early"\n[check]\nexpect = "pass"\n'
              'distinct_states = 288\n')
    r = run("check", str(p), "--json", "-")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["results"][0]["reason"] == "expected pass, got violation of TCConsistent"


def test_a_run_stopped_by_a_limit_compares_no_pins(tmp_path):
    p = write(tmp_path, "x.toml", 'example = "TwoPhase"\nrms = 6\n[check]\ndistinct_states = 1\n')
    r = run("check", str(p), "--max-states", "500", "--json", "-")
    assert r.exit_code == 3
    res = json.loads(r.stdout)["results"][0]
    assert res["outcome"] == "limit" and res["matched"] is False
    assert res["reason"].startswith("stopped by ") and res["reason"].endswith(" before a verdict")


def test_junit_outcome_case_carries_the_reason(tmp_path):
    p = write(tmp_path, "x.toml", 'example = "TwoPhase"\n[check]\ndistinct_states = 289\n')
    out = tmp_path / "junit.xml"
    assert run("check", str(p), "-q", "--junit", str(out)).exit_code == 1
    suite = ET.parse(out).getroot().find("testsuite")
    outcome = next(c for c in suite.findall("testcase") if c.get("name") == "outcome")
    assert outcome.find("failure").get("message") == "expected 289 distinct states, explored 288"
    assert suite.get("failures") == "1"


def test_limit_exits_3_with_partial_statistics(tmp_path):
    p = write(tmp_path, "x.toml", 'example = "TwoPhase"\nrms = 6\n')
    r = run("check", str(p), "--max-states", "500", "--json", "-")
    assert r.exit_code == 3
    res = json.loads(r.stdout)["results"][0]
    assert res["outcome"] == "limit" and res["stats"]["distinct_states"] >= 500


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('example = "TwoPhase"\nrmz = 3\n', "rmz: unknown key (did you mean 'rms'?)"),
        ('example = "ThreePhase"\n', "example: 'ThreePhase' is not known; allowed: TCommit, TwoPhase"),
        ('example = "TwoPhase"\nrms = 0\n', "rms: must be an integer in 1..10"),
        ('example = "TwoPhase"\n[check]\nexpect = "fail"\n', "check.expect: 'fail' is not allowed"),
        ('example = "TwoPhase"\n[check]\nexpect = { violation = "Nope" }\n', "unknown property 'Nope'"),
        ('example = "TwoPhase\n', "invalid TOML at line 1, column 20 (key example): Illegal character"),
        ('example = "TwoPhase"\n[check]\ndepth = 0\n', "check.depth: must be an integer >= 1, got 0"),
        ('example = "TwoPhase"\n[check]\ndistinct_states = "288"\n', "check.distinct_states: must be"),
        ('example = "TwoPhase"\n[check]\ntrace_length = 4\n',
         "check.trace_length: only an expected violation has a counterexample"),
        ('example = "TwoPhase"\n[check]\ndistinct = 4\n',
         "check.distinct: unknown key (did you mean 'check.distinct_states'?)"),
        ('[[devices]]\nname = "vf0"\n[check]\ndepth = -1\n',
         "[check].depth: expected an integer >= 1, got integer -1"),
        # a reviewer's patch: unknown flag, bad value, bad base
        ('qemu = { base = "master", log_sync_gated = true }\n[[devices]]\nname = "vf0"\n',
         '[qemu].log_sync_gated: unknown behaviour flag "log_sync_gated"; allowed: '
         "enable_migration_property, auto_requires_dirty_tracking"),
        ('qemu = { base = "10.1", set_state_skips_cached = "yes" }\n[[devices]]\nname = "a"\n',
         "[qemu].set_state_skips_cached: expected true or false, got 'yes'"),
        ('qemu = { base = "7.2" }\n[[devices]]\nname = "a"\n',
         '[qemu].base: unknown profile "7.2"'),
    ],
)
def test_spec_file_errors_are_one_line_exit_2(tmp_path, text, message):
    p = write(tmp_path, "bad.toml", text)
    r = run("check", str(p))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {p}: ") and message in lines[0]
    assert "Traceback" not in r.output


def test_missing_path_exit_2(tmp_path):
    r = run("check", str(tmp_path / "nope.toml"))
    assert r.exit_code == 2 and "no such spec file or directory" in r.stderr


def test_junit_one_case_per_spec_and_property(tmp_path):
    out = tmp_path / "junit.xml"
    r = run("check", str(ENGINE), "-q", "--junit", str(out))
    assert r.exit_code == 0
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "0"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) >= {"twophase-3", "twophase-broken-invariant", "tcommit-3"}
    cases = {c.get("name") for c in suites["twophase-3"].findall("testcase")}
    assert cases == {"outcome", "TPTypeOK", "TCConsistent"}
    for s in root.findall("testsuite"):
        assert int(s.get("tests")) == len(s.findall("testcase"))


def test_itf_trace(tmp_path):
    r = run("check", str(ENGINE / "twophase-broken-invariant.toml"), "--json", "-", "--trace-format", "itf")
    itf = json.loads(r.stdout)["results"][0]["itf"]
    assert set(itf) >= {"#meta", "vars", "states"}
    assert itf["vars"] == ["rmState", "tmState", "tmPrepared", "msgs"]
    s0 = itf["states"][0]
    assert s0["#meta"]["index"] == 0 and s0["tmPrepared"] == {"#set": []} and s0["rmState"][0] == "working"


def test_ctrl_c_exits_130_with_partial_statistics(tmp_path):
    p = write(tmp_path, "big.toml", 'example = "TwoPhase"\nrms = 10\n')
    proc = subprocess.Popen(
        # SIGINT as a terminal delivers it, also where this test runs in a shell's background
        # job (which starts with SIGINT ignored, and then Python installs no handler)
        [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from cli.main import main; main()", "check", str(p)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    # interrupt the exploration, not the start-up: wait for its first progress line
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("Progress(big"), first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = first + err
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    assert "big" in out  # the summary row with partial statistics


def test_the_main_job_prints_one_line_per_spec_and_no_expected_trace():
    """`vfio-migcheck check` on the shipped specs (the README's main job, QEMU's,
    cloud-hypervisor's and the engine's): a header, one line per spec with its name in
    full, the verdict; the counterexamples of the specs that are meant to fail only with
    --verbose; under 120 lines on both streams."""
    specs = ENGINE.parent
    names = sorted(load_target(p).name for p in specs.rglob("*.toml"))
    r = run("check", str(specs))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == len(names) + 3 and len(lines) < 120
    assert lines[0].split() == ["spec", "ok", "outcome", "distinct", "generated", "depth", "seconds",
                                "method"]
    assert sorted(line.split()[0] for line in lines[1:-2]) == names  # never truncated
    assert all(line.split()[1] == "yes" for line in lines[1:-2])
    assert "Counterexample" not in r.stdout
    assert lines[-1].startswith(f"{len(names)} spec(s) checked: all outcomes match their expectations")
    # stderr: only TLC's collision-probability line of the specs stored as fingerprints (and
    # the progress lines of a search that took long enough to need them)
    notes = [line for line in r.stderr.splitlines() if not line.startswith("Progress(")]
    assert all(": 64-bit fingerprints" in line for line in notes) and len(notes) < len(names)
    assert len(lines) + len(notes) < 120
