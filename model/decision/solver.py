"""z3's answers as decisions: a query is either proved (unsat) or refuted (sat).

z3 has a third answer, ``unknown``: its timeout ran out, or its context was interrupted
(Ctrl-C: ``cli/interrupts.py`` interrupts it so that a command stops at once).  A table or
proof that read ``unknown`` as either of the other two would be wrong without saying so
(an enumeration that took it for "nothing left" ended early and looked complete), so every
query of :mod:`model.decision` goes through :func:`unsat`, which raises instead.
"""

from __future__ import annotations

import z3


def unsat(solver: z3.Solver, *assumptions: z3.BoolRef, query: str = "a query") -> bool:
    """True when z3 proves ``solver``'s assertions (under ``assumptions``) unsatisfiable,
    False when it finds a model; ``TimeoutError`` naming ``query`` when it could not decide."""
    r = solver.check(*assumptions)
    if r == z3.unknown:
        raise TimeoutError(f"z3 could not decide {query}: {solver.reason_unknown()}")
    return bool(r == z3.unsat)
