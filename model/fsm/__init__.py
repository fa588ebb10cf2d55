"""The device-state FSM of the VFIO migration uAPI v2 and the kernel's walk over it.

:mod:`model.fsm.uapi` holds what ``include/uapi/linux/vfio.h`` defines (states, feature
flags, direct arcs); :mod:`model.fsm.kernel` reads ``vfio_mig_get_next_state()`` from a
kernel source; :mod:`model.fsm.audit` checks that walk against the uAPI's rules,
:mod:`model.fsm.driver` checks a variant driver's step function against the arcs the walk
hands it, and :mod:`model.fsm.spec` states the FSM as a spec for the explorer.
"""
