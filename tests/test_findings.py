"""QEMU findings: affected releases come from running each spec on every profile, the fixes
run as profile overrides, and the command and the report page show them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.findings import AFFECTED, BLOCKED, NOT_APPLICABLE, PASSES, findings_page, run_finding
from cli.main import main
from model.findings import QEMU_FINDINGS, finding
from model.profiles import PROFILE_NAMES

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def _run(name: str):
    return run_finding(finding(name), SPECS / f"{name}.toml")


def _outcomes(fr) -> dict[str, str]:
    return {r.label: r.outcome for r in fr.releases}


def test_every_finding_is_a_shipped_spec_expecting_a_violation() -> None:
    for f in QEMU_FINDINGS:
        data = tomllib.loads((ROOT / f.spec).read_text())
        assert "violation" in data["check"]["expect"], f.name
        assert f.path and f.checked and f.fix


def test_the_all_dirty_regression_affects_10_0_on_and_its_fix_passes() -> None:
    fr = _run("all-dirty-10.2-loses-pages")
    assert fr.affected == ("10.0", "10.1", "10.2", "master")
    out = _outcomes(fr)
    assert out["9.0"] == out["9.1"] == out["9.2"] == PASSES
    # the spec's iommufd host does not exist before 9.0: the loader's refusal, not a verdict
    assert out["8.0"] == out["8.1"] == out["8.2"] == NOT_APPLICABLE
    assert fr.fix is not None and fr.fix.outcome == PASSES
    assert "unsupported_container_counts_as_started = true" in fr.fix.label
    assert fr.own.result is not None and fr.own.result.violation is not None
    assert fr.own.result.violation.length == 29 and fr.holds


def test_the_compat_container_has_the_regression_from_10_0_only() -> None:
    fr = _run("iommufd-compat-10.0-loses-pages")
    assert fr.affected == ("10.0", "10.1", "10.2", "master")
    assert all(_outcomes(fr)[r] == PASSES for r in PROFILE_NAMES[:6])
    assert fr.fix is not None and fr.fix.outcome == PASSES


def test_mixed_hwpts_lose_pages_from_9_1_and_9_0_blocks() -> None:
    fr = _run("iommufd-mixed-hwpt-loses-pages")
    assert fr.affected == PROFILE_NAMES[PROFILE_NAMES.index("9.1"):]
    assert _outcomes(fr)["9.0"] == BLOCKED  # no IOMMU dirty tracking under auto in 9.0
    assert fr.fix is None and fr.holds


def test_the_destination_validation_finding_on_every_release_with_auto() -> None:
    fr = _run("dst-validation-fault-runs-unloaded")
    # 8.0's x-enable-migration defaults off: no migration at all
    assert _outcomes(fr)["8.0"] == BLOCKED
    assert fr.affected == PROFILE_NAMES[1:]
    # the fix QEMU's comment asks for: a failed vm_start callback aborts the incoming side
    assert fr.fix is not None and fr.fix.outcome == PASSES and fr.holds


def test_a_release_that_does_not_show_it_is_computed_not_listed(tmp_path: Path) -> None:
    # The same spec patched with the fix on its base: every release run, none affected.
    text = (SPECS / "all-dirty-10.2-loses-pages.toml").read_text()
    text = text.replace('qemu = "10.2"', 'qemu = "9.2"')
    path = tmp_path / "all-dirty-10.2-loses-pages.toml"
    path.write_text(text)
    fr = run_finding(finding("all-dirty-10.2-loses-pages"), path)
    assert fr.release == "9.2" and not fr.own.affected and not fr.holds
    assert fr.affected == ("10.0", "10.1", "10.2", "master")


def test_the_command_prints_and_writes_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # a directory of its own, with specs/ in it
    Path("specs").symlink_to(SPECS)
    res = runner.invoke(main, ["findings", "all-dirty-10.2-loses-pages", "--json", "-"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc[0]["affected_releases"] == ["10.0", "10.1", "10.2", "master"]
    assert doc[0]["releases"]["9.2"]["outcome"] == PASSES
    assert doc[0]["trace_length"] == 29 and doc[0]["fix"]["outcome"] == PASSES
    res = runner.invoke(main, ["findings", "dst-validation-fault-runs-unloaded",
                               "iommufd-mixed-hwpt-loses-pages"])
    assert res.exit_code == 0
    assert "affected releases: 8.1 .. master" in res.output
    assert "dst_vm_start_failure_aborts = true }: passes" in res.output
    assert "fix: not checked" in res.output  # the mixed hwpts: no flag models a fix


def test_an_unknown_finding_is_exit_2() -> None:
    res = CliRunner().invoke(main, ["findings", "no-such-finding"])
    assert res.exit_code == 2
    assert 'unknown finding "no-such-finding"; allowed: all-dirty-10.2-loses-pages' in res.output


def test_the_page_lists_each_finding_with_its_runs() -> None:
    fr = _run("all-dirty-10.2-loses-pages")
    page = findings_page([fr])
    assert page.path == "findings/index"
    titles = [getattr(b, "title", None) for b in page.blocks]
    assert fr.finding.title in titles
    rows = page.blocks[0].rows  # type: ignore[union-attr]
    assert rows[0][2] == "10.0 .. master"
    assert AFFECTED in {r.outcome for r in fr.releases}


@pytest.mark.parametrize("name", [f.name for f in QEMU_FINDINGS])
def test_every_finding_holds(name: str) -> None:
    assert _run(name).holds
