"""``checker.verdict``: the one meaning of "matched", on every combination of expectation and
outcome.

The table below is what the four former judges (``model.scenario``'s ``Expect.matches`` /
``CheckConfig.matches``, the engine loader's ``Expectation`` as ``cli.check.judge`` judged it,
and ``outcome()`` of ``tests/test_shipped_specs.py``) gave; they were shown to agree on it
before ``checker.verdict`` replaced them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.lang.layout import Layout
from checker.result import Result, Stats, Violation
from checker.verdict import (
    EXIT_INTERRUPTED,
    EXIT_LIMIT,
    EXIT_MISMATCH,
    EXIT_OK,
    NO_VIOLATION,
    Expectation,
    ExpectError,
    exit_code,
    judge,
    parse_expect,
)

P = Path("specs/x.toml")

# raw `[check].expect` values (None: the key left out)
EXPECTS: list[Any] = [None, "pass", "blocked", {"violation": "A"}]
# (explorer outcome, violated property, the front end says the run was refused (blocked))
RUNS: list[tuple[str, str | None, bool]] = [
    ("pass", None, False),
    ("pass", None, True),
    ("violation", "A", False),
    ("violation", "B", False),
    ("violation", "A", True),
    ("limit", None, False),
    ("limit", None, True),
    ("interrupted", None, False),
]
# the verdict's outcome for each run, and whether each expectation (in EXPECTS order) matched
TABLE: list[tuple[str, tuple[bool, bool, bool, bool]]] = [
    ("pass", (True, True, False, False)),
    ("blocked", (True, False, True, False)),
    ("violation", (False, False, False, True)),
    ("violation", (False, False, False, False)),
    ("violation", (False, False, False, True)),
    ("limit", (False, False, False, False)),
    ("limit", (False, False, False, False)),
    ("limit", (False, False, False, False)),
]


def _result(kind: str, violated: str | None) -> Result:
    v = Violation(violated, "invariant", "m") if violated is not None else None
    limit = "--max-states" if kind == "limit" else None
    return Result("x", Layout(), kind, Stats(), violations=[v] if v is not None else [], limit=limit)


def _expectation(raw: Any) -> Expectation:
    return Expectation(NO_VIOLATION) if raw is None else parse_expect(P, raw, ["A", "B"])


@pytest.mark.parametrize("e", range(len(EXPECTS)), ids=lambda e: str(EXPECTS[e]))
@pytest.mark.parametrize("i", range(len(RUNS)), ids=lambda i: str(RUNS[i]))
def test_verdict_table(e: int, i: int) -> None:
    kind, violated, blocked = RUNS[i]
    outcome, matched = TABLE[i]
    v = judge(_expectation(EXPECTS[e]), _result(kind, violated), name="x", path=P, blocked=blocked)
    assert (v.outcome, v.matched) == (outcome, matched[e])
    assert (v.reason is None) == v.matched
    if v.reason is not None:
        assert "\n" not in v.reason
    if kind == "interrupted":
        want = EXIT_INTERRUPTED
    elif kind == "limit":
        want = EXIT_LIMIT  # a run stopped early exits 3, not 1: it did not decide
    else:
        want = EXIT_OK if v.matched else EXIT_MISMATCH
    assert exit_code([v], kind == "interrupted") == want


def test_reasons_say_what_was_expected_and_what_happened() -> None:
    v = judge(_expectation("pass"), _result("violation", "A"), name="x", path=P)
    assert v.reason == "expected pass, got violation of A"
    v = judge(_expectation({"violation": "A"}), _result("pass", None), name="x", path=P)
    assert v.reason == "expected violation of A, got pass"
    v = judge(_expectation("pass"), _result("limit", None), name="x", path=P)
    assert v.reason == "stopped by --max-states before a verdict"


def test_a_mismatch_outranks_a_limit_in_the_exit_code() -> None:
    bad = judge(_expectation("pass"), _result("violation", "A"), name="x", path=P)
    stopped = judge(_expectation("pass"), _result("limit", None), name="y", path=P)
    assert exit_code([stopped, bad], False) == EXIT_MISMATCH
    assert exit_code([stopped, bad], True) == EXIT_INTERRUPTED


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("fail", "check.expect: 'fail' is not allowed"),
        ({"violation": "C"}, "check.expect: unknown property 'C'; allowed: A, B"),
        ({"violated": "A"}, 'check.expect: must be "pass", "blocked", { violation = "NAME" } or '
                            '{ violations = ["NAME", ...] }'),
        ({"violations": []}, "check.expect: violations: must be a non-empty array of property names"),
        ({"violations": ["A", "A"]}, "check.expect: violations: a property is listed twice"),
        ({"violations": ["A", "C"]}, "check.expect: unknown property 'C'"),
        (3, "got 3"),
    ],
)
def test_parse_expect_errors_are_one_line(raw: Any, message: str) -> None:
    with pytest.raises(ExpectError) as info:
        parse_expect(P, raw, ["A", "B"])
    text = str(info.value)
    assert text.startswith(f"{P}: ") and message in text and "\n" not in text


def test_expectation_texts() -> None:
    assert _expectation(None).as_json() is None and _expectation(None).short() == "(no violation)"
    a = _expectation({"violation": "A"})
    assert (a.as_json(), a.short(), str(a)) == ({"violation": "A"}, "violation: A", "violation of A")
    assert (_expectation("blocked").as_json(), str(_expectation("blocked"))) == ("blocked", "blocked")
