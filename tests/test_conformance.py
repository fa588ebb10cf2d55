"""Conformance: the concrete executor agrees with the abstract model step for step.

A hypothesis state machine (docs/design.md#concrete-executor) drives the migration model (through the spec API
only) and the executor (one executor page per model page, ``model.concrete.conformance``) with the
same actions -- chosen at each step among those the *model* enables, so every sequence is
legal -- and after every step compares every page's migration-bitmap bit and staleness,
and while migrating KVM's dirty log, each device's DMA log, the iommufd dirty bits and
who may still write.  The scenarios cover every tracking method, the profile differences
that change reporting and every mutation the executor expresses; each must also reach the
states that matter (a completed migration; lost pages exactly where the mutation or the
method loses them), so agreement is not vacuous.  Dedicated tests show that a change on
one side only is caught.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from model.concrete.conformance import (
    EXECUTOR_CALLS,
    NO_EXECUTOR_COUNTERPART,
    Conformance,
    ConformanceError,
    ModelStepper,
    bits_of,
    numbers_of,
)
from model.concrete.executor import (
    ALL_DIRTY,
    DEVICE_DMA_LOGGING,
    IOMMUFD_HW,
    MUTATIONS,
    NO_VFIO_REPORT,
    RUN_MUTATIONS,
    TYPE1,
    Executor,
    RunConfig,
)
from model.concrete.plan import stepped_config
from model.concrete.workload import DeviceLoad, PageSet, Workload
from model.contract import PAGE_SIZE
from model.migration.spec import build_spec
from model.scenario import Scenario, scenario_from_dict

# ------------------------------------------------------------------------------ scenarios
VF = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}
VF_NO_LOG = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": False,
             "properties": {"enable-migration": "on"}}
OPT_OUT = {"x-pre-copy-dirty-page-tracking": "off"}
# Cancel and retry, a failing dirty query, two pre-copy syncs: every path of the protocol.
EVERYTHING = {"cancel": True, "attempts": 2, "query_faults": True, "precopy_rounds": 2}
PLAIN = {"precopy_rounds": 2}
TWO_VFS = [
    {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True, "dma_pages": [0]},
    {"name": "vf1", "features": ["p2p"], "dma_logging": True, "dma_pages": [1]},
]
MIXED = [
    {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True, "dma_pages": [0]},
    {"name": "vf1", "features": ["p2p"], "dma_logging": False, "dma_pages": [1],
     "properties": {"enable-migration": "on"}},
]


def _sc(qemu: str, devices: list[dict[str, Any]], migration: dict[str, Any],
        host: dict[str, Any] | None = None, mutations: tuple[str, ...] = (),
        **vm: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"qemu": qemu, "vm": {"pages": 2, **vm}, "devices": devices,
                           "migration": migration}
    if host:
        out["host"] = host
    if mutations:
        out["mutations"] = dict.fromkeys(mutations, True)
    return copy.deepcopy(out)


# name -> (scenario, executor method expected, loses pages: the destination may start with
# a stale page (True, shown by LOSSES) / no run may end with one (False)).
SCENARIOS: dict[str, tuple[dict[str, Any], str, bool]] = {
    "dma-logging": (_sc("master", [VF], EVERYTHING), DEVICE_DMA_LOGGING, False),
    "dma-logging-two-vfs-8.2": (_sc("8.2", TWO_VFS, PLAIN), DEVICE_DMA_LOGGING, False),
    "dma-logging-opt-out": (
        _sc("master", [{**VF, "properties": OPT_OUT}], PLAIN), DEVICE_DMA_LOGGING, False),
    "dma-logging-opt-out-8.1": (
        _sc("8.1", [{**VF, "properties": OPT_OUT}], PLAIN), DEVICE_DMA_LOGGING, False),
    # A device state change may fail (the device stays or enters ERROR, then is reset).
    "dma-logging-device-faults": (
        _sc("master", TWO_VFS, {"cancel": True, "device_faults": True}), DEVICE_DMA_LOGGING,
        False),
    "type1-unpinned": (_sc("master", [VF_NO_LOG], EVERYTHING), TYPE1, False),
    "type1-unpinned-8.0": (_sc("8.0", [VF_NO_LOG], PLAIN), TYPE1, False),
    "type1-mixed-container": (_sc("master", MIXED, PLAIN), TYPE1, False),
    # The driver pins page 0 but the device also writes page 1: pinned scope misses it.
    "type1-pinned": (_sc("master", [{**VF_NO_LOG, "pins": [0]}], PLAIN, cpu_writes=False),
                     TYPE1, True),
    "iommufd-hw": (_sc("9.1", [VF_NO_LOG], EVERYTHING,
                       {"iommu": "iommufd", "iommu_dirty_tracking": True}), IOMMUFD_HW, False),
    "all-dirty-9.1": (_sc("9.1", [VF_NO_LOG], PLAIN, {"iommu": "iommufd"}), ALL_DIRTY, False),
    # From QEMU 10.0 nothing reports the device's writes (the shipped spec's finding).
    "all-dirty-10.2": (_sc("10.2", [VF_NO_LOG], PLAIN, {"iommu": "iommufd"}, cpu_writes=False),
                       NO_VFIO_REPORT, True),
    "mutation-no-final-sync": (
        _sc("master", [VF], PLAIN, mutations=("no_final_sync",), cpu_writes=False),
        DEVICE_DMA_LOGGING, True),
    "mutation-sync-before-devices-stop": (
        _sc("master", [VF], PLAIN, mutations=("sync_before_devices_stop",), cpu_writes=False),
        DEVICE_DMA_LOGGING, True),
    "mutation-type1-ignores-unpinned-groups": (
        _sc("master", [VF_NO_LOG], PLAIN, mutations=("type1_ignores_unpinned_groups",),
            cpu_writes=False), TYPE1, True),
    "mutation-device-logging-for-mixed-container": (
        _sc("master", MIXED, PLAIN, mutations=("device_logging_for_mixed_container",),
            cpu_writes=False), DEVICE_DMA_LOGGING, True),
    "mutation-retry-keeps-cleared-bits": (
        _sc("master", [{**VF, "dma_pages": [0]}], {"cancel": True, "attempts": 2},
            mutations=("retry_keeps_cleared_bits",), cpu_writes=False, pages=2),
        DEVICE_DMA_LOGGING, True),
}

# A disruption (cancel, failing query, failing device) is drawn only now and then (one
# step in eight where one is enabled), so most runs complete.
DISRUPTIVE = frozenset({"Cancel", "DirtyQueryFails", "DeviceFault"})
STEPS = 80
EXAMPLES = 12


def scenario(name: str) -> Scenario:
    return scenario_from_dict(copy.deepcopy(SCENARIOS[name][0]), Path(f"{name}.toml"))


# ------------------------------------------------------------------------------ the machine
class ConformanceMachine(RuleBasedStateMachine):
    """Steps model and executor together; every step must leave them in agreement."""

    scenario: Scenario
    executor_mutations: frozenset[str] | None = None
    conformance_class: type[Conformance] = Conformance
    stepper: ModelStepper
    # What the runs of one test exercised (shared by the examples of one machine class).
    families: set[str]
    completed_runs: list[int]  # stale pages of each run that completed

    def __init__(self) -> None:
        super().__init__()
        self.c = self.conformance_class(self.scenario, self.executor_mutations, self.stepper)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        enabled = self.c.enabled()
        if not enabled:
            return  # an end state: stutter
        calm = [a for a in enabled if a.family not in DISRUPTIVE]
        if calm and len(calm) < len(enabled):
            disrupt = data.draw(st.integers(0, 7), label="disrupt") == 7
            enabled = [a for a in enabled if a not in calm] if disrupt else calm
        action = data.draw(st.sampled_from(enabled), label="action")
        self.c.step(action.label)
        self.families.add(action.family)
        if action.family == "Complete":
            self.completed_runs.append(self.c.executor.count_stale())

    @invariant()
    def agree(self) -> None:
        problems = self.c.disagreements()
        assert not problems, "\n".join(["model and executor disagree:", *problems,
                                        self.c.describe()])


def machine_for(sc: Scenario, *, executor_mutations: frozenset[str] | None = None,
                conformance_class: type[Conformance] = Conformance) -> type[ConformanceMachine]:
    return type(f"Conformance_{sc.name.replace('-', '_')}", (ConformanceMachine,), {
        "scenario": sc,
        "executor_mutations": executor_mutations,
        "conformance_class": conformance_class,
        "stepper": Conformance.stepper_for(sc),
        "families": set(),
        "completed_runs": [],
    })


def run(machine: type[ConformanceMachine], examples: int = EXAMPLES, shrink: bool = True) -> None:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, derandomize=True,
        database=None, phases=phases, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


# ------------------------------------------------------------------------------ conformance
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_executor_agrees_with_the_model_step_for_step(name: str) -> None:
    _, method, loses = SCENARIOS[name]
    sc = scenario(name)
    assert stepped_config(sc).method == method
    machine = machine_for(sc)
    run(machine)

    # The runs reached what matters, so the agreement is not vacuous.
    mig = sc.migration
    wanted = {"MigrateStart", "SendPage", "DmaWrite", "Complete", "LogSync"}
    if "no_final_sync" not in sc.mutations:
        wanted.add("FinalSync")
    if sc.vm.cpu_writes:
        wanted.add("CpuWrite")
    if mig.cancel:
        wanted.add("Cancel")
    if mig.attempts > 1:
        wanted.add("MigrateRetry")
    if mig.query_faults:
        wanted |= {"DirtyQueryFails", "MigrationFails"}
    if mig.device_faults:
        wanted |= {"DeviceFault", "DeviceReset", "MigrationFails"}
    if mig.precopy_rounds == 0:
        wanted.discard("LogSync")
    assert wanted <= machine.families, f"never exercised: {sorted(wanted - machine.families)}"
    assert machine.completed_runs, "no run completed"
    if not loses:  # (where pages are lost: test_both_sides_lose_the_same_page)
        assert not any(machine.completed_runs), f"runs lost pages: {machine.completed_runs}"


# How each losing scenario loses a page, as QEMU's own steps (``None``: run on until the
# migration completes) and the guest or device writes in between.
ACTIVE = "active"
LOSSES: dict[str, tuple[list[str | None], set[int]]] = {
    # the write after the page was sent is never reported
    "type1-pinned": ([ACTIVE, "SendPage(page=p1)", "DmaWrite(dev=vf0, page=p1)", None], {1}),
    "all-dirty-10.2": ([ACTIVE, "SendPage(page=p0)", "DmaWrite(dev=vf0, page=p0)", None], {0}),
    "mutation-type1-ignores-unpinned-groups": (
        [ACTIVE, "SendPage(page=p0)", "DmaWrite(dev=vf0, page=p0)", None], {0}),
    "mutation-device-logging-for-mixed-container": (
        [ACTIVE, "SendPage(page=p1)", "DmaWrite(dev=vf1, page=p1)", None], {1}),
    # the device log is read by nobody after the last pre-copy sync
    "mutation-no-final-sync": (
        [ACTIVE, "SendPage(page=p0)", "DmaWrite(dev=vf0, page=p0)", None], {0}),
    # the device writes between the final sync and its stop
    "mutation-sync-before-devices-stop": (
        [ACTIVE, "SendPage(page=p0)", "Switchover", "FinalSync", "DmaWrite(dev=vf0, page=p0)",
         None], {0}),
    # the page sent to the cancelled attempt's destination is not sent again
    "mutation-retry-keeps-cleared-bits": (
        [ACTIVE, "SendPage(page=p1)", "Cancel", "idle", "MigrateRetry", None], {1}),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_both_sides_lose_the_same_page(name: str) -> None:
    """Directed runs: where a method or a mutation loses a page, model and executor agree
    at every step and the destination starts with the same stale page on both sides."""
    assert SCENARIOS[name][2], "a losing scenario"
    script, lost = LOSSES[name]
    c = Conformance(scenario(name))
    for item in script:
        if item is None:
            _quiet_run(c)
        elif item in (ACTIVE, "idle"):
            _quiet_run(c, lambda s, pc=item: s["pc"] == pc)
        else:
            c.step(item)
            assert c.disagreements() == [], c.describe()
    assert c.state()["status"] == "completed"
    assert numbers_of(c.state()["stale"]) == lost
    assert {int(p) for p in c.executor.stale_pages()} == lost


def test_every_losing_scenario_has_a_directed_loss() -> None:
    assert set(LOSSES) == {n for n, (_, _, loses) in SCENARIOS.items() if loses}


def test_the_scenarios_cover_every_method_and_executor_mutation() -> None:
    methods = {m for _, m, _ in SCENARIOS.values()}
    assert methods == {DEVICE_DMA_LOGGING, TYPE1, IOMMUFD_HW, ALL_DIRTY, NO_VFIO_REPORT}
    pinned = [n for n in SCENARIOS if stepped_config(scenario(n)).type1_pinned_scope]
    assert pinned, "type1 pinned scope is not covered"
    mutations = {m for d, _, _ in SCENARIOS.values() for m in d.get("mutations", {})}
    assert mutations == set(MUTATIONS)


def test_every_model_action_family_has_a_mapping() -> None:
    """A new model action must be mapped (or declared a no-op) before conformance runs."""
    mapped = set(EXECUTOR_CALLS) | set(NO_EXECUTOR_COUNTERPART)
    for name in SCENARIOS:
        families = set(build_spec(scenario(name)).families())
        assert families <= mapped, f"{name}: unmapped {sorted(families - mapped)}"


# ------------------------------------------------------------------------------ it can fail
@pytest.mark.parametrize("name, executor_only", [
    ("type1-unpinned", frozenset({"type1_ignores_unpinned_groups"})),
    ("dma-logging", frozenset({"retry_keeps_cleared_bits"})),
])
def test_a_mutation_on_the_executor_only_is_caught(name: str, executor_only: frozenset[str]) -> None:
    machine = machine_for(scenario(name), executor_mutations=executor_only)
    with pytest.raises(AssertionError, match="model and executor disagree"):
        run(machine, examples=60, shrink=False)


def test_a_mutation_on_the_model_only_is_caught() -> None:
    """The model type1 reports pinned pages only; the executor still reports everything."""
    sc = scenario("mutation-type1-ignores-unpinned-groups")
    machine = machine_for(sc, executor_mutations=frozenset())
    with pytest.raises(AssertionError, match="migration bitmap"):
        run(machine, examples=60, shrink=False)


class _NoFinalSyncOnExecutor(Conformance):
    """A mapping that forgets the final sync: ``no_final_sync`` on the executor side only."""

    def to_executor(self, action: Any, before: dict[str, Any], after: dict[str, Any]) -> None:
        if action.family != "FinalSync":
            super().to_executor(action, before, after)


def test_a_dropped_executor_call_is_caught() -> None:
    machine = machine_for(scenario("dma-logging-opt-out"), conformance_class=_NoFinalSyncOnExecutor)
    with pytest.raises(AssertionError, match="model and executor disagree"):
        run(machine, examples=60, shrink=False)


def test_disagreements_name_the_variable_and_both_values() -> None:
    c = Conformance(scenario("dma-logging"))
    c.step("MigrateStart")
    assert c.disagreements() == []
    c.executor.migration.clear_indices(np.array([1]))
    c.executor.dirty -= 1
    assert c.disagreements() == ["migration bitmap: model {0, 1}, executor {0}"]


# ------------------------------------------------------------------------------ the adapter
def test_unmirrorable_scenarios_are_refused_with_one_line() -> None:
    for extra, key in (({"vm": {"pages": 2, "viommu": True}}, "vm.viommu"),
                       ({"migration": {"cancel": True},
                         "mutations": {"no_recovery_on_cancel": True}}, "no_recovery_on_cancel")):
        data = {**copy.deepcopy(SCENARIOS["type1-unpinned"][0]), **extra}
        with pytest.raises(ConformanceError, match=key) as info:
            Conformance(scenario_from_dict(data, Path("x.toml")))
        assert "\n" not in str(info.value)


def test_an_action_the_model_does_not_enable_is_refused() -> None:
    c = Conformance(scenario("dma-logging"))
    with pytest.raises(ConformanceError, match="not enabled"):
        c.step("Complete")


WRITES = frozenset({"CpuWrite", "DmaWrite", "P2PWrite"})


def _quiet_step(c: Conformance, prefer: str = "Switchover") -> None:
    """One of QEMU's own steps: no write, no disruption, a page sent only when nothing
    else is enabled; ``prefer`` when enabled."""
    enabled = c.enabled()
    quiet = [a for a in enabled if a.family not in WRITES | DISRUPTIVE | {"SendPage"}]
    sends = [a for a in enabled if a.family == "SendPage"]
    pick = next((a for a in quiet if a.family == prefer), (quiet or sends)[0])
    c.step(pick.label)
    assert c.disagreements() == []


def _quiet_run(c: Conformance, until: Callable[[dict[str, Any]], bool] | None = None) -> None:
    """QEMU's own steps until ``until(model state)``, by default until completion."""
    done = until or (lambda s: s["status"] == "completed")
    while not done(c.state()):
        _quiet_step(c)


