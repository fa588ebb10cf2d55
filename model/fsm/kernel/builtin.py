"""The built-in step functions: Linux 6.2 .. 7.1 as released, and with the 7.2 fix."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from model.fsm.kernel.ctype import UINT, CType
from model.fsm.kernel.interpreter import (
    Arg,
    Assign,
    Binary,
    Const,
    Expr,
    Flags,
    Function,
    If,
    Loop,
    NextRef,
    Return,
    Stmt,
    Table,
    TableRef,
    Ternary,
    Warn,
)
from model.fsm.kernel.names import EINVAL, FLAGS_TABLE, FSM_TABLE, FUNCTION
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import ALL_FLAGS, NUM_STATES, DeviceState, MigFlag

_ = DeviceState
# vfio_from_fsm_table of Linux 6.2 .. 7.1 (docs/sources.md#kernel-next-state): rows = current state, columns
# = requested state, in enum order ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P,
# PRE_COPY, PRE_COPY_P2P.
_E, _S, _R, _SC, _RS, _RP, _PC, _PP = (
    _.ERROR, _.STOP, _.RUNNING, _.STOP_COPY, _.RESUMING, _.RUNNING_P2P, _.PRE_COPY, _.PRE_COPY_P2P,
)
BUILTIN_FSM_TABLE: tuple[tuple[DeviceState, ...], ...] = (
    (_E, _E, _E, _E, _E, _E, _E, _E),  # ERROR
    (_E, _S, _RP, _SC, _RS, _RP, _RP, _RP),  # STOP
    (_E, _RP, _R, _RP, _RP, _RP, _PC, _RP),  # RUNNING
    (_E, _S, _S, _SC, _S, _S, _E, _E),  # STOP_COPY
    (_E, _S, _S, _S, _RS, _S, _S, _S),  # RESUMING
    (_E, _S, _R, _S, _S, _RP, _R, _PP),  # RUNNING_P2P
    (_E, _R, _R, _PP, _R, _R, _PC, _PP),  # PRE_COPY
    (_E, _RP, _RP, _SC, _RP, _RP, _PC, _PP),  # PRE_COPY_P2P
)
# state_flags_table of Linux 6.2 .. 7.1: the VFIO_MIGRATION_* bits each state needs;
# ERROR needs ~0U, so it is never supported.
BUILTIN_FLAGS_TABLE: tuple[int, ...] = (
    0xFFFFFFFF,
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY),
    int(MigFlag.STOP_COPY | MigFlag.P2P),
    int(MigFlag.STOP_COPY | MigFlag.PRE_COPY),
    int(ALL_FLAGS),
)
BUILTIN_SOURCE = "built-in (Linux 6.2–7.1 vfio_main.c)"
FIXED_SOURCE = ("built-in (Linux 6.2–7.1 vfio_main.c with the skip-loop ERROR exit queued "
                "for 7.2)")


def _builtin(loop_fix: bool) -> KernelStepFunction:
    n = NUM_STATES
    fsm = Table(FSM_TABLE, (n, n), np.array(BUILTIN_FSM_TABLE, dtype=np.int64),
                np.ones((n, n), dtype=bool), CType(8, True))
    flags = Table(FLAGS_TABLE, (n,), np.array(BUILTIN_FLAGS_TABLE, dtype=np.int64),
                  np.ones(n, dtype=bool), UINT)

    def unsupported(x: Expr) -> Expr:
        # (state_flags_table[x] & device->migration_flags) != state_flags_table[x]
        return Binary("!=", Binary("&", TableRef(flags, (x,)), Flags()), TableRef(flags, (x,)))

    def out_of_range(x: Expr) -> Expr:
        return Binary(">=", x, Const(n, CType(64, True)))

    einval = Const(-EINVAL)
    skip = unsupported(NextRef())
    if loop_fix:
        skip = Binary("&&", Binary("!=", NextRef(), Const(int(_E))), skip)
    body: list[Stmt] = [
        # the current state must be known and supported, else WARN_ON and -EINVAL
        If(Warn(Binary("||", out_of_range(Arg("cur")), unsupported(Arg("cur")))),
           [Return(einval, "current-state check (WARN_ON)")], []),
        # the requested state must be known and supported, else -EINVAL
        If(Binary("||", out_of_range(Arg("new")), unsupported(Arg("new"))),
           [Return(einval, "requested-state check")], []),
        Assign(NextRef(), TableRef(fsm, (Arg("cur"), Arg("new")))),
        # skip steps into states the device does not support
        Loop("while", skip, [Assign(NextRef(), TableRef(fsm, (NextRef(), Arg("new"))))], [],
             "skip loop" + (" (with the ERROR exit)" if loop_fix else "")),
        Return(Ternary(Binary("!=", NextRef(), Const(int(_E))), Const(0), einval),
               "final check: step is ERROR"),
    ]
    return KernelStepFunction(FIXED_SOURCE if loop_fix else BUILTIN_SOURCE,
                              Function(FUNCTION, [], body), {FSM_TABLE: fsm, FLAGS_TABLE: flags},
                              ALL_FLAGS)


@cache
def default_kernel() -> KernelStepFunction:
    """The step function of Linux 6.2 .. 7.1 as released (skip loop without ERROR exit)."""
    return _builtin(loop_fix=False)


@cache
def fixed_kernel() -> KernelStepFunction:
    """The built-in with the fix queued for 7.2: the skip loop also stops at ERROR."""
    return _builtin(loop_fix=True)


BUILTIN_KERNELS: dict[str, Callable[[], KernelStepFunction]] = {
    "builtin": default_kernel,
    "builtin-fixed": fixed_kernel,
}
