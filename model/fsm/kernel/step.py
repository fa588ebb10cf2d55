"""A step function read from a source, ready to call, and the driver walk over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.fsm.kernel.interpreter import Env, Function, Returned, Table, run_body
from model.fsm.kernel.names import (
    EINVAL,
    FLAGS_TABLE,
    FSM_TABLE,
    FUNCTION,
    NonTerminatingStep,
    StepError,
    UndefinedStep,
)
from model.fsm.uapi import FEATURE_SETS, NUM_STATES, DeviceState, MigFlag, check_flags, supported_states

# step_table() codes for calls that do not produce a step
STEP_EINVAL = -1  # the call fails (-EINVAL or another errno)
STEP_LOOP = -2  # the call never returns (non-terminating loop)
STEP_UNDEFINED = -3  # the call has undefined behaviour (reads outside a table, ...)


@dataclass(frozen=True)
class StepOutcome:
    """What one call returned: errno (0 or negative), ``*next_fsm``, whether it WARNed."""

    errno: int
    next: int | None
    warned: bool
    where: str = ""


@dataclass
class PathResult:
    """The walk a driver makes from ``current`` to ``requested`` using the step function.

    ``steps`` are the states entered, excluding ``current``.  ``result`` is one of
    ``ok`` (reached), ``einval`` (a call returned -EINVAL), ``warn-einval`` (the same with
    a kernel WARN, i.e. the current state was rejected), ``error`` (another errno),
    ``loop`` (a call never returns), ``stuck`` (a call returns the current state without
    reaching the target, so the driver loop spins), ``cycle`` (the walk comes back to a
    state it left) and ``undefined`` (a call has undefined behaviour in C).
    """

    current: DeviceState
    requested: DeviceState
    steps: list[DeviceState]
    result: str
    detail: str
    errno: int = 0
    warned: bool = False

    @property
    def final(self) -> DeviceState:
        """Where the device is left."""
        return self.steps[-1] if self.steps else self.current

    @property
    def refused(self) -> bool:
        return self.result in ("einval", "warn-einval", "error")

    def to_json(self) -> dict[str, Any]:
        return {"path": [s.name for s in self.steps], "result": self.result}


class KernelStepFunction:
    """``vfio_mig_get_next_state()`` of one source, ready to call."""

    def __init__(
        self,
        source: str,
        function: Function,
        tables: dict[str, Table],
        mentioned_flags: MigFlag,
        notes: Sequence[str] = (),
    ) -> None:
        self.source = source
        self._function = function
        self.tables = tables
        self.notes = tuple(notes)
        fsm = tables[FSM_TABLE]
        self.num_states = min(fsm.dims)
        self._mentioned = mentioned_flags
        self._cache: dict[tuple[int, int, int], StepOutcome | StepError] = {}

    # -------------------------------------------------------------- what the source covers
    @property
    def fsm_table(self) -> np.ndarray:
        return self.tables[FSM_TABLE].values

    @property
    def flags_table(self) -> np.ndarray | None:
        t = self.tables.get(FLAGS_TABLE)
        return None if t is None else t.values

    @property
    def states(self) -> tuple[DeviceState, ...]:
        """The device states the next-step table has rows and columns for."""
        return tuple(s for s in DeviceState if int(s) < self.num_states)

    @property
    def flag_sets(self) -> tuple[MigFlag, ...]:
        """The uAPI feature sets this source knows: their flags are named in the source and
        their states are covered by the table (5.18-6.1: stop-copy and P2P only)."""
        out = []
        for f in FEATURE_SETS:
            if f & ~self._mentioned:
                continue
            if any(int(s) >= self.num_states for s in supported_states(f)):
                continue
            out.append(f)
        return tuple(out)

    # -------------------------------------------------------------- calling it
    def step(self, flags: int, cur: int, new: int) -> StepOutcome:
        """One call ``vfio_mig_get_next_state(device{migration_flags=flags}, cur, new, &n)``.

        Raises :class:`NonTerminatingStep` or :class:`UndefinedStep` when the call does not
        return a value.
        """
        key = (int(flags), int(cur), int(new))
        hit = self._cache.get(key)
        if hit is None:
            env = Env(*key)
            try:
                try:
                    run_body(self._function.body, env)
                except Returned as r:
                    hit = StepOutcome(r.value, env.nxt, env.warned, r.where)
                else:
                    raise UndefinedStep(f"reaches the end of {FUNCTION}() without returning")
            except StepError as e:
                hit = e
            self._cache[key] = hit
        if isinstance(hit, StepError):
            raise hit
        return hit

    def next_state(self, flags: int, cur: int, new: int) -> tuple[int, DeviceState | None]:
        """``(errno, step)``: errno is 0 or negative (-22 = -EINVAL); step is the state
        ``*next_fsm`` holds when the call succeeds, else None.  A call that never returns
        raises :class:`NonTerminatingStep` instead of hanging."""
        o = self.step(flags, cur, new)
        if o.errno != 0 or o.next is None or not 0 <= o.next < NUM_STATES:
            return o.errno, None
        return o.errno, DeviceState(o.next)

    def path(self, flags: int, cur: int, new: int) -> PathResult:
        """The driver loop (mlx5 ``mlx5vf_pci_set_device_state()``): while the device is not
        in ``new``, ask for the next step and perform it; stop at the first failure."""
        cur_s, new_s = DeviceState(int(cur)), DeviceState(int(new))
        steps: list[DeviceState] = []

        def done(result: str, detail: str, errno: int = 0, warned: bool = False) -> PathResult:
            return PathResult(cur_s, new_s, steps, result, detail, errno, warned)

        if cur_s == new_s:
            return done("ok", "already in the requested state; drivers make no call")
        state = cur_s
        visited = {cur_s}
        while True:
            try:
                o = self.step(flags, state, new_s)
            except NonTerminatingStep as e:
                return done("loop", f"{FUNCTION}({state.name} -> {new_s.name}) never returns: {e}")
            except UndefinedStep as e:
                return done("undefined", f"{FUNCTION}({state.name} -> {new_s.name}) {e}")
            where = f" ({o.where})" if o.where else ""
            if o.errno != 0:
                if o.errno == -EINVAL:
                    result = "warn-einval" if o.warned else "einval"
                    what = "WARN and -EINVAL" if o.warned else "-EINVAL"
                else:
                    result, what = "error", f"{o.errno}"
                at = f" after entering {state.name}" if steps else ""
                return done(result, f"{FUNCTION}({state.name} -> {new_s.name}) returns "
                            f"{what}{where}{at}", o.errno, o.warned)
            if o.next is None:
                return done("undefined", f"{FUNCTION}({state.name} -> {new_s.name}) returns 0 "
                            f"without setting *next_fsm{where}")
            if not 0 <= o.next < NUM_STATES:
                return done("undefined", f"{FUNCTION}({state.name} -> {new_s.name}) returns "
                            f"step {o.next}, which is not a device state")
            nxt = DeviceState(o.next)
            if nxt == state:
                return done("stuck", f"{FUNCTION}({state.name} -> {new_s.name}) returns "
                            f"{state.name} itself; the driver loop would spin")
            steps.append(nxt)
            if nxt == new_s:
                return done("ok", " -> ".join(s.name for s in [cur_s, *steps]))
            if nxt in visited:
                return done("cycle", "the walk comes back to " + nxt.name + ": "
                            + " -> ".join(s.name for s in [cur_s, *steps]))
            visited.add(nxt)
            state = nxt

    def __repr__(self) -> str:
        return f"KernelStepFunction({self.source!r})"


def step_table(kernel: KernelStepFunction, flags: int) -> np.ndarray:
    """``(8, 8)`` int64: ``t[cur, new]`` = the state one call returns (a driver step), or
    :data:`STEP_EINVAL` (-1, the call fails), :data:`STEP_LOOP` (-2, it never returns),
    :data:`STEP_UNDEFINED` (-3).  The diagonal holds whatever the call returns for
    ``cur == new`` (drivers never make that call).  A model walks a whole column of devices
    with ``s = t[s, target]`` until ``s == target`` or ``s < 0``."""
    check_flags(flags)
    out = np.empty((NUM_STATES, NUM_STATES), dtype=np.int64)
    for cur in range(NUM_STATES):
        for new in range(NUM_STATES):
            try:
                o = kernel.step(flags, cur, new)
            except NonTerminatingStep:
                out[cur, new] = STEP_LOOP
                continue
            except UndefinedStep:
                out[cur, new] = STEP_UNDEFINED
                continue
            if o.errno != 0:
                out[cur, new] = STEP_EINVAL
            elif o.next is None or not 0 <= o.next < NUM_STATES:
                out[cur, new] = STEP_UNDEFINED
            else:
                out[cur, new] = o.next
    return out


