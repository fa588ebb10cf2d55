"""A device's kernel tables, and the rules of one arc of a device-state request.

Every VMM moves a device by ``VFIO_DEVICE_FEATURE`` SET ``MIG_DEVICE_STATE``; the driver
walks ``vfio_mig_get_next_state()`` one arc at a time (docs/sources.md#kernel-next-state,
#kernel-driver-loop).  What the kernel does for a device depends on its
``VFIO_MIGRATION_*`` flags only, so each flow asks :func:`device_tables` for the kernel's
one-step table and the uAPI's direct arcs of those flags (from the same
:class:`~model.fsm.kernel.step.KernelStepFunction`, so a patched kernel changes every
VMM's model alike), and takes each arc by the rules below.  What the VMM asks for, and what
it does when a SET fails, is the VMM's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checker.lang.ops import Term, lookup_nd, maximum, where
from model.fsm.kernel.step import KernelStepFunction, step_table
from model.fsm.uapi import DeviceState, MigFlag, direct_arc_matrix

S = DeviceState


@dataclass(frozen=True)
class DeviceTables:
    """The kernel as one device sees it."""

    flags: MigFlag
    step: np.ndarray  # (8, 8): the state one call of the step function returns, or < 0
    arcs: np.ndarray  # (8, 8) bool: the uAPI's direct arcs for these flags


def device_flags(p2p: bool, pre_copy: bool) -> MigFlag:
    """``VFIO_MIGRATION_*`` of a device (STOP_COPY is mandatory)."""
    flags = MigFlag.STOP_COPY
    if p2p:
        flags |= MigFlag.P2P
    if pre_copy:
        flags |= MigFlag.PRE_COPY
    return flags


def device_tables(kernel: KernelStepFunction, flags: MigFlag) -> DeviceTables:
    return DeviceTables(flags, step_table(kernel, int(flags)), direct_arc_matrix(int(flags)))


def next_step(step: np.ndarray, k: Term, goal: Term) -> Term:
    """The state the kernel's step function returns for a device in ``k`` asked for
    ``goal`` (a negative code when the call fails, never returns or is undefined)."""
    return lookup_nd(step, k, maximum(goal, 0))


def hangs(k: Term, goal: Term, nxt: Term) -> Term:
    """The SET never returns: the step function loops or is undefined, or returns the state
    the device is in (the driver loop spins, mlx5vf_pci_set_device_state())."""
    return (k != goal) & ((nxt <= -2) | (nxt == k))


def refuses(k: Term, goal: Term, nxt: Term) -> Term:
    """The step function refuses the walk (-EINVAL): the SET fails where the device is."""
    return (k != goal) & (nxt < 0)


@dataclass(frozen=True)
class Arc:
    """What one driver step does to a device walking from ``k`` towards ``goal``."""

    state: Term  # the device's state after the step
    moved: Term  # the step took an arc
    reached: Term  # it is at the goal (already, or by this arc): the SET returns
    refused: Term  # the SET fails where the device is (step function -EINVAL, or bad data)
    validated: Term  # this arc was RESUMING -> STOP and the written state was accepted


def take_arc(k: Term, goal: Term, nxt: Term, loaded: Term | None = None) -> Arc:
    """One step of the driver loop (``nxt``: :func:`next_step`).  ``loaded``: on a device
    being resumed, whether its state was written; RESUMING -> STOP refuses without it."""
    at_goal = k == goal
    refused = refuses(k, goal, nxt)
    validated: Term = False
    if loaded is not None:
        checks = ~at_goal & validating(k, nxt)
        refused = refused | (checks & (loaded == 0))
        validated = checks & ~refused
    moved = ~at_goal & ~refused
    state = where(moved, nxt, k)
    return Arc(state, moved, at_goal | (moved & (state == goal)), refused, validated)


def validating(k: Term, nxt: Term) -> Term:
    """The arc RESUMING -> STOP, on which the driver validates the state written to the
    data FD and fails the SET on invalid or missing data (uAPI vfio.h)."""
    return (k == S.RESUMING) & (nxt == S.STOP)
