"""How the command line words a limit that stopped an exploration.

The checker reports a :class:`~checker.result.Limit` and the bound it reached; the words
name the option that set the bound (``--max-states``, ``--max-seconds``, ``--max-memory``
of ``check`` and ``report``), so that a user sees which flag to raise.
"""

from __future__ import annotations

from checker.result import Limit, Result


def stopped_by(result: Result) -> str | None:
    """``"--max-states 1000"``, ``"--max-seconds 5"``, ``"memory above 512 MB"`` or
    ``"interrupted (Ctrl-C)"``; None when no limit stopped the run."""
    bound = result.limit_bound
    if result.limit is None:
        return None
    if result.limit is Limit.INTERRUPTED:
        return "interrupted (Ctrl-C)"
    if result.limit is Limit.STATES:
        return f"--max-states {bound}"
    if result.limit is Limit.SECONDS:
        return f"--max-seconds {bound:g}"
    return f"memory above {bound:g} MB"
