"""Conformance of the concrete executor with the abstract migration model (docs/design.md#concrete-executor).

For a small scenario the executor (:mod:`model.concrete.executor`, one executor page per model
page) must agree with the model (:func:`model.migration.spec.build_spec`) step for step.
:class:`Conformance` holds one model state and one :class:`~model.concrete.executor.Executor`,
applies a model action to the model through the spec API only (``Action.guard`` /
``Action.effect`` / ``checker.lang.layout.apply``: no model internals), translates it into
executor calls (:data:`EXECUTOR_CALLS`, :data:`NO_EXECUTOR_COUNTERPART`) and lists where
the two disagree (:meth:`Conformance.disagreements`).

The mapping, model action family -> executor call:

=========================  =================================================================
``MigrateStart``,          ``setup(first_sync=False)``: ram_init_bitmaps (every page dirty,
``MigrateRetry``           log_global_start).  The model folds the start into one step
                           without the first sync; without ``retry_keeps_cleared_bits`` that
                           sync changes nothing (see :meth:`Executor.setup`).
``CpuWrite(page)``         ``cpu_write([page])``
``DmaWrite(dev, page)``    ``dma_write(dev, [page])`` (no vIOMMU: IOVA = page)
``SendPage(page)``         ``send([page])`` (pre-copy and the rest sent at stop-copy alike)
``SetupSync``, ``LogSync``, ``FinalSync`` ``log_sync()``
``Switchover``             ``stop_vcpus()`` (vm_stop: the vCPUs stop first)
``KernelStep(dev)``,       ``stop_devices([dev])`` when the step takes the source device out
``DeviceFault(dev, ..)``,  of the states that allow DMA (RUNNING, RUNNING_P2P, PRE_COPY,
``DeviceReset(dev)``       PRE_COPY_P2P; uAPI vfio.h), ``start_devices([dev])`` when it brings
                           it back (a reset device is RUNNING), else nothing: the executor
                           has no device FSM, only "may still DMA"
``Complete``               ``complete()``
``Cancel``,                ``cancel()``: the executor's cancel is the whole failure path at
``MigrationFails``         once (logging stops, vCPUs and devices run, destination gone)
=========================  =================================================================

Families without an executor counterpart (:data:`NO_EXECUTOR_COUNTERPART`) map to nothing:
the device-state hooks and their kernel walk except for the above, the destination,
the failure path after its start (the executor's ``cancel`` already did it all), the
cleanup ``LogGlobalStop`` (``complete``/``cancel`` stop logging), P2P writes (no memory
effect) and ``DirtyQueryFails`` (the failed query changes no tracker; the failure reaches
the executor as ``MigrationFails``).

Compared after every step (:meth:`Conformance.disagreements`):

* every page's migration-bitmap bit, always;
* every page's staleness, except while the model's status is ``failed``/``cancelled``:
  the destination is then discarded (the executor forgets what it received, the model
  leaves ``stale`` as it was until the retry resets it; no property reads it there);
* while migrating (status setup/active/device): logging on, KVM's dirty log, each
  device's DMA log, the iommufd dirty bits, whether the vCPUs run and whether each device
  may DMA.

Not mirrored (:class:`ConformanceError`): a vIOMMU (the executor has no IOVA mappings)
and the mutation ``no_recovery_on_cancel`` (the executor's cancel always restarts every
device).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.lang.layout import Next, apply
from checker.lang.spec import Action, Spec, as_mask
from model.concrete.executor import Executor
from model.concrete.plan import stepped_config
from model.contract import Mutation
from model.decision.tracking import decide
from model.fsm.uapi import ALLOWS_DMA, DeviceState
from model.migration.spec import build_spec
from model.scenario import Scenario

# Families the executor mirrors (see the module doc for what each becomes).
EXECUTOR_CALLS: tuple[str, ...] = (
    "MigrateStart", "MigrateRetry", "CpuWrite", "DmaWrite", "SendPage", "SetupSync", "LogSync",
    "FinalSync", "Switchover", "KernelStep", "DeviceFault", "DeviceReset", "Complete",
    "Cancel", "MigrationFails",
)
# Families that leave the executor as it is.
NO_EXECUTOR_COUNTERPART: tuple[str, ...] = (
    "MigrateRefused", "SaveSetup", "VmStopPrepare", "VmStop", "SaveComplete",
    "SaveCompleteStop", "SaveCleanup", "VmStartPrepare", "VmStart", "MigrationFailedNotify",
    "VmResume", "LogGlobalStop", "LoadSetup", "DstKernelStep", "LoadState",
    "DstVmStartPrepare", "DstVmStart", "DstResume", "DstDeviceFault", "DstDeviceReset",
    "P2PWrite", "DirtyQueryFails",
)
# Mutations the step-by-step mapping cannot express (see the module doc).
UNMIRRORED_MUTATIONS = frozenset({Mutation.NO_RECOVERY_ON_CANCEL, Mutation.VCPUS_RUN_IN_STOP_COPY})

_MIGRATING = frozenset({"setup", "active", "device"})
_DESTINATION_DISCARDED = frozenset({"failed", "cancelled"})


class ConformanceError(ValueError):
    """A scenario the executor cannot mirror, or a model action it has no mapping for."""


def check_mirrorable(scenario: Scenario) -> None:
    """Raise :class:`ConformanceError` for what the executor does not model."""
    where = scenario.name
    if scenario.vm.viommu:
        raise ConformanceError(f"{where}: vm.viommu: the executor has no vIOMMU mappings")
    bad = sorted(set(scenario.mutations) & UNMIRRORED_MUTATIONS)
    if bad:
        raise ConformanceError(f"{where}: mutations: {', '.join(bad)} is not mirrored "
                               "(the executor's cancel always restarts every device)")


def numbers_of(names: Any) -> set[int]:
    """``['p0', 'p2']`` / ``['iova1']`` (a rendered bit set) -> ``{0, 2}`` / ``{1}``."""
    return {int(str(n).removeprefix("iova").removeprefix("p")) for n in names}


def _per_device(value: Any, count: int) -> list[Any]:
    """A rendered variable with one element per device (a scalar when ``count`` is 1)."""
    return list(value) if count > 1 else [value]


def bits_of(bitmap: Any) -> set[int]:
    """The pages set in an executor :class:`~model.concrete.bitmap.Bitmap` (None: no such tracker)."""
    return set() if bitmap is None else {int(i) for i in bitmap.indices()}


def _allows_dma(state_name: str) -> bool:
    return bool(ALLOWS_DMA[int(DeviceState[state_name])])


class ModelStepper:
    """The model's transition relation through the spec API, memoised per state.

    A conformance run revisits the same few model states over and over (a couple of pages,
    one or two devices), so the enabled actions, successors and rendered states are kept;
    share one stepper between the runs of one scenario.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._enabled: dict[bytes, list[Action]] = {}
        self._next: dict[tuple[bytes, str], np.ndarray] = {}
        self._states: dict[bytes, dict[str, Any]] = {}

    def init_row(self) -> np.ndarray:
        return self.spec.init_rows()[0]

    def enabled(self, row: np.ndarray) -> list[Action]:
        """The actions enabled in ``row``, in spec order."""
        key = row.tobytes()
        out = self._enabled.get(key)
        if out is None:
            view = self.spec.view(row.reshape(1, -1))
            out = [a for a in self.spec.actions if bool(as_mask(a.guard(view), 1)[0])]
            self._enabled[key] = out
        return out

    def successor(self, row: np.ndarray, action: Action) -> np.ndarray:
        """``row`` after the (enabled) ``action``."""
        key = (row.tobytes(), action.label)
        out = self._next.get(key)
        if out is None:
            rows = row.reshape(1, -1)
            view = self.spec.view(rows)
            nxt = Next(view)
            action.effect(view, nxt)
            out = apply(self.spec.layout, rows, nxt.assigned, action.label)[0]
            self._next[key] = out
        return out

    def state(self, row: np.ndarray) -> dict[str, Any]:
        """``row`` as named variables (do not modify the result)."""
        key = row.tobytes()
        out = self._states.get(key)
        if out is None:
            out = self.spec.layout.unpack(row)
            self._states[key] = out
        return out


