"""The shipped migration specs (specs/*.toml): each outcome matches its ``expect``, and the
number of distinct states (and the length of each counterexample) is pinned, so any change
of the model's semantics shows up here and has to be looked at.

To refresh a pinned number after an intended model change, run the spec with
``vfio-migcheck check specs/NAME.toml --json -`` and copy ``distinct_states``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from checker.explore import explore
from checker.verdict import Verdict
from cli.load import Target, load_target
from model.decision.tracking import Method
from model.scenario import MUTATIONS, Scenario

SPECS = Path(__file__).resolve().parent.parent / "specs"

# name: (distinct states, states in the counterexample or None)
PINNED: dict[str, tuple[int, int | None]] = {
    "all-dirty-10.2-loses-pages": (650, 28),
    "all-dirty-9.1": (575, None),
    "auto-without-dirty-tracking-blocked": (2, None),
    "cancel-recovers": (3997, None),
    "device-faults-source-recovers": (10732, None),
    "device-tracking-off-uses-iommufd": (1727, None),
    "dma-logging-vf": (2611, None),
    "dst-validation-fault-runs-unloaded": (164, 24),
    "iommufd-hw-dirty": (1727, None),
    "mixed-container-type1": (321, None),
    "mutation-allow-viommu-device-tracking-rule": (3, 2),
    "mutation-allow-viommu-device-tracking": (11533, 30),
    "mutation-device-logging-for-mixed-container": (452, 46),
    "mutation-no-final-sync-opt-out": (418, 27),
    "mutation-no-final-sync": (1860, 27),
    "mutation-no-recovery-on-cancel": (10, 6),
    "mutation-no-unmap-dirty-query-early": (147, 11),
    "mutation-no-unmap-dirty-query": (1953, 29),
    "mutation-retry-keeps-cleared-bits": (279, 37),
    "mutation-skip-p2p-prepare": (79, 25),
    "mutation-sync-before-devices-stop": (512, 28),
    "mutation-type1-ignores-unpinned-groups": (216, 28),
    "no-precopy-sync": (843, None),
    "precopy-tracking-opt-out": (2911, None),
    "qemu-8.0-single-vf": (2847, None),
    "query-faults-fail-migration": (2018, None),
    "retry-after-cancel": (7993, None),
    "two-vfs-8.1-blocked": (2, None),
    "two-vfs-p2p-8.2": (711, None),
    "two-vfs-three-pages-cancel": (215834, None),
    "two-vfs-without-p2p-blocked": (2, None),
    "type1-pinned-scope": (497, None),
    "type1-unpinned": (575, None),
    "viommu-10.2-blocks-every-device": (18, None),
    "viommu-device-tracking-blocked": (18, None),
    "viommu-iommufd-unmap-query": (3795, None),
    "viommu-type1-unmap-query": (1779, None),
}


def spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.toml"))


ENGINE_SPECS = sorted((SPECS / "engine").glob("*.toml"))


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


def test_every_shipped_spec_is_pinned() -> None:
    assert sorted(p.stem for p in spec_files()) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_shipped_spec_outcome_and_state_count(name: str) -> None:
    scenario, verdict = checked(name)
    result = verdict.result
    assert scenario.description.strip(), "every shipped spec says what it shows"
    assert scenario.check.expect is not None, "every shipped spec states its expected outcome"
    assert verdict.matched, (name, verdict.reason)
    distinct, trace_len = PINNED[name]
    assert result.stats.distinct == distinct
    assert (len(result.violation.trace) if result.violation else None) == trace_len


@pytest.mark.parametrize("name", sorted(PINNED))
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


@pytest.mark.parametrize("name", sorted(PINNED))
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
