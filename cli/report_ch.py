"""The cloud-hypervisor parts of a spec's report page: the scenario and the refusals.

QEMU's sections (``cli/report_vfio.py``) show profiles, -device properties and QEMU's
tracking decision; a cloud-hypervisor scenario has none of these, so it gets its own:
the profile (the code at one commit), the send-migration mode and options, the devices
(migration v2, DMA logging, P2P DMA) and cloud-hypervisor's refusals with their sources.
"""

from __future__ import annotations

from typing import Any

from checker.report.doc import Block, Bullets, Para, Rich, Section, Table, badge, code, strong

SUMMARY_COLUMNS = ("cloud-hypervisor", "mode")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def scenario_section(scenario: Any, decision: Any) -> Section:
    from model.vmm import CH_PROFILES

    vm, mig = scenario.vm, scenario.migration
    rows: list[list[Rich]] = [
        ["VMM", "cloud-hypervisor"],
        ["profile", (code(scenario.cloud_hypervisor),
                     f", the code at {CH_PROFILES[scenario.cloud_hypervisor]}")],
        ["memory mode", code(decision.mode)],
        ["guest pages modelled", str(vm.pages)],
        ["VM paused before the migration (CompletePaused)", _yes(vm.paused)],
        ["devices behind the vIOMMU", _yes(vm.viommu)],
        ["vCPUs write memory", _yes(vm.cpu_writes)],
    ]
    if decision.mode == "precopy":
        rows.append(["pre-copy dirty logs (bound)", str(mig.precopy_rounds)])
    rows += [
        ["preserve_source", _yes(mig.preserve_source)],
        ["precopy timeout with timeout_strategy=cancel explored", _yes(mig.cancel)],
        ["device state-change faults", _yes(mig.device_faults)],
        ["DMA_LOGGING_REPORT faults", _yes(mig.query_faults)],
        ["errors after the destination resumed", _yes(mig.late_errors)],
    ]
    if scenario.check.invariants is not None:
        rows.append(["properties checked", ", ".join(scenario.check.invariants)])
    dev_rows: list[list[Rich]] = [
        [code(d.name), _yes(d.migration), ", ".join(["stop-copy", *sorted(d.features)]),
         _yes(d.dma_logging), ", ".join(str(p) for p in d.dma_pages) or "none", _yes(d.p2p_dma)]
        for d in scenario.devices
    ]
    blocks: list[Block] = [
        Table(["setting", "value"], rows),
        Table(["device", "migration v2", "migration features", "DMA logging", "writes pages",
               "P2P DMA"], dev_rows, caption="VFIO devices (in configuration order)"),
    ]
    return Section("Scenario", blocks, "scenario")


def decision_section(decision: Any) -> Section:
    rows: list[list[Rich]] = [
        ["dirty tracking", code(decision.method) if decision.method else "none (not needed)"],
        ["migration", badge("refused", "warn") if decision.blocked else badge("allowed", "ok")],
    ]
    blocks: list[Block] = [Table(["", ""], rows)]
    if decision.blockers:
        blocks.append(Table(
            ["reason", "device", "when", "what cloud-hypervisor does", "source"],
            [[code(b.code), b.device, b.stage, b.message, code(b.source)] for b in decision.blockers],
            caption="Refusals",
        ))
    if decision.notes:
        blocks.append(Para(strong("How cloud-hypervisor decides, for this scenario:")))
        blocks.append(Bullets(list(decision.notes)))
    if decision.sources:
        blocks.append(Para(strong("cloud-hypervisor sources of the rules that fired:")))
        blocks.append(Bullets([code(s) for s in decision.sources]))
    return Section("Dirty tracking and refusals", blocks, "tracking")


def summary_columns(scenario: Any, decision: Any) -> dict[str, Rich]:
    return {
        "cloud-hypervisor": scenario.cloud_hypervisor,
        "mode": decision.mode,
        "method": code(decision.method) if decision.method else "none",
        "blocked by": ", ".join(decision.blocked_by),
    }
