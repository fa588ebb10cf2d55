"""What the Linux kernel's VFIO migration uAPI and QEMU's VFIO migration code do.

Pure definitions: the device-state FSM, the kernel's step function, QEMU's choice of
dirty-page tracking, the migration protocol.  Models are written in the specification
language of ``checker.lang.layout`` / ``checker.lang.spec`` (variables, actions, properties) and never
import the search machinery.
"""