@dataclass
class Conformance:
    """One model state and one executor, stepped together (see the module doc).

    ``executor_mutations`` replaces the executor's mutations (default: the scenario's),
    to show that a one-sided change is noticed.  ``stepper`` shares the model's memoised
    transitions between runs of the same scenario (:meth:`stepper_for`).
    """

    scenario: Scenario
    executor_mutations: frozenset[str] | None = None
    stepper: ModelStepper | None = None
    executor: Executor = field(init=False)
    row: np.ndarray = field(init=False)
    # The model steps taken, and for each the executor calls it became (as text).
    steps: list[str] = field(init=False, default_factory=list)
    calls_by_step: list[list[str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        check_mirrorable(self.scenario)
        decision = decide(self.scenario)
        if self.stepper is None:
            self.stepper = ModelStepper(build_spec(self.scenario, decision=decision))
        self.model: ModelStepper = self.stepper
        self.executor = Executor(
            stepped_config(self.scenario, decision, mutations=self.executor_mutations))
        self.row = self.model.init_row()
        self.devices = tuple(d.name for d in self.scenario.devices)
        self._handlers: Mapping[str, Callable[[Action, dict[str, Any], dict[str, Any]], None]] = {
            "MigrateStart": self._setup,
            "MigrateRetry": self._setup,
            "CpuWrite": lambda a, b, n: self._call("cpu_write", [self._page(a)]),
            "DmaWrite": lambda a, b, n: self._call("dma_write", self._dev(a), [self._page(a)]),
            "SendPage": lambda a, b, n: self._call("send", [self._page(a)]),
            "SetupSync": lambda a, b, n: self._call("log_sync"),
            "LogSync": lambda a, b, n: self._call("log_sync"),
            "FinalSync": lambda a, b, n: self._call("log_sync"),
            "Switchover": lambda a, b, n: self._call("stop_vcpus"),
            "KernelStep": self._device_state,
            "DeviceFault": self._device_state,
            "DeviceReset": self._device_state,
            "Complete": lambda a, b, n: self._call("complete"),
            "Cancel": lambda a, b, n: self._call("cancel"),
            "MigrationFails": lambda a, b, n: self._call("cancel"),
        }

    @staticmethod
    def stepper_for(scenario: Scenario) -> ModelStepper:
        """A model stepper to share between the runs of ``scenario``."""
        return ModelStepper(build_spec(scenario))

    # ------------------------------------------------------------------ the model side
    @property
    def spec(self) -> Spec:
        return self.model.spec

    def state(self) -> dict[str, Any]:
        """The model state, as named variables."""
        return self.model.state(self.row)

    def enabled(self) -> list[Action]:
        """The model's actions enabled in the current state, in spec order."""
        return self.model.enabled(self.row)

    def step(self, label: str) -> None:
        """Take the enabled model action ``label`` on the model, then on the executor."""
        action = next((a for a in self.enabled() if a.label == label), None)
        if action is None:
            raise ConformanceError(f"{label} is not enabled in the model's state")
        before = self.state()
        self.row = self.model.successor(self.row, action)
        self.steps.append(label)
        self.calls_by_step.append([])
        self.to_executor(action, before, self.state())

    @property
    def calls(self) -> list[str]:
        """Every executor call made so far, in order."""
        return [c for step in self.calls_by_step for c in step]

    # ------------------------------------------------------------------ the executor side
    def to_executor(self, action: Action, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Mirror one model step on the executor (``before``/``after``: model states)."""
        handler = self._handlers.get(action.family)
        if handler is not None:
            handler(action, before, after)
        elif action.family not in NO_EXECUTOR_COUNTERPART:
            raise ConformanceError(f"{action.label}: no executor counterpart is defined for "
                                   f"the model action family {action.family}")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        shown = [*map(str, args), *(f"{k}={v}" for k, v in kwargs.items())]
        if self.calls_by_step:
            self.calls_by_step[-1].append(f"{method}({', '.join(shown)})")
        getattr(self.executor, method)(*args, **kwargs)

    def _setup(self, action: Action, before: dict[str, Any], after: dict[str, Any]) -> None:
        self._call("setup", first_sync=False)

    def _device_state(self, action: Action, before: dict[str, Any], after: dict[str, Any]) -> None:
        """A source device's kernel state changed: mirror whether it may DMA."""
        d = self._dev(action)
        n = len(self.devices)
        was = _allows_dma(str(_per_device(before["kstate"], n)[d]))
        now = _allows_dma(str(_per_device(after["kstate"], n)[d]))
        if was and not now:
            self._call("stop_devices", [d])
        elif now and not was:
            self._call("start_devices", [d])

    def _dev(self, action: Action) -> int:
        return self.devices.index(str(action.params["dev"]))

    @staticmethod
    def _page(action: Action) -> int:
        return int(str(action.params["page"]).removeprefix("p"))

    # ------------------------------------------------------------------ comparison
    def disagreements(self) -> list[str]:
        """Where model and executor differ now (empty: they agree)."""
        s, ex = self.state(), self.executor
        out: list[str] = []

        def differ(what: str, model: object, executor: object) -> None:
            if model != executor:
                out.append(f"{what}: model {model}, executor {executor}")

        status = str(s["status"])
        differ("migration bitmap", numbers_of(s["bitmap"]), bits_of(ex.migration))
        if status not in _DESTINATION_DISCARDED:
            differ("stale pages", numbers_of(s["stale"]), {int(p) for p in ex.stale_pages()})
        differ("completed", status == "completed", ex.completed)
        if status not in _MIGRATING:
            return out
        differ("dirty logging on", bool(s["dirty_log"]), ex.tracking)
        differ("KVM dirty log", numbers_of(s["kvm_dirty"]), bits_of(ex.kvm_log))
        n = len(self.devices)
        logs = _per_device(s["dma_log"], n) if "dma_log" in s else [[] for _ in range(n)]
        for d, name in enumerate(self.devices):
            differ(f"DMA log of {name}", numbers_of(logs[d]), bits_of(ex.device_dma_log(d)))
        if "iommu_dirty" in s:
            differ("iommufd dirty bits", numbers_of(s["iommu_dirty"]), bits_of(ex.iommu_dirty_bits()))
        differ("vCPUs running", s["src_run"] == "running", ex.vcpus_running)
        kstates = _per_device(s["kstate"], n)
        for d, name in enumerate(self.devices):
            differ(f"{name} may DMA", _allows_dma(str(kstates[d])), ex.device_running[d])
        return out

    def describe(self) -> str:
        """The model steps so far and the executor calls each became (failure messages)."""
        lines = [f"scenario {self.scenario.name}: model step -> executor calls"]
        for step, calls in zip(self.steps, self.calls_by_step, strict=True):
            lines.append(f"  {step} -> {', '.join(calls) or '-'}")
        return "\n".join(lines)
