"""cloud-hypervisor as a second VMM (issue 12): its shipped specs, its spec-file keys, and
the pieces it shares with QEMU's model (the property code, the kernel's step function).

The specs under specs/cloud-hypervisor/ state what cloud-hypervisor's code does at
ae44c2971c83 (model/cloud_hypervisor/); each cites the file, function and commit it models.
"""

from __future__ import annotations

import inspect
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.explore import explore
from cli.load import Target, load_target
from cli.main import main
from model.cloud_hypervisor.config import make_config as ch_config
from model.cloud_hypervisor.decision import MIGRATION_UNSUPPORTED, decide
from model.cloud_hypervisor.spec import build_spec as ch_build_spec
from model.contract import Property
from model.decision.tracking import decide as qemu_decide
from model.fsm.kernel.builtin import default_kernel
from model.fsm.kernel.load import load_kernel
from model.fsm.kernel.step import step_table
from model.migration.config import make_config as qemu_config
from model.migration.spec import build_spec as qemu_build_spec
from model.protocol import props
from model.scenario import SpecError, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
CH_SPECS = sorted((ROOT / "specs" / "cloud-hypervisor").glob("*.toml"))
KERNELS = ROOT / "tests" / "fixtures" / "kernel"
P = Path("specs/x.toml")


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@cache
def target(path: Path) -> Target:
    return load_target(path)


# ------------------------------------------------------------------ the shipped specs

def test_the_issue_s_scenarios_are_shipped() -> None:
    names = {p.stem for p in CH_SPECS}
    assert {"ch-single-vf", "ch-viommu-refused", "ch-no-dma-logging-refused",
            "ch-two-p2p-devices", "ch-pause-failure-stalls-vm", "ch-late-error-split-brain",
            "ch-complete-paused-load-failure", "ch-preserve-source-unmigratable",
            "ch-postcopy"} <= names


@pytest.mark.parametrize("path", CH_SPECS, ids=lambda p: p.stem)
def test_shipped_spec_matches_and_cites_the_code(path: Path) -> None:
    t = target(path)
    assert t.migration is not None and t.migration.scenario.is_cloud_hypervisor
    verdict = t.judge(explore(t.spec))
    assert verdict.matched, verdict.reason
    pins = t.expectation.pins.stated()
    wanted = {"distinct_states", "generated_states", "depth"}
    if t.expectation.kind == "violation":
        wanted.add("trace_length")
    assert set(pins) == wanted
    text = t.spec.description
    # a file of the cloud-hypervisor tree, a function in it, and the commit read
    assert re.search(r"\b(pci|vmm|vm-migration)/src/\w+\.rs\b", text), text
    assert re.search(r"\b\w+(::\w+)*\(\)", text), text
    assert "ae44c2971c83" in text


def test_check_over_the_directory_matches_every_expectation() -> None:
    r = run("check", str(ROOT / "specs" / "cloud-hypervisor"), "-q", "--json", "-")
    assert r.exit_code == 0, r.output
    results = json.loads(r.stdout)["results"]
    assert len(results) == len(CH_SPECS) and all(res["matched"] for res in results)
    by = {res["spec"]: res for res in results}
    assert by["ch-viommu-refused"]["blocked_by"] == ["viommu"]
    assert by["ch-no-dma-logging-refused"]["blocked_by"] == ["no-dirty-tracking"]
    assert by["ch-single-vf"]["tracking_method"] == "device-dma-logging"
    assert by["ch-postcopy"]["tracking_method"] is None


@pytest.mark.parametrize("name, prop, step", [
    # the shortest counterexample ends in the step the finding is about
    ("ch-two-p2p-devices", "P2PQuiescedBeforeStop", "Finish"),
    ("ch-pause-failure-stalls-vm", "SourceRecovers", "StopDirtyLog"),
    ("ch-late-error-split-brain", "NoSplitBrain", "ResumeVcpus"),
    ("ch-complete-paused-load-failure", "DestinationStartsLoaded", "UserResumeVcpus"),
    ("ch-preserve-source-unmigratable", "DestinationStartsLoaded", "DstResumeVcpus"),
])
def test_findings_have_readable_counterexamples(name: str, prop: str, step: str) -> None:
    t = target(ROOT / "specs" / "cloud-hypervisor" / f"{name}.toml")
    r = explore(t.spec)
    assert r.violation is not None and r.violation.name == prop
    labels = [s.action for s in r.violation.trace]
    assert labels[-1] == step, labels
    assert labels[1] == "MigrateStart"


