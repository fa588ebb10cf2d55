"""The kernel's step function ``vfio_mig_get_next_state()``, read from C source."""
