"""A general explicit-state model checker in the style of TLC, with a numpy hot path.

Nothing in this package except the command-line front end (``checker.cli`` and
``checker.commands``) knows about VFIO.
"""