def test_pause_failure_leaves_vcpus_paused_with_vmstate_running() -> None:
    t = target(ROOT / "specs" / "cloud-hypervisor" / "ch-pause-failure-stalls-vm.toml")
    r = explore(t.spec)
    assert r.violation is not None
    last = r.violation.trace[-1].state(t.spec.layout)
    assert (last["src_run"], last["status"], last["pc"]) == ("vcpus-paused", "failed", "idle")
    assert "Resume(dev=vf0)" not in [s.action for s in r.violation.trace]


# ------------------------------------------------------------------ shared pieces

QEMU_P2P = {"qemu": "8.1", "vm": {"pages": 1},
            "devices": [{"name": "vf0", "features": ["p2p"], "dma_logging": True}]}
CH_P2P = {"vmm": "cloud-hypervisor", "vm": {"pages": 1},
          "devices": [{"name": "vf0", "features": ["p2p"], "dma_logging": True}]}


def test_one_property_code_serves_both_vmms() -> None:
    """Every property of both VMMs' specs is a closure made by model/protocol/props.py; no
    other module of model/ defines one."""
    q = qemu_build_spec(scenario_from_dict(QEMU_P2P, P))
    c = ch_build_spec(scenario_from_dict(CH_P2P, P))
    for spec in (q, c):
        preds = [*spec.invariants.values(), *spec.action_invariants.values(),
                 *(lv.predicate for lv in spec.liveness.values())]
        assert set(spec.invariants) >= {Property.NO_PAGE_LOST, Property.SOURCE_RECOVERS,
                                        Property.DESTINATION_STARTS_LOADED, Property.NO_SPLIT_BRAIN}
        for f in preds:
            owner = getattr(f, "__self__", None)
            module = type(owner).__module__ if owner is not None else f.__module__
            assert module in ("model.protocol.props", "model.migration.view",
                              "model.cloud_hypervisor.view"), f
        for f in spec.invariants.values():
            assert f.__module__ == "model.protocol.props"
    names = [n for n in dir(props) if not n.startswith("_")]
    assert {"invariants", "legal_device_arcs", "migration_ends", "can_complete"} <= set(names)
    for path in (ROOT / "model").rglob("*.py"):
        if path == ROOT / "model" / "protocol" / "props.py":
            continue
        src = path.read_text()
        for fn in ("no_page_lost", "dirty_tracking_sound", "source_recovers",
                   "destination_starts_loaded", "p2p_quiesced_before_stop", "no_split_brain"):
            assert f"def {fn}(" not in src, (path, fn)
    assert inspect.getsourcefile(props.invariants).endswith("model/protocol/props.py")


def test_one_kernel_step_function_serves_both_vmms() -> None:
    """Both flows take each device's table from the same KernelStepFunction: a kernel that
    walks RUNNING -> STOP without RUNNING_P2P (a non-uAPI arc for a P2P device) breaks
    LegalDeviceArcs in QEMU's model and in cloud-hypervisor's, and the default kernel in
    neither."""
    bad = load_kernel(KERNELS / "bad_non_direct_arc.c")
    qs, cs = scenario_from_dict(QEMU_P2P, P), scenario_from_dict(CH_P2P, P)
    qcfg = qemu_config(qs, qemu_decide(qs), bad)
    ccfg = ch_config(cs, decide(cs), bad)
    flags = int(qcfg.flags[0])
    assert int(ccfg.flags(0)) == flags
    assert (qcfg.step[0] == step_table(bad, flags)).all()
    assert (ccfg.step[0] == step_table(bad, flags)).all()
    for kernel, broken in ((bad, True), (default_kernel(), False)):
        for spec in (qemu_build_spec(qs, kernel=kernel), ch_build_spec(cs, kernel=kernel)):
            r = explore(spec)
            name = r.violation.name if r.violation else None
            assert (name == Property.LEGAL_DEVICE_ARCS) == broken, (spec.name, name)


