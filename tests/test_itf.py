"""ITF: every shipped counterexample follows the format's rules and reads back to the same
states; a variable has one type in every state of every spec; integers are #bigint."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from checker.explore import explore
from checker.itf import ItfError, check_itf, from_itf, to_itf, unify, value_type
from checker.lang.layout import Kind
from cli.load import load_target
from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").rglob("*.toml"))
VIOLATING = [p for p in SHIPPED if load_target(p).expectation.kind == "violation"]
ENGINE = ROOT / "specs" / "engine"


@cache
def counterexample(path: Path):
    spec = load_target(path).spec
    v = explore(spec).violation
    assert v is not None and v.trace
    # through JSON text, as a consumer reads it
    return spec, v, json.loads(json.dumps(to_itf(v, spec.layout, spec_name=spec.name)))


@pytest.mark.parametrize("path", VIOLATING, ids=lambda p: p.stem)
def test_a_shipped_counterexample_follows_the_rules_and_reads_back(path):
    spec, v, doc = counterexample(path)
    types = check_itf(doc)
    steps = from_itf(doc, spec.layout)
    assert [s.action for s in steps] == [s.action for s in v.trace]
    assert all(np.array_equal(a.row, b.row) for a, b in zip(steps, v.trace, strict=True))
    assert doc["#meta"]["violated"] == v.name and doc["#meta"]["reads"] == list(v.reads)
    assert doc.get("loop") == v.loop_start
    # every integer variable is a #bigint (no bare JSON number anywhere: check_itf refuses them)
    for f in spec.layout.fields:
        want = {Kind.INT: "int", Kind.BOOL: "bool", Kind.ENUM: "str", Kind.SET: "set(str)"}[f.kind]
        got = types[f.name]
        inner = got[4:-1] if f.is_array else got
        assert unify(want, inner, f.name) == want, (f.name, got)


def test_a_variable_has_one_type_in_every_shipped_spec():
    seen: dict[str, tuple[str, str]] = {}
    for path in VIOLATING:
        _, _, doc = counterexample(path)
        for name, t in check_itf(doc).items():
            if name in seen:
                unify(seen[name][0], t, f"{name} in {path.stem} (was {seen[name][1]})")
            else:
                seen[name] = (t, path.stem)
    # the variables that read as booleans before: integers, in every spec
    for name in ("round", "attempt", "cursor"):
        assert seen[name][0] == "int", (name, seen[name])
    assert seen["kstate"][0] == "seq(str)"  # one device or several: a sequence


def test_the_committed_report_traces_follow_the_rules():
    files = sorted((ROOT / "reports" / "traces").glob("*.itf.json"))
    assert len(files) == len(VIOLATING)
    for p in files:
        check_itf(json.loads(p.read_text()))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"vars": ["x"], "states": [{"x": 1}]}, "bare JSON number"),
        ({"vars": ["x"], "states": [{"x": {"#bigint": "1"}}, {"x": True}]}, "type bool where int"),
        ({"vars": ["x"], "states": [{"y": True}]}, "variables differ"),
        ({"vars": ["x"], "states": []}, "non-empty"),
        ({"vars": ["x"], "states": [{"x": {"#bigint": "1.5"}}]}, "decimal digits"),
        ({"vars": ["x"], "states": [{"x": {"#set": [{"#bigint": "1"}, "a"]}}]}, "type str where int"),
        ({"vars": ["x"], "states": [{"x": True}], "loop": 3}, "loop must index"),
        ({"vars": ["x"], "states": [{"x": {"#nope": 1}}]}, "unknown tag"),
    ],
)
def test_the_rules_refuse_what_itf_does_not_allow(doc, message):
    with pytest.raises(ItfError, match=message):
        check_itf(doc)


def test_value_types():
    assert value_type({"#set": []}, "x") == "set(?)"
    assert value_type([{"#set": ["a"]}, {"#set": []}], "x") == "seq(set(str))"
    assert value_type({"#tup": [True, "a"]}, "x") == "tup(bool, str)"
    assert value_type({"#map": [[{"#bigint": "1"}, "a"]]}, "x") == "map(int, str)"
    assert value_type({"b": True, "a": {"#bigint": "-2"}}, "x") == "rec{a: int, b: bool}"


def test_reading_back_checks_the_layout():
    spec, _, doc = counterexample(ENGINE / "twophase-broken-invariant.toml")
    bad = json.loads(json.dumps(doc))
    for st in bad["states"]:  # a well-formed trace, of another type than the layout's
        st["tmState"] = {"#bigint": "1"}
    with pytest.raises(ItfError, match=r"states\[0\].tmState: int where the layout declares enum"):
        from_itf(bad, spec.layout)


def test_itf_out_writes_one_file_per_counterexample_named_by_spec_and_property(tmp_path):
    r = CliRunner().invoke(main, ["check", str(ENGINE), "-q", "--itf-out", str(tmp_path / "itf")])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "itf").iterdir())
    assert names == ["twophase-broken-deadlock.Deadlock.itf.json",
                     "twophase-broken-invariant.TCConsistent.itf.json",
                     "twophase-broken-liveness.AllDecide.itf.json"]
    for p in (tmp_path / "itf").iterdir():
        check_itf(json.loads(p.read_text()))


def test_trace_format_itf_puts_nothing_else_on_stdout():
    r = CliRunner().invoke(main, ["check", str(ENGINE), "--trace-format", "itf"])
    assert r.exit_code == 0
    docs = [json.loads(line) for line in r.stdout.splitlines()]  # one trace per line, nothing else
    assert [d["#meta"]["source"] for d in docs] == [
        "twophase-broken-deadlock", "twophase-broken-invariant", "twophase-broken-liveness"]
    for d in docs:
        check_itf(d)
    assert "twophase-3" in r.stderr and "spec(s) checked" in r.stderr  # the lines went to stderr
