"""The VFIO migration uAPI v2 device-state FSM: states, feature flags, direct arcs.

Source: ``include/uapi/linux/vfio.h`` (comment above ``enum vfio_device_mig_state`` and
``struct vfio_device_feature_migration``), identical in Linux 6.3.2 and the 7.1 merge
window; P2P arrived in 5.18 (commit 8cb3d83b959b), PRE_COPY in 6.2 (commit 4db52602a607).
The per-feature-set lists of arcs a driver must implement come from the comment above
``vfio_mig_get_next_state()`` in ``drivers/vfio/vfio_main.c`` (6.2 and later; the 5.18-6.1
``vfio.c``/``vfio_main.c`` carry the stop-copy and P2P parts of the same lists).

Everything here is what the *specification* says.  What a given kernel *does* lives in
:mod:`model.fsm.kernel`; :mod:`model.fsm.audit` compares the two.

Besides Python sets, small numpy lookup tables indexed by state number (``ALLOWS_DMA[s]``,
``IN_SAVING_GROUP[s]``, ``direct_arc_matrix(flags)[cur, nxt]``) let vectorised models ask
these questions of a whole column of states at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, IntFlag
from functools import cache

import numpy as np


class DeviceState(IntEnum):
    """``enum vfio_device_mig_state`` with the kernel's numbers (uAPI vfio.h)."""

    ERROR = 0
    STOP = 1
    RUNNING = 2
    STOP_COPY = 3
    RESUMING = 4
    RUNNING_P2P = 5
    PRE_COPY = 6
    PRE_COPY_P2P = 7


NUM_STATES = len(DeviceState)
STATE_NAMES: tuple[str, ...] = tuple(s.name for s in DeviceState)
UAPI_PREFIX = "VFIO_DEVICE_STATE_"


class MigFlag(IntFlag):
    """``VFIO_MIGRATION_*`` bits of ``struct vfio_device_feature_migration.flags``."""

    STOP_COPY = 1 << 0
    P2P = 1 << 1
    PRE_COPY = 1 << 2


ALL_FLAGS = MigFlag.STOP_COPY | MigFlag.P2P | MigFlag.PRE_COPY

# The combinations the uAPI defines (vfio.h: STOP_COPY is mandatory, P2P and PRE_COPY
# are optional, "other combinations of flags have behavior to be defined in the future").
FEATURE_SETS: tuple[MigFlag, ...] = (
    MigFlag.STOP_COPY,
    MigFlag.STOP_COPY | MigFlag.P2P,
    MigFlag.STOP_COPY | MigFlag.PRE_COPY,
    ALL_FLAGS,
)

# User-facing feature names (spec files and the command line use these).
FEATURE_NAMES: dict[MigFlag, str] = {
    MigFlag.STOP_COPY: "stop-copy",
    MigFlag.P2P: "p2p",
    MigFlag.PRE_COPY: "pre-copy",
}
_NAME_TO_FLAG: dict[str, MigFlag] = {
    "stop-copy": MigFlag.STOP_COPY,
    "stopcopy": MigFlag.STOP_COPY,
    "p2p": MigFlag.P2P,
    "pre-copy": MigFlag.PRE_COPY,
    "precopy": MigFlag.PRE_COPY,
}


class FeatureError(ValueError):
    """An unknown migration feature name or an undefined combination of flags."""


class StateNameError(ValueError):
    """A device-state name that is not one of ``enum vfio_device_mig_state``."""


def parse_features(text: str | Iterable[str]) -> MigFlag:
    """``"p2p,pre-copy"`` (or a list of names) -> flags; STOP_COPY is always implied.

    Names are case-insensitive; ``_`` and ``-`` are interchangeable; ``all`` means every
    feature, ``none`` or an empty string only stop-copy.
    """
    items = [p for p in text.split(",")] if isinstance(text, str) else list(text)
    flags = MigFlag.STOP_COPY
    for raw in items:
        name = raw.strip().lower().replace("_", "-")
        if not name or name == "none":
            continue
        if name == "all":
            flags |= ALL_FLAGS
            continue
        if name not in _NAME_TO_FLAG:
            raise FeatureError(
                f"unknown migration feature {raw.strip()!r}; allowed: stop-copy, p2p, pre-copy"
            )
        flags |= _NAME_TO_FLAG[name]
    return flags


