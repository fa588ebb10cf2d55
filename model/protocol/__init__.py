"""The VFIO migration protocol's VMM-neutral parts, shared by every VMM's flow."""
