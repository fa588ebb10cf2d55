"""The uAPI v2 device-state FSM: numbers, feature sets, direct arcs, per-state tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from model.fsm.uapi import (
    ALL_FLAGS,
    ALLOWS_DMA,
    ALLOWS_P2P_INITIATE,
    ARC_CLOSES_SESSION,
    ARC_OPENS_SESSION,
    BLOCKED_REQUESTS,
    FEATURE_SETS,
    HEADER_ARCS,
    IN_SAVING_GROUP,
    P2P_QUIESCENT,
    SESSION_OPEN,
    STOPPED,
    DeviceState,
    FeatureError,
    MigFlag,
    StateNameError,
    check_flags,
    direct_arc_matrix,
    direct_arcs,
    feature_label,
    feature_names,
    parse_features,
    parse_state,
    required_arcs_comment,
    supported_mask,
    supported_states,
    supports,
)

S = DeviceState
SC = MigFlag.STOP_COPY
P2P = SC | MigFlag.P2P
PRE = SC | MigFlag.PRE_COPY
ALL = ALL_FLAGS


def test_kernel_numbers() -> None:
    # include/uapi/linux/vfio.h enum vfio_device_mig_state
    assert [(s.name, int(s)) for s in DeviceState] == [
        ("ERROR", 0), ("STOP", 1), ("RUNNING", 2), ("STOP_COPY", 3), ("RESUMING", 4),
        ("RUNNING_P2P", 5), ("PRE_COPY", 6), ("PRE_COPY_P2P", 7),
    ]
    assert (int(MigFlag.STOP_COPY), int(MigFlag.P2P), int(MigFlag.PRE_COPY)) == (1, 2, 4)
    assert [int(f) for f in FEATURE_SETS] == [1, 3, 5, 7]


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("p2p,pre-copy", ALL), ("", SC), ("none", SC), ("stop-copy", SC), ("P2P", P2P),
        ("pre_copy", PRE), ("precopy, p2p", ALL), ("all", ALL), (["p2p"], P2P),
    ],
)
def test_parse_features(text: str | list[str], flags: MigFlag) -> None:
    assert parse_features(text) == flags


def test_parse_features_rejects_unknown_names_clearly() -> None:
    with pytest.raises(FeatureError, match=r"unknown migration feature 'dirty'; allowed: "
                                           r"stop-copy, p2p, pre-copy"):
        parse_features("p2p,dirty")


def test_check_flags() -> None:
    assert check_flags(7) == ALL
    with pytest.raises(FeatureError, match="mandatory"):
        check_flags(int(MigFlag.P2P))
    with pytest.raises(FeatureError, match="bits"):
        check_flags(9)


def test_feature_names_and_labels() -> None:
    assert feature_names(ALL) == ["stop-copy", "p2p", "pre-copy"]
    assert feature_label(PRE) == "stop-copy+pre-copy"
    for f in FEATURE_SETS:
        assert parse_features(feature_names(f)) == f


@pytest.mark.parametrize("text", ["running_p2p", "VFIO_DEVICE_STATE_RUNNING_P2P",
                                  "Running-P2P", " vfio_device_state_running_p2p "])
def test_parse_state_variants(text: str) -> None:
    assert parse_state(text) is S.RUNNING_P2P


def test_parse_state_rejects_unknown() -> None:
    with pytest.raises(StateNameError, match=r"unknown device state 'PAUSED'; allowed: ERROR"):
        parse_state("PAUSED")


@pytest.mark.parametrize(
    ("flags", "states"),
    [
        (SC, [S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING]),
        (P2P, [S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING, S.RUNNING_P2P]),
        (PRE, [S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING, S.PRE_COPY]),
        (ALL, [S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING, S.RUNNING_P2P, S.PRE_COPY,
               S.PRE_COPY_P2P]),
    ],
)
def test_supported_states(flags: MigFlag, states: list[DeviceState]) -> None:
    assert list(supported_states(flags)) == states
    assert list(np.flatnonzero(supported_mask(flags))) == [int(s) for s in states]
    assert not supports(flags, S.ERROR)  # ERROR can never be requested
    assert not supports(flags, 8)


def test_header_arcs_all_features() -> None:
    # the 15 arcs of the vfio.h comment; mtty implements exactly these
    assert len(HEADER_ARCS) == 15
    assert direct_arcs(ALL) == HEADER_ARCS
    assert not HEADER_ARCS & BLOCKED_REQUESTS


@pytest.mark.parametrize(("flags", "count"), [(SC, 6), (P2P, 8), (PRE, 9), (ALL, 15)])
def test_direct_arcs_against_the_comment_lists(flags: MigFlag, count: int) -> None:
    arcs = direct_arcs(flags)
    assert len(arcs) == count
    comment = required_arcs_comment(flags)
    if flags == PRE:
        # the code (and hisi_acc) also need RUNNING <-> STOP for a PRE_COPY-only device;
        # the comment lists them only "without P2P and precopy" (docs/sources.md#uapi-required-arcs)
        assert arcs - comment == {(S.RUNNING, S.STOP), (S.STOP, S.RUNNING)}
        assert comment <= arcs
    else:
        assert arcs == comment
    sup = set(supported_states(flags))
    for a, b in arcs:
        assert a in sup and b in sup and a != b


@pytest.mark.parametrize("flags", FEATURE_SETS)
def test_direct_arc_matrix_matches_the_set_for_every_pair(flags: MigFlag) -> None:
    m = direct_arc_matrix(flags)
    assert m.shape == (8, 8) and m.dtype == bool
    for a, b in itertools.product(DeviceState, DeviceState):
        assert m[a, b] == ((a, b) in direct_arcs(flags)), (a, b)
    m[0, 0] = True  # a copy: the cached matrix is not changed
    assert not direct_arc_matrix(flags)[0, 0]


def test_state_capability_tables() -> None:
    def names(mask: np.ndarray) -> set[str]:
        return {DeviceState(i).name for i in np.flatnonzero(mask)}

    assert names(ALLOWS_DMA) == {"RUNNING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"}
    assert names(ALLOWS_P2P_INITIATE) == {"RUNNING", "PRE_COPY"}
    assert names(P2P_QUIESCENT) == {"RUNNING_P2P", "PRE_COPY_P2P"}
    assert names(STOPPED) == {"STOP", "STOP_COPY", "RESUMING"}
    assert names(IN_SAVING_GROUP) == {"PRE_COPY", "PRE_COPY_P2P", "STOP_COPY"}
    assert names(SESSION_OPEN) == {"PRE_COPY", "PRE_COPY_P2P", "STOP_COPY", "RESUMING"}
    assert not (ALLOWS_P2P_INITIATE & P2P_QUIESCENT).any()
    assert not (STOPPED & ALLOWS_DMA).any()
    with pytest.raises(ValueError):
        ALLOWS_DMA[0] = True  # read-only lookup tables
    # vectorised use: a column of states at once
    col = np.array([S.RUNNING, S.STOP, S.PRE_COPY_P2P])
    assert list(ALLOWS_DMA[col]) == [True, False, True]


@pytest.mark.parametrize("flags", FEATURE_SETS)
def test_session_arcs_agree_with_session_states(flags: MigFlag) -> None:
    # an arc opens a data session iff it goes from no session into one, and closes one
    # iff it leaves a session for no session (moves inside the saving group keep it)
    for a, b in direct_arcs(flags):
        assert ARC_OPENS_SESSION[a, b] == (not SESSION_OPEN[a] and SESSION_OPEN[b]), (a, b)
        assert ARC_CLOSES_SESSION[a, b] == (SESSION_OPEN[a] and not SESSION_OPEN[b]), (a, b)