def check_flags(flags: int) -> MigFlag:
    """Validate a flag word: a combination the uAPI defines (STOP_COPY set, known bits)."""
    f = MigFlag(int(flags) & int(ALL_FLAGS))
    if int(flags) & ~int(ALL_FLAGS):
        raise FeatureError(f"migration flags {int(flags):#x} have bits the uAPI does not define")
    if not f & MigFlag.STOP_COPY:
        raise FeatureError("VFIO_MIGRATION_STOP_COPY is mandatory in every feature set")
    return f


def feature_names(flags: int) -> list[str]:
    """Flags as user names, stop-copy first: ``["stop-copy", "p2p", "pre-copy"]``."""
    f = MigFlag(int(flags))
    return [FEATURE_NAMES[b] for b in (MigFlag.STOP_COPY, MigFlag.P2P, MigFlag.PRE_COPY) if f & b]


def feature_label(flags: int) -> str:
    """A compact label for tables: ``stop-copy+p2p+pre-copy``."""
    return "+".join(feature_names(flags))


def parse_state(text: str) -> DeviceState:
    """A state name, case-insensitive, with or without ``VFIO_DEVICE_STATE_``, ``-`` = ``_``."""
    name = text.strip().upper().replace("-", "_")
    if name.startswith(UAPI_PREFIX):
        name = name[len(UAPI_PREFIX):]
    try:
        return DeviceState[name]
    except KeyError:
        raise StateNameError(
            f"unknown device state {text.strip()!r}; allowed: {', '.join(STATE_NAMES)}"
        ) from None


# ---------------------------------------------------------------------------- states
S = DeviceState

# Which VFIO_MIGRATION_* bits a state needs (vfio.h comment on
# vfio_device_feature_migration; the kernel encodes the same in state_flags_table).
# ERROR is never "supported": it cannot be requested and is only a failure outcome.
STATE_REQUIRES: dict[DeviceState, MigFlag | None] = {
    S.ERROR: None,
    S.STOP: MigFlag.STOP_COPY,
    S.RUNNING: MigFlag.STOP_COPY,
    S.STOP_COPY: MigFlag.STOP_COPY,
    S.RESUMING: MigFlag.STOP_COPY,
    S.RUNNING_P2P: MigFlag.STOP_COPY | MigFlag.P2P,
    S.PRE_COPY: MigFlag.STOP_COPY | MigFlag.PRE_COPY,
    S.PRE_COPY_P2P: ALL_FLAGS,
}


def supports(flags: int, state: int) -> bool:
    """Whether a device with these flags has ``state`` (ERROR: never)."""
    if not 0 <= int(state) < NUM_STATES:
        return False
    need = STATE_REQUIRES[DeviceState(int(state))]
    return need is not None and (int(flags) & int(need)) == int(need)


def supported_states(flags: int) -> tuple[DeviceState, ...]:
    """The states a device with these flags can be asked for, in enum order."""
    return tuple(s for s in DeviceState if supports(flags, s))


def supported_mask(flags: int) -> np.ndarray:
    """``(8,)`` bool: ``mask[s]`` iff state ``s`` is supported."""
    return np.array([supports(flags, s) for s in DeviceState], dtype=bool)


# The saving group (vfio.h): PRE_COPY, PRE_COPY_P2P and STOP_COPY share one data session.
SAVING_GROUP: frozenset[DeviceState] = frozenset({S.PRE_COPY, S.PRE_COPY_P2P, S.STOP_COPY})


def _mask(states: Iterable[DeviceState]) -> np.ndarray:
    m = np.zeros(NUM_STATES, dtype=bool)
    for s in states:
        m[int(s)] = True
    m.setflags(write=False)
    return m


