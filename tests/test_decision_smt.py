"""The z3 decision tables equal model.decision.tracking.decide() configuration by configuration, and
the properties proved for any number of devices hold (and fail when a mutation breaks
them)."""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from model.decision.proofs import DEVICE_PROPERTIES, prove_all, prove_any_devices
from model.decision.smt import DECISION_MUTATIONS
from model.decision.space import MAX_TABLE_DEVICES, ConfigSpace, count_configurations
from model.decision.tables import Table, check_columns, decision_table, evaluate, outcome_of
from model.decision.tracking import decide
from model.profiles import PROFILE_NAMES, get_profile


@cache
def table(profile: str, devices: int, kind: str) -> Table:
    return decision_table(profile, devices, kind)


def _matching_rows(t: Table, space: ConfigSpace, configs: list[dict[str, str]]) -> np.ndarray:
    """For each configuration the index of the first row it matches (-1: none), vectorised."""
    keys = [v.key for v in space.vars]
    codes = np.array([[space.var(k).values.index(c[k]) for k in keys] for c in configs])
    first = np.full(len(configs), -1)
    for i, row in enumerate(t.rows):
        ok = np.ones(len(configs), dtype=bool)
        for k, allowed in row.conditions.items():
            idx = [space.var(k).values.index(v) for v in allowed]
            ok &= np.isin(codes[:, keys.index(k)], idx)
        first = np.where((first < 0) & ok, i, first)
    return first


def _agree(t: Table, row_index: int, explicit: dict) -> None:
    row = t.rows[row_index]
    if t.kind == "method":
        assert (row.outcome["method"], row.outcome["type1_reports"]) == (
            explicit["method"], explicit["type1_reports"])
    else:
        assert row.outcome["verdict"] == explicit["verdict"]
        assert row.outcome["first_blocker"] == explicit["first_blocker"]
        always = set(row.outcome["blockers"])
        assert always <= explicit["blockers"] <= always | set(row.outcome["blockers_possible"])


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@pytest.mark.parametrize("devices", [1, 2])
def test_tables_equal_decide_on_every_configuration(profile, devices):
    """Exhaustive: every configuration of the tables' space, decided by tracking.decide()."""
    space = ConfigSpace(get_profile(profile), devices)
    configs = list(space.configurations())
    assert len(configs) == space.size()
    explicit = [outcome_of(decide(space.scenario(c))) for c in configs]
    for kind in ("method", "blockers"):
        t = table(profile, devices, kind)
        assert t.configurations == len(configs)
        first = _matching_rows(t, space, configs)
        assert (first >= 0).all(), "the rows cover every configuration"
        for i, e in zip(first, explicit, strict=True):
            _agree(t, int(i), e)


def _random_configs(space: ConfigSpace, n: int, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append({v.key: v.values[rng.integers(len(v.values))] for v in space.vars})
    return out


@pytest.mark.parametrize("profile, devices, sample", [
    ("8.1", 3, None),  # all 27,648 configurations
    ("8.1", 4, 3000),
    ("8.2", 3, 300),
    ("9.1", 3, 300),
])
def test_tables_for_more_devices(profile, devices, sample):
    space = ConfigSpace(get_profile(profile), devices)
    configs = (list(space.configurations()) if sample is None
               else _random_configs(space, sample, seed=devices))
    explicit = [outcome_of(decide(space.scenario(c))) for c in configs]
    for kind in ("method", "blockers"):
        t = table(profile, devices, kind)
        first = _matching_rows(t, space, configs)
        assert (first >= 0).all(), "the rows cover every configuration"
        for i, e in zip(first, explicit, strict=True):
            _agree(t, int(i), e)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_merged_columns_lose_nothing(profile):
    """dma_logging and x-device-dirty-page-tracking enter the decision only together."""
    for n in range(1, MAX_TABLE_DEVICES + 1):
        assert check_columns(profile, n)


def test_row_counts_are_the_configurations_they_cover():
    t = table("master", 1, "blockers")
    space = ConfigSpace(get_profile("master"), 1)
    configs = list(space.configurations())
    for row in t.rows:
        n = sum(row.matches(c) for c in configs)
        assert n == row.configurations == count_configurations(space, row.conditions)


@st.composite
def raw_configuration(draw):
    profile = draw(st.sampled_from(PROFILE_NAMES))
    n = draw(st.integers(1, MAX_TABLE_DEVICES))
    space = ConfigSpace(get_profile(profile), n, raw=True)
    config = {v.key: draw(st.sampled_from(v.values)) for v in space.vars}
    mutations = draw(st.sets(st.sampled_from(DECISION_MUTATIONS)))
    return space, config, frozenset(mutations)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_configuration())
