"""QEMU's choice of dirty-page tracking method and its migration blockers.

:mod:`model.decision.tracking` is the executable rule (what QEMU decides for one
configuration); :mod:`model.decision.smt` restates the same rules over z3 terms, so
tables and proofs cover every configuration.  The two are independent implementations,
held together by an exhaustive agreement test.
"""