# ------------------------------------------------------------------ spec-file keys

@pytest.mark.parametrize("data, key", [
    ({**CH_P2P, "qemu": "8.0"}, "qemu"),
    ({**CH_P2P, "host": {"iommu": "iommufd"}}, "host"),
    ({**CH_P2P, "mutations": {"no_final_sync": True}}, "mutations"),
    ({**CH_P2P, "vm": {"ram": "1GiB"}}, "[vm].ram"),
    ({**CH_P2P, "migration": {"attempts": 2}}, "[migration].attempts"),
    ({**CH_P2P, "devices": [{"name": "a", "pins": [0]}]}, "[devices.0].pins"),
    ({**CH_P2P, "devices": [{"name": "a", "properties": {"enable-migration": "on"}}]},
     "[devices.0].properties"),
    ({**QEMU_P2P, "cloud_hypervisor": "ae44c297"}, "cloud_hypervisor"),
    ({**QEMU_P2P, "migration": {"local": True}}, "[migration].local"),
    ({**QEMU_P2P, "migration": {"preserve_source": True}}, "[migration].preserve_source"),
    ({**QEMU_P2P, "migration": {"late_errors": True}}, "[migration].late_errors"),
    ({**QEMU_P2P, "devices": [{"name": "a", "migration": False}]}, "[devices.0].migration"),
])
def test_a_key_of_the_other_vmm_is_an_error_naming_it(tmp_path: Path, data: dict, key: str) -> None:
    with pytest.raises(SpecError) as info:
        scenario_from_dict(data, P)
    assert str(info.value).startswith(f"{P}: {key}: "), str(info.value)
    # and through the command line: one line, exit 2
    path = tmp_path / "x.toml"
    path.write_text(_toml(data))
    r = run("check", str(path))
    assert r.exit_code == 2
    assert f": {key}: " in r.output and "only with vmm" in r.output
    assert "Traceback" not in r.output


