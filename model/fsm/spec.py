"""The device-state FSM as a checkable spec: a user asks for states, the kernel walks.

Per device: ``kstate`` (the device state), ``target`` (the state the user asked for with
``VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE`` SET, or NONE when no request is in progress) and
``hung`` (a call of ``vfio_mig_get_next_state()`` never returned, or the driver loop
would spin).  Devices start in RUNNING (vfio.h: a device is RUNNING after open and after
``VFIO_DEVICE_RESET``).

Actions:

* ``Request(dev=d, target=S)`` for every state S the feature set supports: the user asks
  for S while no request is in progress.
* ``KernelStep(dev=d)``: one iteration of the driver loop (mlx5
  ``mlx5vf_pci_set_device_state()``): ask the kernel's step function for the next step
  and perform that arc.  A failed call ends the request and leaves the device where the
  walk got to (the SET returns the error); reaching the target ends it too.  Traces
  therefore show every intermediate state of a combination transition.  Driver arcs
  themselves always succeed here (failures into ERROR belong to the migration model).

Properties: ``TypeOK``; ``StepTerminates`` (no device is hung); the action invariant
``LegalDeviceArcs`` (every state change is a direct uAPI arc of the feature set); the
liveness property ``RequestsEnd`` (one device only: every request ends, under weak
fairness of ``KernelStep``); witnesses ``Reachable_<STATE>`` for each supported state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from checker.lang.layout import Layout, Next, View
from checker.lang.spec import Action, LeadsTo, Spec
from model.fsm.kernel.step import STEP_EINVAL, KernelStepFunction, step_table
from model.fsm.uapi import (
    NUM_STATES,
    STATE_NAMES,
    DeviceState,
    FeatureError,
    MigFlag,
    check_flags,
    direct_arc_matrix,
    feature_label,
    supported_mask,
    supported_states,
)

NONE = NUM_STATES  # target value meaning "no request in progress"
TARGET_NAMES: tuple[str, ...] = (*STATE_NAMES, "NONE")


def _key(name: str, d: int, n: int) -> str:
    return name if n == 1 else f"{name}[{d}]"


def fsm_spec(kernel: KernelStepFunction, flags: int, n_devices: int = 1) -> Spec:
    """The FSM of ``n_devices`` devices with these migration flags, driven by ``kernel``."""
    f = check_flags(flags)
    if f not in kernel.flag_sets:
        raise FeatureError(f"{kernel.source} does not know the feature set {feature_label(f)}")
    if not 1 <= n_devices <= 4:
        raise ValueError(f"n_devices must be 1..4, got {n_devices}")
    n = n_devices
    layout = Layout()
    layout.var("kstate", values=STATE_NAMES, count=n, array=True, doc="device migration state (uAPI)")
    layout.var("target", values=TARGET_NAMES, count=n, array=True, doc="state requested by the user")
    layout.flag("hung", count=n, array=True, doc="a step call never returned / driver loop spins")
    table = step_table(kernel, f)
    actions = [*_request_actions(f, n), *(_kernel_step(table, d, n) for d in range(n))]
    per_device = {"kstate": [int(DeviceState.RUNNING)] * n, "target": [NONE] * n,
                  "hung": [0] * n}
    init: dict[str, Any] = per_device if n > 1 else {k: v[0] for k, v in per_device.items()}
    return Spec(
        name=f"fsm[{feature_label(f)}]",
        layout=layout,
        init=[init],
        actions=actions,
        invariants={"TypeOK": _type_ok(f, n), "StepTerminates": _step_terminates(n)},
        action_invariants={"LegalDeviceArcs": _legal_arcs(f, n)},
        liveness=_requests_end(n),
        witnesses=_witnesses(f, n),
        description=(f"uAPI v2 device FSM for {n} {feature_label(f)} device(s); "
                     f"steps from {kernel.source}"),
    )


def _col(s: View | Next, name: str, d: int, n: int) -> np.ndarray:
    return np.asarray(s[_key(name, d, n)])


def _request_actions(f: MigFlag, n: int) -> list[Action]:
    actions: list[Action] = []
    for d in range(n):
        for state in supported_states(f):

            def req_guard(s: View, d: int = d, state: DeviceState = state) -> np.ndarray:
                return ((_col(s, "target", d, n) == NONE) & (_col(s, "kstate", d, n) != int(state))
                        & (_col(s, "hung", d, n) == 0))

            def req_effect(s: View, t: Next, d: int = d, state: DeviceState = state) -> None:
                t[_key("target", d, n)] = int(state)

            actions.append(Action("Request", req_guard, req_effect,
                                  {"dev": d, "target": state.name}))
    return actions


def _kernel_step(table: np.ndarray, d: int, n: int) -> Action:
    def step_guard(s: View) -> np.ndarray:
        return (_col(s, "target", d, n) != NONE) & (_col(s, "hung", d, n) == 0)

    def step_effect(s: View, t: Next) -> None:
        k, tgt = _col(s, "kstate", d, n), _col(s, "target", d, n)
        nxt = table[k, np.minimum(tgt, NUM_STATES - 1)]
        refused = nxt == STEP_EINVAL
        # no step: a loop that never returns, undefined behaviour, or a step that
        # returns the current state (the driver loop would call again for ever)
        hung = (nxt < 0) & ~refused | (nxt == k)
        moved = ~refused & ~hung
        t[_key("kstate", d, n)] = np.where(moved, nxt, k)
        t[_key("target", d, n)] = np.where(refused | (moved & (nxt == tgt)), NONE, tgt)
        t[_key("hung", d, n)] = hung.astype(np.int64)

    return Action("KernelStep", step_guard, step_effect, {"dev": d})


def _type_ok(f: MigFlag, n: int) -> Callable[[View], np.ndarray]:
    supported = supported_mask(f)
    target_ok = np.append(supported, True)  # NONE is a legal target value

    def type_ok(s: View) -> np.ndarray:
        ok = np.ones(len(s), dtype=bool)
        for d in range(n):
            ok &= supported[_col(s, "kstate", d, n)] & target_ok[_col(s, "target", d, n)]
        return ok

    return type_ok


def _step_terminates(n: int) -> Callable[[View], np.ndarray]:
    def step_terminates(s: View) -> np.ndarray:
        ok = np.ones(len(s), dtype=bool)
        for d in range(n):
            ok &= _col(s, "hung", d, n) == 0
        return ok

    return step_terminates


def _legal_arcs(f: MigFlag, n: int) -> Callable[[View, View, Action], np.ndarray]:
    legal = direct_arc_matrix(f) | np.eye(NUM_STATES, dtype=bool)

    def legal_arcs(s: View, t: View, a: Action) -> np.ndarray:
        ok = np.ones(len(s), dtype=bool)
        for d in range(n):
            ok &= legal[_col(s, "kstate", d, n), _col(t, "kstate", d, n)]
        return ok

    return legal_arcs


def _requests_end(n: int) -> dict[str, LeadsTo]:
    # Every request ends: each device's kernel walk is weakly fair on its own (fairness
    # per action instance), so one device's steps cannot hide another's starvation.
    fair = tuple(f"KernelStep(dev={d})" for d in range(n)) if n > 1 else ("KernelStep",)
    liveness = {}
    for d in range(n):

        def busy(s: View, d: int = d) -> np.ndarray:
            return _col(s, "target", d, n) != NONE

        def idle(s: View, d: int = d) -> np.ndarray:
            return _col(s, "target", d, n) == NONE

        liveness["RequestsEnd" if n == 1 else f"RequestsEnd(dev={d})"] = LeadsTo(busy, idle, fair=fair)
    return liveness


def _witnesses(f: MigFlag, n: int) -> dict[str, Callable[[View], np.ndarray]]:
    witnesses: dict[str, Callable[[View], np.ndarray]] = {}
    for state in supported_states(f):

        def reached(s: View, state: DeviceState = state) -> np.ndarray:
            out = np.zeros(len(s), dtype=bool)
            for d in range(n):
                out |= _col(s, "kstate", d, n) == int(state)
            return out

        witnesses[f"Reachable_{state.name}"] = reached
    return witnesses
