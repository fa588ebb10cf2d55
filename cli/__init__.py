"""The ``vfio-migcheck`` command line: the only package that imports both the VFIO model
(:mod:`model`) and the general checker (:mod:`checker`).

:mod:`cli.main` registers the sub-commands, each in its own module.
"""