def test_each_device_stops_dma_on_the_arc_into_stop_or_stop_copy() -> None:
    """8.2 quiesces P2P first (RUNNING_P2P / PRE_COPY_P2P still allow DMA); the executor
    hears of each device's stop on the kernel arc that leaves the DMA states."""
    c = Conformance(scenario("dma-logging-two-vfs-8.2"))
    _quiet_run(c)
    stops = [(step, call) for step, call in zip(c.steps, c.calls_by_step, strict=True)
             if any(x.startswith("stop_devices") for x in call)]
    assert [step for step, _ in stops] == ["KernelStep(dev=vf0)", "KernelStep(dev=vf1)"]
    assert [call for _, call in stops] == [["stop_devices([0])"], ["stop_devices([1])"]]
    assert c.executor.completed and c.executor.count_stale() == 0


def test_a_reset_device_may_dma_again() -> None:
    """A failed stop ends in VFIO_DEVICE_RESET: the device is RUNNING again (it may DMA)
    until the failed migration's recovery; the executor follows with start_devices."""
    c = Conformance(scenario("dma-logging-device-faults"))
    _quiet_run(c, lambda s: s["pc"] == "vm_stop" and s["req"] == "target")
    c.step("DeviceFault(dev=vf0, outcome=error)")
    assert c.calls[-1] == "stop_devices([0])"
    c.step("DeviceReset(dev=vf0)")
    assert c.calls[-1] == "start_devices([0])"
    assert c.disagreements() == []
    assert "DmaWrite(dev=vf0, page=p0)" in [a.label for a in c.enabled()]
    c.step("DmaWrite(dev=vf0, page=p0)")
    assert c.disagreements() == []