def _toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the test's tables (strings, booleans, ints, lists)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    lines: list[str] = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict | list)
                        or (isinstance(v, list) and not (v and isinstance(v[0], dict)))]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    continue
                lines.append(f"{kk} = {value(vv)}")
    for k, v in data.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for entry in v:
                lines.append(f"[[{k}]]")
                lines += [f"{kk} = {value(vv)}" for kk, vv in entry.items() if not isinstance(vv, dict)]
                for kk, vv in entry.items():
                    if isinstance(vv, dict):
                        lines.append(f"[{k}.{kk}]")
                        lines += [f"{json.dumps(a)} = {value(b)}" for a, b in vv.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("migration, key", [
    ({"preserve_source": True}, "[migration].preserve_source"),
    ({"postcopy": True, "local": True}, "[migration].postcopy"),
    ({"precopy_rounds": 0}, "[migration].precopy_rounds"),
])
def test_cloud_hypervisor_s_own_option_rules(migration: dict, key: str) -> None:
    with pytest.raises(SpecError) as info:
        scenario_from_dict({**CH_P2P, "migration": migration}, P)
    assert str(info.value).startswith(f"{P}: {key}: ")


def test_unknown_key_lists_only_this_vmm_s_keys() -> None:
    with pytest.raises(SpecError) as info:
        scenario_from_dict({**CH_P2P, "migration": {"locale": True}}, P)
    msg = str(info.value)
    assert "did you mean 'local'" in msg and "attempts" not in msg


# ------------------------------------------------------------------ refusals

def _ch(**migration: Any) -> Any:
    return {"vmm": "cloud-hypervisor", "vm": {"pages": 1}, "migration": migration,
            "devices": [{"name": "nic", "migration": False, "dma_logging": True}]}


def test_a_device_without_migration_v2_is_refused_unless_the_source_is_preserved() -> None:
    for mig in ({}, {"local": True}, {"postcopy": True}):
        d = decide(scenario_from_dict(_ch(**mig), P))
        assert d.blocked and d.blocked_by == (MIGRATION_UNSUPPORTED,), mig
    d = decide(scenario_from_dict(_ch(local=True, preserve_source=True), P))
    assert not d.blocked and d.method is None


def test_refusal_table_covers_every_configuration() -> None:
    r = run("tables", "--vmm", "cloud-hypervisor", "--devices", "2", "--format", "json")
    assert r.exit_code == 0, r.output
    one, two = json.loads(r.stdout)["tables"]
    assert (one["configurations"], two["configurations"]) == (32, 128)
    preserved = [row for row in two["rows"] if row["conditions"]["mode"] == "local+preserve_source"]
    assert [row["outcome"]["verdict"] for row in preserved] == ["migrates"]
    assert run("tables", "--vmm", "cloud-hypervisor", "--kind", "method").exit_code == 2


# ------------------------------------------------------------------ the other commands

def test_prove_refuses_a_cloud_hypervisor_spec() -> None:
    r = run("prove", str(CH_SPECS[0]))
    assert r.exit_code == 2 and "prove covers vmm" in r.output


def test_simulate_uses_cloud_hypervisor_s_downtime_rule() -> None:
    """The convergence estimate counts memory only: with a large device state the downtime
    the run measures exceeds the budget the estimate met."""
    spec = str(ROOT / "specs" / "cloud-hypervisor" / "ch-single-vf.toml")
    r = run("simulate", spec, "--guest-size", "1GiB", "--stop-copy-size", "512MiB", "--json",
            "--no-progress")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["vmm"] == "cloud-hypervisor" and doc["outcome"] == "ok"
    (res,) = doc["results"]
    assert res["converged"] and res["all_arrived"]
    assert doc["estimated_downtime_s"] <= doc["downtime_limit_s"] < res["downtime_s"]
    r = run("simulate", spec, "--guest-size", "4GiB", "--cpu-dirty-rate", "4GiB/s",
            "--hot-set", "4GiB", "--max-rounds", "3", "--json", "--no-progress")
    assert r.exit_code == 1 and json.loads(r.stdout)["outcome"] == "cancelled"
    r = run("simulate", spec, "--guest-size", "4GiB", "--cpu-dirty-rate", "4GiB/s",
            "--hot-set", "4GiB", "--max-rounds", "3", "--timeout-strategy", "ignore", "--json",
            "--no-progress")
    assert r.exit_code == 0 and not json.loads(r.stdout)["results"][0]["converged"]
    assert run("simulate", spec, "--method", "type1").exit_code == 2
    post = str(ROOT / "specs" / "cloud-hypervisor" / "ch-postcopy.toml")
    assert run("simulate", post).exit_code == 2
    qemu = str(ROOT / "specs" / "dma-logging-vf.toml")
    assert run("simulate", qemu, "--timeout-strategy", "ignore").exit_code == 2


def test_report_index_groups_specs_by_vmm(tmp_path: Path) -> None:
    specs = [str(ROOT / "specs" / "dma-logging-vf.toml"),
             str(ROOT / "specs" / "cloud-hypervisor" / "ch-viommu-refused.toml")]
    r = run("report", *specs, "-o", str(tmp_path), "-q")
    assert r.exit_code == 0, r.output
    index = (tmp_path / "README.md").read_text()
    q = index.index("### Migration scenarios: QEMU")
    c = index.index("### Migration scenarios: cloud-hypervisor")
    assert q < c and index.index("dma-logging-vf") < c < index.index("ch-viommu-refused")
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    vmms = {res["spec"]: res.get("vmm", "qemu") for res in results}
    assert vmms == {"dma-logging-vf": "qemu", "ch-viommu-refused": "cloud-hypervisor"}
