"""The kernel's step function ``vfio_mig_get_next_state()``, as written in a given source.

Drivers reach a requested device state by calling ``vfio_mig_get_next_state(device, cur,
new, &next)`` in a loop (mlx5 ``mlx5vf_pci_set_device_state()``, pds, mtty): each call
returns one step, the driver performs that arc and calls again until ``cur == new`` or the
call fails.  The function (``drivers/vfio/vfio_main.c`` since 6.0, ``drivers/vfio/vfio.c``
in 5.18) is made of

* ``vfio_from_fsm_table[cur][new]``: the next step before skipping optional states;
* ``state_flags_table[state]``: the ``VFIO_MIGRATION_*`` bits a state needs (ERROR: ``~0U``);
* checks on ``cur`` (out of range or unsupported: ``WARN_ON`` and ``-EINVAL``) and on
  ``new`` (``-EINVAL``);
* a *skip loop* that replaces an unsupported step by ``vfio_from_fsm_table[step][new]``;
* ``return`` ``-EINVAL`` when the step is ERROR, else 0.

This package does not hard-code that shape.  It reads the function from a source file with a
small C front end (tokens, declarations with designated initialisers, ``if``/``while``/
``do``/``for``, expressions, ``WARN_ON``/``ARRAY_SIZE``/``likely``, and helper functions of
the same file) and *interprets* it, so a kernel developer can check a modified tree: a
changed table cell, a different loop condition, a helper such as
``vfio_mig_state_supported()``.  Anything it cannot interpret is reported as a
:class:`~model.fsm.kernel.names.KernelSourceError` naming the file, the line and the construct.

The built-in default (:func:`~model.fsm.kernel.builtin.default_kernel`) is the function of
Linux 6.2 .. 7.1, written here as data and an equivalent statement tree: the table is
transcribed from vfio_main.c (docs/sources.md#kernel-next-state: read at v6.2-cycle commit
037dd1308c6d, identical in 6.3.2 and the 7.1 merge window). Its skip loop has no exit for
ERROR: a ``STOP_COPY -> PRE_COPY[_P2P]`` request on a PRE_COPY device spins for ever (the
blocked cell is ERROR, and ``state_flags_table[ERROR]`` = ``~0U`` is never "supported").
This was reported and a fix posted on 2026-06-02 ("vfio: prevent infinite loop in
vfio_mig_get_next_state() on blocked arc", Fixes: 4db52602a607, Cc: stable), which the
VFIO maintainer applied to the vfio next branch for v7.2;
:func:`~model.fsm.kernel.builtin.fixed_kernel` is the built-in with that fix.

Its modules, in the order a source passes through them:
:mod:`~model.fsm.kernel.preprocess` (the compiled code: conditionals and ``-D`` macros),
:mod:`~model.fsm.kernel.lexer` (tokens), :mod:`~model.fsm.kernel.unit` (one file, its braces
checked), :mod:`~model.fsm.kernel.parser` (raw syntax, :mod:`~model.fsm.kernel.syntax`),
:mod:`~model.fsm.kernel.locate` (finding definitions and file-scope enums),
:mod:`~model.fsm.kernel.resolver` (names checked, executable nodes of
:mod:`~model.fsm.kernel.interpreter`), :mod:`~model.fsm.kernel.load` (the whole function)
and :mod:`~model.fsm.kernel.step` (calls and driver walks); :mod:`~model.fsm.kernel.builtin`
holds the built-in tables.  Variant drivers' step functions are read by
:mod:`model.fsm.driver` with the same front end.
"""