def test_z3_decision_equals_decide_up_to_four_devices(case):
    """Every setting as a spec file has it (dma_logging and the property separately), with
    the decision mutations, for 1 to 4 devices."""
    space, config, mutations = case
    z = evaluate(space, config, mutations)
    e = outcome_of(decide(space.scenario(config, mutations)))
    assert z == e


# --- any number of devices -------------------------------------------------------------


def test_properties_hold_for_any_number_of_devices():
    proofs = prove_all()
    assert len(proofs) == len(PROFILE_NAMES) * len(DEVICE_PROPERTIES)
    assert all(p.holds for p in proofs), [p for p in proofs if not p.holds]
    assert all(set(p.queries) == {"initiation", "consecution", "implication"} for p in proofs)


@pytest.mark.parametrize("mutation, prop", [
    ("allow_viommu_device_tracking", "NoActiveLoggingWithViommu"),
    ("device_logging_for_mixed_container", "LoggingNeedsEveryDevice"),
])
@pytest.mark.parametrize("profile", ["8.0", "9.1", "master"])
def test_a_mutation_breaks_its_property_with_a_real_configuration(mutation, prop, profile):
    p = get_profile(profile)
    spec = next(d for d in DEVICE_PROPERTIES if d.name == prop)
    proof = prove_any_devices(p, spec, mutations=[mutation])
    assert not proof.holds and proof.counterexample is not None
    # the failure is not only inductive: decide() with the mutation agrees on a config
    assert proof.witness is not None
    n = 1 + max(int(k[3]) for k in proof.witness if k.startswith("dev"))
    space = ConfigSpace(p, n, raw=True)
    d = decide(space.scenario(proof.witness, [mutation]))
    if prop == "NoActiveLoggingWithViommu":
        assert d.method.value == "device-dma-logging" and not d.blocked
    else:
        assert d.method.value == "device-dma-logging"
        assert not all(dev.dma_logging for dev in space.scenario(proof.witness).devices)


def test_the_induction_needs_its_strengthening():
    """Without the strengthening the multi-device property is not inductive: z3 returns a
    counterexample to induction, which is not a real configuration."""
    weak = dataclasses.replace(
        next(d for d in DEVICE_PROPERTIES if d.name == "MultiDeviceNeedsP2P"),
        strengthening=lambda p, g, s: True)
    proof = prove_any_devices("8.2", weak)
    assert not proof.holds and proof.failed_query == "implication"
    assert proof.witness is None


# --- the command ---------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_tables_command_json_matches_the_library():
    r = run("tables", "--profile", "8.2", "--devices", "2", "--format", "json", "--prove")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["version"] == 1
    assert [(t["devices"], t["kind"]) for t in doc["tables"]] == [
        (1, "method"), (1, "blockers"), (2, "method"), (2, "blockers")]
    lib = table("8.2", 2, "blockers").as_json()
    assert doc["tables"][3]["rows"] == lib["rows"]
    assert all(p["holds"] for p in doc["proofs"]) and len(doc["proofs"]) == 3


def test_tables_command_text_and_markdown():
    r = run("tables", "--profile", "master", "--devices", "1", "--kind", "method")
    assert r.exit_code == 0
    assert "device-dma-logging" in r.stdout and "iommufd-hw" in r.stdout
    r = run("tables", "--profile", "8.0", "--devices", "1", "--format", "markdown")
    assert r.exit_code == 0 and "| verdict |" in r.stdout.replace("| verdict | first", "| verdict |")


def test_tables_command_rejects_more_than_four_devices():
    r = CliRunner().invoke(main, ["tables", "--devices", "5"])
    assert r.exit_code == 2