# Per-state capabilities (paraphrase of the vfio.h state descriptions):
# - RUNNING / PRE_COPY: fully operational, may raise interrupts and do any DMA incl. P2P.
# - RUNNING_P2P / PRE_COPY_P2P: "P2P quiescent": must not *initiate* new P2P DMA; a device
#   that cannot tell P2P apart must stop all DMA, so "may DMA" is the conservative answer.
# - STOP, STOP_COPY, RESUMING: no interrupts, no DMA, no change of external state.
# - ERROR: the uAPI requires nothing of a failed device; we assume it does no DMA (only
#   VFIO_DEVICE_RESET leaves ERROR, back to RUNNING, where DMA is allowed again).
ALLOWS_DMA = _mask([S.RUNNING, S.RUNNING_P2P, S.PRE_COPY, S.PRE_COPY_P2P])
ALLOWS_P2P_INITIATE = _mask([S.RUNNING, S.PRE_COPY])
P2P_QUIESCENT = _mask([S.RUNNING_P2P, S.PRE_COPY_P2P])
STOPPED = _mask([S.STOP, S.STOP_COPY, S.RESUMING])
IN_SAVING_GROUP = _mask(SAVING_GROUP)
# A data session (the data_fd returned by SET_STATE) exists while in these states:
# the saving group streams out, RESUMING streams in (vfio.h arc descriptions).
SESSION_OPEN = _mask([S.PRE_COPY, S.PRE_COPY_P2P, S.STOP_COPY, S.RESUMING])

# ---------------------------------------------------------------------------- arcs
Arc = tuple[DeviceState, DeviceState]

# The FSM arcs the vfio.h comment defines when every optional feature is present
# (the list in the comment above enum vfio_device_mig_state, 6.2+).  15 arcs; mtty's
# mtty_step_state() implements exactly these.  STOP_COPY -> PRE_COPY[_P2P] is
# explicitly "not permitted" (may be defined by a future flag).
HEADER_ARCS: frozenset[Arc] = frozenset(
    {
        (S.RUNNING_P2P, S.STOP),
        (S.STOP_COPY, S.STOP),
        (S.RESUMING, S.STOP),
        (S.PRE_COPY, S.RUNNING),
        (S.RUNNING_P2P, S.RUNNING),
        (S.PRE_COPY_P2P, S.RUNNING_P2P),
        (S.RUNNING, S.RUNNING_P2P),
        (S.STOP, S.RUNNING_P2P),
        (S.RUNNING, S.PRE_COPY),
        (S.RUNNING_P2P, S.PRE_COPY_P2P),
        (S.STOP, S.STOP_COPY),
        (S.PRE_COPY, S.PRE_COPY_P2P),
        (S.PRE_COPY_P2P, S.PRE_COPY),
        (S.PRE_COPY_P2P, S.STOP_COPY),
        (S.STOP, S.RESUMING),
    }
)

# Requests the uAPI forbids even though both states exist (vfio.h: "STOP_COPY ->
# PRE_COPY / PRE_COPY_P2P: not permitted, will return error if requested").
BLOCKED_REQUESTS: frozenset[Arc] = frozenset(
    {(S.STOP_COPY, S.PRE_COPY), (S.STOP_COPY, S.PRE_COPY_P2P)}
)

# The comment above vfio_mig_get_next_state() (drivers/vfio/vfio_main.c, 6.2 .. 7.1),
# list by list, exactly as it groups them.
REQUIRED_ARCS_COMMENT: dict[str, frozenset[Arc]] = {
    "always": frozenset(
        {(S.RESUMING, S.STOP), (S.STOP, S.RESUMING), (S.STOP, S.STOP_COPY), (S.STOP_COPY, S.STOP)}
    ),
    "p2p": frozenset(
        {
            (S.RUNNING, S.RUNNING_P2P),
            (S.RUNNING_P2P, S.RUNNING),
            (S.RUNNING_P2P, S.STOP),
            (S.STOP, S.RUNNING_P2P),
        }
    ),
    "pre-copy without p2p": frozenset(
        {(S.RUNNING, S.PRE_COPY), (S.PRE_COPY, S.RUNNING), (S.PRE_COPY, S.STOP_COPY)}
    ),
    "pre-copy and p2p": frozenset(
        {
            (S.PRE_COPY, S.RUNNING),
            (S.PRE_COPY, S.PRE_COPY_P2P),
            (S.PRE_COPY_P2P, S.PRE_COPY),
            (S.PRE_COPY_P2P, S.RUNNING_P2P),
            (S.PRE_COPY_P2P, S.STOP_COPY),
            (S.RUNNING, S.PRE_COPY),
            (S.RUNNING_P2P, S.PRE_COPY_P2P),
        }
    ),
    "without p2p and pre-copy": frozenset({(S.RUNNING, S.STOP), (S.STOP, S.RUNNING)}),
}


