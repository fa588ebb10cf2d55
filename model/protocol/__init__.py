"""The VFIO migration protocol's VMM-neutral parts, shared by every VMM's flow.

A VMM's flow (:mod:`model.migration` for QEMU, :mod:`model.cloud_hypervisor` for
cloud-hypervisor) is a spec over the same kinds of variables: per source and destination
device the kernel's device state (``kstate``, ``dst_kstate``) moved one arc at a time by the
kernel's step function (:mod:`model.fsm.kernel`), the destination's ``dst_loaded`` /
``dst_valid``, and per guest page the bit sets ``stale`` (ground truth), ``bitmap`` (the
pages the VMM still has to send) and ``kvm_dirty`` (KVM's dirty log).  What is the same
for every VMM lives here, once:

* :mod:`model.protocol.props`: the properties, by contract name, written against a
  :class:`~model.protocol.view.FlowView` (what each property asks of the flow);
* :mod:`model.protocol.view`: that interface;
* :mod:`model.protocol.kernel`: a device's tables (the kernel's one-step table and the
  uAPI's direct arcs for its feature flags) and the rules of one arc of a SET walk;
* :mod:`model.protocol.pages`: the names of the page and IOVA bit sets.

Nothing here knows a VMM's hooks, phases or options.
"""
