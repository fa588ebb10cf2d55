"""TCommit and TwoPhase from the tlaplus Examples repository, for engine validation.

Re-expressed from ``specifications/transaction_commit/TCommit.tla`` and ``TwoPhase.tla``
(Lamport's transaction-commit specs).  TLC's published figures for three resource managers
(TCommit: 34 distinct / 94 generated / depth 7; TwoPhase: 288 / 1,146 / 11) are pinned in
``tests/test_engine_validation.py``; matching them shows that this engine counts states the
way TLC does.

Each disjunct of a TLA+ action is one :class:`~checker.lang.spec.Action` instance, so that a
state with several enabled disjuncts generates one successor per disjunct, as TLC does.

``broken`` selects a deliberately wrong variant used to test the checker itself:

* ``"commit-too-early"``: TMCommit does not wait for every RM to be prepared, so
  ``TCConsistent`` fails;
* ``"no-abort-message"``: the TM never aborts and an RM may give up, so ``AllDecide``
  (every RM eventually commits or aborts) fails under weak fairness;
* ``"lost-commit"``: after committing, the TM forgets the Commit message, so prepared RMs
  wait forever (a deadlock).
"""

from __future__ import annotations

from typing import Any

from checker.lang.layout import Layout, Next, View
from checker.lang.ops import all_of, any_of
from checker.lang.spec import Action, Effect, Eventually, Liveness, Predicate, Spec, Symmetry

RM_STATES = ("working", "prepared", "committed", "aborted")
WORKING, PREPARED, COMMITTED, ABORTED = range(4)
TM_STATES = ("init", "done")
TM_INIT, TM_DONE = range(2)


_all = all_of


def _consistent(rms: int) -> Predicate:
    """TCConsistent: no RM has aborted while another has committed (both specs)."""

    def consistent(s: View) -> Any:
        any_abort = any_of(s.rmState[r] == ABORTED for r in range(rms))
        any_commit = any_of(s.rmState[r] == COMMITTED for r in range(rms))
        return ~(any_abort & any_commit)

    return consistent


def _decided(rms: int) -> Predicate:
    """Every RM has committed or aborted."""

    def decided(s: View) -> Any:
        return _all((s.rmState[r] == COMMITTED) | (s.rmState[r] == ABORTED) for r in range(rms))

    return decided


def tcommit(rms: int = 3) -> Spec:
    layout = Layout()
    layout.var("rmState", values=RM_STATES, count=rms, array=True)

    def can_commit(s: View) -> Any:
        return _all((s.rmState[r] == PREPARED) | (s.rmState[r] == COMMITTED) for r in range(rms))

    def not_committed(s: View) -> Any:
        return _all(s.rmState[r] != COMMITTED for r in range(rms))

    actions: list[Action] = []
    for r in range(rms):

        def set_to(value: int, r: int = r) -> Effect:
            def effect(s: View, t: Next) -> None:
                t.rmState[r] = value

            return effect

        def working(s: View, r: int = r) -> Any:
            return s.rmState[r] == WORKING

        def may_commit(s: View, r: int = r) -> Any:
            return (s.rmState[r] == PREPARED) & can_commit(s)

        def may_abort(s: View, r: int = r) -> Any:
            return ((s.rmState[r] == WORKING) | (s.rmState[r] == PREPARED)) & not_committed(s)

        actions.append(Action("Prepare", working, set_to(PREPARED), {"rm": r}))
        actions.append(Action("DecideCommit", may_commit, set_to(COMMITTED), {"rm": r}))
        actions.append(Action("DecideAbort", may_abort, set_to(ABORTED), {"rm": r}))

    consistent, decided = _consistent(rms), _decided(rms)

    return Spec(
        name=f"TCommit(RM={rms})",
        layout=layout,
        init=[{"rmState": [WORKING] * rms}],
        actions=actions,
        invariants={"TCTypeOK": layout.type_ok, "TCConsistent": consistent},
        end_states=decided,
        type_invariant="TCTypeOK",
        # the RMs are interchangeable (TLC: SYMMETRY Permutations(RM))
        symmetry=Symmetry(groups=(tuple(range(rms)),), elements=("rmState",)),
        description="Lamport's transaction commit (tlaplus/Examples TCommit.tla).",
    )