def required_arcs_comment(flags: int) -> frozenset[Arc]:
    """The arcs the comment above vfio_mig_get_next_state() lists for this feature set,
    read literally (so a PRE_COPY-only device gets no RUNNING <-> STOP; see
    :func:`direct_arcs` and docs/sources.md#uapi-required-arcs)."""
    f = check_flags(flags)
    arcs = set(REQUIRED_ARCS_COMMENT["always"])
    p2p, pre = bool(f & MigFlag.P2P), bool(f & MigFlag.PRE_COPY)
    if p2p:
        arcs |= REQUIRED_ARCS_COMMENT["p2p"]
    if pre and not p2p:
        arcs |= REQUIRED_ARCS_COMMENT["pre-copy without p2p"]
    if pre and p2p:
        arcs |= REQUIRED_ARCS_COMMENT["pre-copy and p2p"]
    if not p2p and not pre:
        arcs |= REQUIRED_ARCS_COMMENT["without p2p and pre-copy"]
    return frozenset(arcs)


@cache
def direct_arcs(flags: int) -> frozenset[Arc]:
    """The direct (driver-implemented) arcs of a feature set.

    Derived from :data:`HEADER_ARCS` by the two rules vfio.h states: without P2P the P2P
    states "behave as though the device was fully running" (RUNNING_P2P is RUNNING,
    PRE_COPY_P2P is PRE_COPY), and "arcs touching PRE_COPY and PRE_COPY_P2P are removed if
    support for PRE_COPY is not present".  The result equals the comment's required-arc
    lists for every set, except that a PRE_COPY-only device also has RUNNING <-> STOP,
    which the code (and hisi_acc, the in-tree PRE_COPY-only driver) requires although the
    comment lists them only "without P2P and precopy".
    """
    f = check_flags(flags)

    def collapse(s: DeviceState) -> DeviceState:
        if not f & MigFlag.P2P:
            if s is S.RUNNING_P2P:
                return S.RUNNING
            if s is S.PRE_COPY_P2P:
                return S.PRE_COPY
        return s

    arcs: set[Arc] = set()
    for a, b in HEADER_ARCS:
        ca, cb = collapse(a), collapse(b)
        if ca == cb or not supports(f, ca) or not supports(f, cb):
            continue
        arcs.add((ca, cb))
    return frozenset(arcs)


def direct_arc_matrix(flags: int) -> np.ndarray:
    """``(8, 8)`` bool: ``m[cur, nxt]`` iff ``cur -> nxt`` is a direct arc of the set."""
    return _arc_matrix(int(check_flags(flags))).copy()


@cache
def _arc_matrix(flags: int) -> np.ndarray:
    m = np.zeros((NUM_STATES, NUM_STATES), dtype=bool)
    for a, b in direct_arcs(flags):
        m[int(a), int(b)] = True
    m.setflags(write=False)
    return m


def _arc_mask(arcs: Iterable[Arc]) -> np.ndarray:
    m = np.zeros((NUM_STATES, NUM_STATES), dtype=bool)
    for a, b in arcs:
        m[int(a), int(b)] = True
    m.setflags(write=False)
    return m


# Arcs that start a data session and return a new data_fd (vfio.h: RUNNING -> PRE_COPY,
# RUNNING_P2P -> PRE_COPY_P2P, STOP -> STOP_COPY "begin the process of saving";
# STOP -> RESUMING "begin the process of restoring").
ARC_OPENS_SESSION = _arc_mask(
    [(S.RUNNING, S.PRE_COPY), (S.RUNNING_P2P, S.PRE_COPY_P2P), (S.STOP, S.STOP_COPY),
     (S.STOP, S.RESUMING)]
)
# Arcs that end it (vfio.h: STOP_COPY -> STOP, PRE_COPY -> RUNNING, PRE_COPY_P2P ->
# RUNNING_P2P "terminate the data transfer session"; RESUMING -> STOP ends resuming and
# makes the driver validate what was written).  A PRE_COPY-only device's PRE_COPY ->
# STOP_COPY keeps the session (it stays inside the saving group).
ARC_CLOSES_SESSION = _arc_mask(
    [(S.STOP_COPY, S.STOP), (S.PRE_COPY, S.RUNNING), (S.PRE_COPY_P2P, S.RUNNING_P2P),
     (S.RESUMING, S.STOP)]
)
