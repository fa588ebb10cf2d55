"""A general explicit-state model checker in the style of TLC, with a numpy hot path.

Nothing in this package knows about VFIO: models are written in its specification
language (:mod:`checker.lang`), and the command line (the top-level ``cli`` package) wires
a model to the checker.
"""
