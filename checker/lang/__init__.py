"""The specification language: what a model may import from the checker.

:mod:`checker.lang.layout` declares variables as packed bit fields and reads and writes
them through views; :mod:`checker.lang.spec` says what a spec gives the checker (actions,
invariants, liveness, witnesses); :mod:`checker.lang.ops` holds the few operators that mean
the same on numpy columns and on z3 terms.  Nothing here searches: the explorer, the store,
liveness and the SMT back end live beside this package and are the checker's business.
"""