@pytest.mark.parametrize("name", ["dma-logging", "type1-unpinned", "type1-pinned", "iommufd-hw",
                                  "all-dirty-9.1", "all-dirty-10.2"])
def test_the_first_sync_the_model_leaves_out_changes_nothing(name: str) -> None:
    """The model's MigrateStart has no first sync (ram_init_bitmaps does one); every page
    is dirty and every tracker was just cleared, so the executor's sync changes nothing."""
    with_sync = Executor(stepped_config(scenario(name)))
    without = Executor(stepped_config(scenario(name)))
    assert with_sync.setup() == 0
    assert without.setup(first_sync=False) == 0
    for ex in (with_sync, without):
        assert ex.dirty == ex.n and ex.migration.count() == ex.n
        assert ex.kvm_log.count() == 0
    assert bits_of(with_sync.device_dma_log(0)) == bits_of(without.device_dma_log(0)) == set()
    assert bits_of(with_sync.iommu_dirty_bits()) == bits_of(without.iommu_dirty_bits()) == set()


def test_under_retry_keeps_cleared_bits_the_first_sync_would_matter() -> None:
    """Why the mapping leaves it out: at a retry under retry_keeps_cleared_bits, type1's
    first report (every mapped page) would undo the mutation the model keeps until its
    first LogSync (see the report of model.concrete.conformance)."""
    sc = scenario_from_dict({**copy.deepcopy(SCENARIOS["type1-unpinned"][0]),
                             "mutations": {"retry_keeps_cleared_bits": True}}, Path("r.toml"))
    c = Conformance(sc)
    _quiet_run(c, lambda s: s["pc"] == "active")
    c.step("SendPage(page=p0)")
    c.step("Cancel")
    _quiet_run(c, lambda s: s["pc"] == "idle")
    c.step("MigrateRetry")
    assert c.disagreements() == []
    assert numbers_of(c.state()["bitmap"]) == {1}
    twin = Executor(stepped_config(sc))
    twin.setup()
    twin.send([0])
    twin.cancel()
    twin.setup()  # with the first sync
    assert bits_of(twin.migration) == {0, 1}


