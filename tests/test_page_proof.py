"""The per-page proof: every shipped spec is proved for any number of pages or refuted where
it expects a violation (every mutation of docs/design.md#mutations with a counterexample to induction);
the reduction's premise (pages interact only through operations that treat them alike)
holds action by action; the proof is not vacuous."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import prove as prove_cmd
from cli.main import main
from cli.prove import (
    CLAIM,
    _check_separation,
    _prove_class,
    _reachable_control,
    prove_scenario,
)
from model.contract import MUTATIONS, PROPERTY_KINDS
from model.migration.page_proof import (
    expected_group,
    obligation,
    page_classes,
)
from model.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SHIPPED = sorted(SPECS.glob("*.toml"))


@cache
def scenario(name: str) -> Scenario:
    return load_scenario(SPECS / f"{name}.toml")


@cache
def proof_of(path: Path):
    return prove_scenario(load_scenario(path))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_spec_is_proved_or_refuted_as_expected(path):
    sc = load_scenario(path)
    r = proof_of(path)
    assert r.matched, prove_cmd.render(r)
    exp = sc.check.expect
    if exp is None or exp.kind != "violation":
        assert r.outcome == "proved"
        assert all(c.holds for c in r.classes)
        assert {"initiation", "consecution", "implication"} <= set(r.classes[0].seconds)
    elif PROPERTY_KINDS[exp.invariant] == "liveness":
        # induction decides no liveness property: prove says so and skips the spec
        assert r.outcome == "skipped" and "use check" in r.message
    else:
        assert r.outcome == "refuted"
        bad = next(c for c in r.classes if not c.holds)
        assert bad.cti is not None and set(bad.cti.violated) & set(expected_group(exp.invariant))


def test_every_mutation_is_refuted_by_a_counterexample_to_induction():
    seen = set()
    for path in SHIPPED:
        sc = load_scenario(path)
        exp = sc.check.expect
        if not sc.mutations or exp is None or exp.kind != "violation":
            continue
        r = proof_of(path)
        assert r.outcome == "refuted" and r.matched
        cti = next(c for c in r.classes if not c.holds).cti
        assert cti.query == "consecution" and cti.action and cti.after is not None
        # the state before satisfies the invariant, the one after breaks the property
        assert cti.before != cti.after
        seen |= sc.mutations
    assert seen == set(MUTATIONS)


@pytest.mark.parametrize("name", ["mutation-no-final-sync", "mutation-type1-ignores-unpinned-groups",
                                  "mutation-no-recovery-on-cancel"])
def test_without_its_mutation_the_same_spec_is_proved(name):
    import dataclasses

    sc = scenario(name)
    fixed = dataclasses.replace(sc, mutations=frozenset(),
                                check=dataclasses.replace(sc.check, expect=None))
    assert prove_scenario(fixed).outcome == "proved"


# --- the reduction's premise ---------------------------------------------------------


def test_the_reduction_premise_is_proved_and_the_check_can_fail():
    """z3 proves "page 1 never influences page 0" on a plain guest; with a vIOMMU the same
    per-bit check fails (IOVA slots link pages), which is why prove does not claim it
    there and the docstring of model.migration.page_proof says so."""
    plain = scenario("two-vfs-p2p-8.2")
    assert _check_separation(obligation(plain, page_classes(plain)[0]), 60_000) == []
    vi = scenario("viommu-type1-unmap-query")
    ob = obligation(vi, page_classes(vi)[0])
    assert not ob.separation_checkable
    failures = _check_separation(ob, 60_000)
    assert failures and all("guard reads page 1" in f for f in failures)
    assert any(f.startswith("DmaWrite") for f in failures)


def test_every_plain_spec_had_its_premise_checked():
    for path in SHIPPED:
        sc = load_scenario(path)
        r = proof_of(path)
        for c in r.classes:
            assert (c.separation is None) == sc.vm.viommu
            if c.separation is not None:
                assert c.separation == []


# --- the proof is checked, and not vacuous --------------------------------------------


def test_the_control_set_is_checked_not_trusted():
    sc = scenario("dma-logging-vf")
    ob = obligation(sc, page_classes(sc)[0])
    rows, _ = _reachable_control(ob, None)
    # drop a combination that is reached only after some step: the step into it leaves
    # Control, and z3 says so
    initial = np.array([ob.spec.layout.raw(ob.spec.init_rows()[0])[k] for k in ob.control_keys])
    keep = [r for r in rows if not (r == initial).all()]
    drop = len(keep) // 2
    proof = _prove_class(ob, (), timeout_ms=60_000, max_seconds=None,
                         control_rows=np.array(keep[:drop] + keep[drop + 1:] + [initial]))
    assert not proof.holds and proof.cti.query == "consecution" and "Control" in proof.cti.violated


def test_the_page_strengthening_is_needed(monkeypatch):
    real = prove_cmd.page_invariants

    def weaker(ob):
        return {k: v for k, v in real(ob).items() if k not in ("FinalSyncCaught", "RestSent")}

    monkeypatch.setattr(prove_cmd, "page_invariants", weaker)
    r = prove_scenario(scenario("dma-logging-vf"))
    assert r.outcome == "refuted"
    assert r.classes[0].cti.violated  # a counterexample to induction names what breaks


def test_page_classes_follow_writers_and_pins():
    sc = scenario("two-vfs-three-pages-cancel")
    classes = page_classes(sc)
    assert sorted(p for c in classes for p in c.pages) == list(range(sc.vm.pages))
    for c in classes:
        for p in c.pages:
            assert c.writers == tuple(d.name for d in sc.devices if p in d.dma_pages)


# --- the command ---------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_prove_command_proves_and_prints_the_claim_with_timings():
    r = run("prove", str(SPECS / "type1-unpinned.toml"))
    assert r.exit_code == 0, r.output
    assert CLAIM in r.stdout and "consecution" in r.stdout and " s" in r.stdout


def test_prove_command_prints_a_readable_counterexample_to_induction():
    r = run("prove", str(SPECS / "mutation-no-final-sync.toml"))
    assert r.exit_code == 0, r.output  # refuted, as the spec expects
    out = r.stdout
    assert "counterexample to induction" in out
    assert "state before:" in out and "action: " in out and "state after (what changed):" in out


def test_prove_command_json_and_mismatch_exit_code(tmp_path):
    text = (SPECS / "mutation-no-final-sync.toml").read_text()
    bad = tmp_path / "claims-pass.toml"
    # (a pass has no counterexample, so its trace_length pin goes too)
    text = re.sub(r"\ntrace_length = \d+", "", text)
    bad.write_text(text.replace('expect = { violation = "NoPageLost" }', 'expect = "pass"'))
    r = run("prove", str(bad), str(SPECS / "dma-logging-vf.toml"), "--json", "-")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["version"] == 1
    a, b = doc["results"]
    assert (a["outcome"], a["matched"]) == ("refuted", False)
    assert (b["outcome"], b["matched"], b["claim"]) == ("proved", True, CLAIM)
    cls = b["classes"][0]
    assert set(cls["seconds"]) == {"control", "separation", "initiation", "consecution", "implication"}
    assert a["classes"][0]["cti"]["query"] == "consecution"


def test_prove_command_user_errors_exit_2():
    r = CliRunner().invoke(main, ["prove", str(ROOT / "tests/fixtures/bad_specs/unknown_profile.toml")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "unknown_profile.toml" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["prove", str(SPECS / "engine" / "tcommit-3.toml")])
    assert r.exit_code == 2 and "not a VFIO migration scenario" in r.output
    r = CliRunner().invoke(main, ["prove", "no/such/file.toml"])
    assert r.exit_code == 2
