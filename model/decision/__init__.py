"""QEMU's choice of dirty-page tracking method and its migration blockers.

:mod:`model.decision.tracking` is the executable rule (what QEMU decides for one
configuration); :mod:`model.decision.smt` restates the same rules over z3 terms, so
tables and proofs cover every configuration.  The two are independent implementations,
held together by an exhaustive agreement test (tests/test_decision_smt.py).  Around the
z3 restatement: :mod:`~model.decision.space` (the configuration space as z3 variables),
:mod:`~model.decision.tables` (decision tables and their cover) and
:mod:`~model.decision.proofs` (the proofs for any number of devices).
"""