# ------------------------------------------------------------------------------ run() order
class _Recording(Executor):
    """An executor that records its switchover calls (those after the vCPUs stop)."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.trail: list[str] = []

    def _note(self, what: str) -> None:
        if not self.vcpus_running or what == "stop_vcpus":
            if not self.trail or self.trail[-1] != what:
                self.trail.append(what)

    def stop_vcpus(self) -> None:
        self._note("stop_vcpus")
        super().stop_vcpus()

    def stop_devices(self, devs: Any = None) -> None:
        self._note("stop_devices")
        super().stop_devices(devs)

    def log_sync(self) -> int:
        self._note("log_sync")
        return super().log_sync()

    def complete(self) -> int:
        self._note("complete")
        return super().complete()


def _model_switchover(name: str) -> list[str]:
    """The executor calls the model's switchover maps to, along QEMU's own steps."""
    c = Conformance(scenario(name))
    _quiet_run(c)
    trail: list[str] = []
    started = False
    for call in c.calls:
        what = call.split("(")[0]
        started |= what == "stop_vcpus"
        if started and what in ("stop_vcpus", "stop_devices", "log_sync", "complete") and \
                (not trail or trail[-1] != what):
            trail.append(what)
    return trail


@pytest.mark.parametrize("mutation", [None, "no_final_sync", "sync_before_devices_stop"])
def test_the_timed_run_switches_over_in_the_models_order(mutation: str | None) -> None:
    """``Executor.run`` orders the vCPU stop, device stop and final sync as the model's
    phase plan does, with and without the two mutations that change that order."""
    name = "dma-logging" if mutation is None else f"mutation-{mutation.replace('_', '-')}"
    expected = _model_switchover(name)
    cfg = RunConfig(
        method=DEVICE_DMA_LOGGING, guest_pages=64, max_rounds=2,
        workload=Workload(devices=(DeviceLoad("vf0", dma_rate=64 * PAGE_SIZE,
                                              pages=PageSet.span(0, 8)),)),
        bandwidth=256 * PAGE_SIZE, downtime_limit=0.1, step=0.05,
        mutations=frozenset({mutation}) if mutation else frozenset())
    assert set(cfg.mutations) <= set(RUN_MUTATIONS)
    ex = _Recording(cfg)
    ex.run()
    assert ex.trail == expected
    base = ["stop_vcpus", "stop_devices", "log_sync", "complete"]
    assert expected == {None: base,
                        "no_final_sync": ["stop_vcpus", "stop_devices", "complete"],
                        "sync_before_devices_stop": ["stop_vcpus", "log_sync", "stop_devices",
                                                     "complete"]}[mutation]