def two_phase(rms: int = 3, broken: str | None = None) -> Spec:
    layout = Layout()
    layout.var("rmState", values=RM_STATES, count=rms, array=True)
    layout.var("tmState", values=TM_STATES)
    layout.var("tmPrepared", flags=[f"rm{r}" for r in range(rms)])
    # msgs: one bit per possible message: Prepared(r) for each r, Commit, Abort.
    layout.var("msgs", flags=[f"Prepared(rm{r})" for r in range(rms)] + ["Commit", "Abort"])
    commit_bit, abort_bit = 1 << rms, 1 << (rms + 1)
    all_prepared = (1 << rms) - 1

    actions: list[Action] = []

    def tm_commit_guard(s: View) -> Any:
        if broken == "commit-too-early":
            return s.tmState == TM_INIT
        return (s.tmState == TM_INIT) & (s.tmPrepared == all_prepared)

    def tm_commit(s: View, t: Next) -> None:
        t.tmState = TM_DONE
        t.msgs = s.msgs | commit_bit

    def tm_abort(s: View, t: Next) -> None:
        t.tmState = TM_DONE
        t.msgs = s.msgs | abort_bit

    actions.append(Action("TMCommit", tm_commit_guard, tm_commit))
    if broken != "no-abort-message":
        actions.append(Action("TMAbort", lambda s: s.tmState == TM_INIT, tm_abort))
    if broken == "lost-commit":

        def forget(s: View, t: Next) -> None:
            t.msgs = s.msgs & ~commit_bit

        actions.append(Action("TMForgetCommit", lambda s: (s.msgs & commit_bit) != 0, forget))

    for r in range(rms):
        bit = 1 << r

        def rcv_prepared(s: View, t: Next, bit: int = bit) -> None:
            t.tmPrepared = s.tmPrepared | bit

        def prepare(s: View, t: Next, r: int = r, bit: int = bit) -> None:
            t.rmState[r] = PREPARED
            t.msgs = s.msgs | bit

        def set_rm(value: int, r: int = r) -> Effect:
            def effect(s: View, t: Next) -> None:
                t.rmState[r] = value

            return effect

        def prepared_sent(s: View, bit: int = bit) -> Any:
            return (s.tmState == TM_INIT) & ((s.msgs & bit) != 0)

        def rm_working(s: View, r: int = r) -> Any:
            return s.rmState[r] == WORKING

        actions.append(Action("TMRcvPrepared", prepared_sent, rcv_prepared, {"rm": r}))
        actions.append(Action("RMPrepare", rm_working, prepare, {"rm": r}))
        actions.append(Action("RMChooseToAbort", rm_working, set_rm(ABORTED), {"rm": r}))
        actions.append(
            Action("RMRcvCommitMsg", lambda s: (s.msgs & commit_bit) != 0, set_rm(COMMITTED), {"rm": r})
        )
        actions.append(
            Action("RMRcvAbortMsg", lambda s: (s.msgs & abort_bit) != 0, set_rm(ABORTED), {"rm": r})
        )

    consistent, decided = _consistent(rms), _decided(rms)

    liveness: dict[str, Liveness] = {}
    if broken == "no-abort-message":
        # Every RM eventually decides, assuming weak fairness of every TM and RM action
        # except RMChooseToAbort (a choice, not an obligation).
        liveness["AllDecide"] = Eventually(
            decided, fair=("TMCommit", "TMRcvPrepared", "RMPrepare", "RMRcvCommitMsg", "RMRcvAbortMsg")
        )
    return Spec(
        name=f"TwoPhase(RM={rms})" + (f"[{broken}]" if broken else ""),
        layout=layout,
        init=[{"rmState": [WORKING] * rms, "tmState": TM_INIT, "tmPrepared": 0, "msgs": 0}],
        actions=actions,
        invariants={"TPTypeOK": layout.type_ok, "TCConsistent": consistent},
        liveness=liveness,
        # TLC checks TwoPhase with deadlock checking on: every final state of the real
        # spec still enables a RMRcv*Msg self-loop, so no state is a deadlock.  Without
        # TMAbort, a state where every RM aborted is a legitimate end.
        end_states=decided if broken == "no-abort-message" else None,
        type_invariant="TPTypeOK",
        # the RMs are interchangeable (TLC: SYMMETRY Permutations(RM)): an RM's part of a
        # state is its rmState, its bit of tmPrepared and its Prepared message
        symmetry=Symmetry(groups=(tuple(range(rms)),), elements=("rmState",),
                          bits={"tmPrepared": tuple(range(rms)), "msgs": tuple(range(rms))}),
        description="Lamport's two-phase commit (tlaplus/Examples TwoPhase.tla).",
    )
