"""The shipped specs (specs/*.toml, specs/engine/*.toml): each outcome matches its
``expect``, and each spec's ``[check]`` pins the exact figures of its exploration
(``distinct_states``, ``generated_states``, ``depth`` and, for an expected violation, the
counterexample's ``trace_length``), so any change of the model's semantics shows up here and
in ``vfio-migcheck check`` and has to be looked at.

To refresh a pin after an intended model change, run the spec with
``vfio-migcheck check specs/NAME.toml --json -`` and copy the figures from ``stats``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from checker.explore import explore
from checker.verdict import Verdict
from cli.load import Target, load_target
from model.contract import MUTATIONS
from model.decision.tracking import Method
from model.scenario import Scenario

SPECS = Path(__file__).resolve().parent.parent / "specs"

def spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.toml"))


ENGINE_SPECS = sorted((SPECS / "engine").glob("*.toml"))


def test_scenario_and_verdict_pin_the_same_keys() -> None:
    """model.scenario may not import checker.verdict, so it names the pin keys itself."""
    from checker.verdict import PIN_KEYS
    from model.scenario import PIN_KEYS as SCENARIO_PIN_KEYS

    assert SCENARIO_PIN_KEYS == tuple(PIN_KEYS)


@cache
def target(path: Path) -> Target:
    return load_target(path)


def scenario_of(path: Path) -> Scenario:
    migration = target(path).migration
    assert migration is not None, path
    return migration.scenario


@cache
def checked(name: str) -> tuple[Scenario, Verdict]:
    path = SPECS / f"{name}.toml"
    t = target(path)
    return scenario_of(path), t.judge(explore(t.spec))


NAMES = [p.stem for p in spec_files()]


@pytest.mark.parametrize("path", spec_files() + ENGINE_SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_is_pinned(path: Path) -> None:
    pins = target(path).expectation.pins
    wanted = {"distinct_states", "generated_states", "depth"}
    if target(path).expectation.kind == "violation":
        wanted.add("trace_length")
    assert set(pins.stated()) == wanted


@pytest.mark.parametrize("name", NAMES)
def test_shipped_spec_outcome_and_state_count(name: str) -> None:
    scenario, verdict = checked(name)
    result = verdict.result
    assert scenario.description.strip(), "every shipped spec says what it shows"
    assert scenario.check.expect is not None, "every shipped spec states its expected outcome"
    assert verdict.matched, (name, verdict.reason)
    # the pins, read from the file, compared here too (not only through the verdict)
    check = scenario.check
    assert (result.stats.distinct, result.stats.generated, result.stats.depth) == (
        check.distinct_states, check.generated_states, check.depth)
    if isinstance(check.trace_length, dict):  # one per expected property: each its own trace
        lengths = {v.name: v.length for v in result.violations}
        assert {k: lengths.get(k) for k in check.trace_length} == check.trace_length
    else:
        assert (result.violation.length if result.violation else None) == check.trace_length


@pytest.mark.parametrize("name", NAMES)
def test_unblocked_passing_specs_can_complete(name: str) -> None:
    scenario, verdict = checked(name)
    result = verdict.result
    if verdict.outcome != "pass":
        return
    assert result.properties["MigrationCanComplete"] == "ok"
    assert result.witnesses["MigrationCanComplete"] is not None
    if scenario.check.invariants is None or "MigrationEnds" in scenario.check.invariants:
        assert result.properties["MigrationEnds"] == "ok"


def test_every_mutation_is_shown_breaking_its_property() -> None:
    shown: dict[str, set[str]] = {}
    for path in spec_files():
        sc = scenario_of(path)
        if sc.check.expect is not None and sc.check.expect.kind == "violation":
            for m in sc.mutations:
                shown.setdefault(m, set()).add(str(sc.check.expect.invariant))
    for name, mutation in MUTATIONS.items():
        assert mutation.violates in shown.get(name, set()), name


def test_suite_covers_methods_profiles_and_blockers() -> None:
    methods: set[str] = set()
    profiles: set[str] = set()
    blocked_by: set[str] = set()
    for path in spec_files():
        t = target(path)
        sc = scenario_of(path)
        profiles.add(sc.qemu)
        blocked_by.update(t.blocked_by)
        if not t.blocked and not sc.mutations:
            methods.add(t.tracking_method)
    assert methods == {m.value for m in Method}
    assert {"8.0", "8.1", "8.2", "9.1", "10.2", "master"} <= profiles
    assert {"no-dirty-tracking", "multiple-devices", "multiple-devices-without-p2p",
            "viommu"} <= blocked_by


@pytest.fixture(scope="module")
def check_json() -> dict[str, dict]:
    """``vfio-migcheck check specs --json -``: what the main CI job sees, by file stem."""
    import json

    from click.testing import CliRunner

    from cli.main import main

    r = CliRunner().invoke(main, ["check", str(SPECS), "-q", "--json", "-"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return {Path(res["file"]).stem: res for res in json.loads(r.stdout)["results"]}


def _agrees(res: dict, verdict: Verdict) -> None:
    r = verdict.result
    assert (res["outcome"], res["matched"]) == (verdict.outcome, verdict.matched)
    assert res["violated"] == (r.violation.name if r.violation else None)
    stats = res["stats"]
    assert (stats["distinct_states"], stats["generated_states"], stats["depth"]) == (
        r.stats.distinct, r.stats.generated, r.stats.depth)


@pytest.mark.parametrize("name", NAMES)
def test_check_command_agrees_on_shipped_spec(name: str, check_json: dict[str, dict]) -> None:
    """``check`` (cli.check, through cli.load and checker.verdict) gives every shipped spec
    the verdict and figures this test gives it."""
    _, verdict = checked(name)
    _agrees(check_json[name], verdict)
    assert check_json[name]["tracking_method"] == target(SPECS / f"{name}.toml").tracking_method


@pytest.mark.parametrize("path", ENGINE_SPECS, ids=lambda p: p.stem)
def test_check_command_agrees_on_engine_spec(path: Path, check_json: dict[str, dict]) -> None:
    t = target(path)
    verdict = t.judge(explore(t.spec))
    assert verdict.matched, verdict.reason
    _agrees(check_json[path.stem], verdict)
