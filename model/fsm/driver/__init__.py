"""Variant drivers' step functions, read from C and checked against the kernel's walk.

:mod:`~model.fsm.driver.source` finds the step function and how it names the states,
:mod:`~model.fsm.driver.skeleton` keeps its control flow, :mod:`~model.fsm.driver.arms`
follows it for each (current, target) pair, and :mod:`~model.fsm.driver.check` compares
the handled arcs with the arcs ``vfio_mig_get_next_state()`` emits.
"""
