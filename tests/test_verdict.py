"""The four judges of "does the outcome match ``expect``" agree, on every combination of
expectation and outcome (before they are replaced by ``checker.verdict``).

The judges: ``model.scenario`` (``Expect.matches`` / ``CheckConfig.matches``), the engine
examples' ``Expectation`` from ``checker.examples.loader.parse_expect`` as ``cli.check``
judges it (``judge`` / ``exit_code``), and ``outcome()`` of ``tests/test_shipped_specs.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_shipped_specs import outcome

from checker.examples.loader import parse_expect
from checker.lang.layout import Layout
from checker.result import Result, Stats, Violation
from cli.check import Target, exit_code, judge
from model.scenario import CheckConfig, Expect

P = Path("specs/x.toml")

# raw `[check].expect` values (None: the key left out)
EXPECTS: list[Any] = [None, "pass", "blocked", {"violation": "A"}]
# (explorer outcome, violated property, QEMU's decision blocks the migration)
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


def _result(kind: str, violated: str | None) -> Result:
    v = Violation(violated, "invariant", "m") if violated is not None else None
    limit = "--max-states" if kind == "limit" else None
    return Result("x", Layout(), kind, Stats(), violation=v, limit=limit)


def _scenario_expect(raw: Any) -> Expect | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        return Expect("violation", raw["violation"])
    return Expect(raw)


class _FakeSpec:
    def __init__(self, blocked: bool) -> None:
        self.info = {"blocked": blocked}


@pytest.mark.parametrize("raw", EXPECTS, ids=str)
@pytest.mark.parametrize(("kind", "violated", "blocked"), RUNS, ids=str)
def test_old_judges_agree(raw: Any, kind: str, violated: str | None, blocked: bool) -> None:
    result = _result(kind, violated)
    # cli.check: the loader's Expectation (no expect: "no-violation", as load_target builds it)
    if raw is None:
        from checker.examples.loader import Expectation

        expectation = Expectation("no-violation")
    else:
        expectation = parse_expect(P, raw, ["A", "B"])
    target = Target(P, "x", None, expectation, {"blocked": blocked})  # type: ignore[arg-type]
    checked = judge(target, result)
    # model.scenario, fed the outcome the shipped-spec test computes
    seen = outcome(_FakeSpec(blocked), result)  # type: ignore[arg-type]
    config = CheckConfig(expect=_scenario_expect(raw))
    by_scenario = config.matches(seen, violated)
    if kind in ("limit", "interrupted"):
        # a run stopped early never matches; check exits 3 (130 on Ctrl-C), not 1
        assert not checked.matched and not by_scenario
        assert exit_code([checked], kind == "interrupted") == (130 if kind == "interrupted" else 3)
        return
    assert checked.outcome == seen
    assert checked.matched == by_scenario
    if raw is not None:
        assert _scenario_expect(raw).matches(seen, violated) == checked.matched
    assert exit_code([checked], False) == (0 if checked.matched else 1)
