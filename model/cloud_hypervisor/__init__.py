"""cloud-hypervisor's VFIO live migration, as the code stands at one commit.

cloud-hypervisor (``cloud-hypervisor/cloud-hypervisor``) migrates VFIO devices with the
migration uAPI v2 and device DMA logging (commits e7c0d690d0, 4102768561, 794997f241,
c3c4281069, 8b61fd0238; read at ae44c2971c83, 2026-08-22).  This package states that flow
against the same shared pieces as QEMU's (:mod:`model.migration`): the kernel's step
function and the uAPI arcs (:mod:`model.fsm`, through :mod:`model.protocol.kernel`), the
page bit sets (:mod:`model.protocol.pages`) and the properties (:mod:`model.protocol.props`).

Each rule lives in one module:

* :mod:`~model.cloud_hypervisor.decision`: what refuses a migration before it can run
  (``start_migration()``, ``start_dirty_log()``) and which pages need tracking;
* :mod:`~model.cloud_hypervisor.flow`: the order of the steps (``send_migration()``,
  ``do_memory_migration()``, ``Vm::pause``/``resume``, the destination's
  ``vm_receive_migration_step()``, ``check_migration()``), the device-state request of each
  step with its recovery, and the program counter that walks them;
* :mod:`~model.cloud_hypervisor.actions`: what each step does to the variables;
* :mod:`~model.cloud_hypervisor.view`: what the variables mean to the shared properties;
* :mod:`~model.cloud_hypervisor.spec`: the variables and :func:`build_spec`;
* :mod:`~model.cloud_hypervisor.concrete`: the iteration and downtime rules of a timed
  run (``do_memory_iterations()``, ``is_precopy_converged()``), for ``simulate``.

Every fact is cited (file, function, commit) in a comment and in
docs/sources.md#cloud-hypervisor.
"""
