"""What a spec gives the checker (in the manner of TLA+ modules and stateright's ``Model``).

A spec is a :class:`Spec`: a :class:`~checker.lang.layout.Layout` (its variables), initial
states, a list of :class:`Action` (guard + effect, each possibly one instance of a
parameterised family), and named properties:

* ``invariants``        state predicates that must hold in every reachable state;
* ``action_invariants`` predicates on a transition (before, after, action) that must hold
                        on every step;
* ``liveness``          :class:`Eventually` / :class:`LeadsTo` under weak fairness of the
                        named action families;
* ``witnesses``         "sometimes" predicates: some reachable state must satisfy each,
                        so a passing check is not vacuous;
* ``constraint``        a state bound: states outside it are discarded, as TLC's
                        CONSTRAINT does;
* ``end_states``        states with no successor that are *meant* to end a behaviour (not
                        deadlocks);
* ``canonical``         optional state reduction: maps packed rows to a canonical
                        representative (the explorer applies it to every state);
* ``symmetry``          the spec's interchangeable indices
                        (:class:`Symmetry`), which ``check
                        --symmetry`` turns into a ``canonical`` (:mod:`checker.symmetry`).
* ``type_invariant``    the name a value that does not fit its variable's field is
                        reported under (default ``TypeOK``).

All predicates receive :class:`~checker.lang.layout.View` batches and return boolean columns.
The checker knows nothing of what the variables mean.

**Write spec code so both engines can run it**: the explorer evaluates it on numpy columns,
``checker.smt`` (z3: induction, BMC) on symbolic terms.  Use Python operators (``==``,
``<``, ``&``, ``|``, ``~``, ``+``, ``<<``, ``>>``) and the helpers of :mod:`checker.lang.ops`
(``where``, ``lookup``, ``lookup_bool``, ``lookup2``, ``any_of``, ``all_of``, ``bit``,
``bit_set``, ``false_like``) -- never ``np.where``, ``np.zeros``, fancy indexing into a
table or ``.any()``/``.all()`` in guards, effects and invariants.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.lang.layout import Layout, Next, View

Predicate = Callable[[View], Any]  # returns a bool column (or a bool scalar, broadcast)
Effect = Callable[[View, Next], None]
TransitionPredicate = Callable[[View, View, "Action"], Any]


@dataclass(frozen=True)
class Action:
    """One action instance: ``family(param=value, ...)``.

    ``guard(s)`` says which states enable it; ``effect(s, t)`` assigns the primed
    variables for the enabled states only (``s`` is then the enabled subset).
    """

    family: str
    guard: Predicate
    effect: Effect
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.params:
            return self.family
        inner = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.family}({inner})"


@dataclass(frozen=True)
class Eventually:
    """``<>P``: every fair behaviour reaches a state satisfying ``P``."""

    predicate: Predicate
    # Weak fairness, one group per name: an action family (all its instances together) or
    # one instance by its full label, e.g. "KernelStep(dev=0)" (fairness per device).
    fair: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeadsTo:
    """``P ~> Q``: from every reachable P-state, every fair behaviour reaches a Q-state."""

    trigger: Predicate
    predicate: Predicate
    fair: tuple[str, ...] = ()


Liveness = Eventually | LeadsTo


@dataclass(frozen=True)
class Symmetry:
    """Interchangeable indices (``groups``) and the variables that hold each index's part,
    for a symmetry reduction (TLC's ``SYMMETRY Permutations(S)``; :mod:`checker.symmetry`
    turns it into a canonical form, ``check --symmetry`` explores one state per class).

    An index's part of a state is, for each declared variable, its element ``name[i]``, its
    block ``name[i*n] .. name[i*n+n-1]``, or its bit ``i`` of a set variable.  Two states
    that differ only by a permutation of the indices of one group are one class, when both
    satisfy ``when`` (a spec whose behaviour depends on the order of its indices in some
    states, such as a loop over them, declares the states where it does not); two indices
    are swapped only where their ``fixed`` variables agree.  The reduction is sound only if
    the spec treats the indices of a group alike (the same constants, one action family for
    all of them, properties that name no index, weak fairness by family): the declaration
    is the spec author's claim, tests/test_symmetry.py checks it on the shipped specs.

    ``elements``: variables with one element per index; ``blocks``: variables with
    ``n`` consecutive elements per index (name -> n); ``bits``: set variables with one bit
    per index (name -> the bit of each index, in index order); ``fixed``: the variables of
    ``elements`` that must agree for two indices to be swapped (they stay in place, the
    rest of the two parts is exchanged); ``when``: the states in which the indices are
    interchangeable (None: every state).
    """

    groups: tuple[tuple[int, ...], ...]
    elements: tuple[str, ...] = ()
    blocks: Mapping[str, int] = field(default_factory=dict)
    bits: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    fixed: tuple[str, ...] = ()
    when: Predicate | None = None

    @property
    def reduces(self) -> bool:
        """Whether some group has two or more indices (else the reduction does nothing)."""
        return any(len(g) > 1 for g in self.groups)

    def holds(self, view: View) -> Any:
        return True if self.when is None else self.when(view)


@dataclass
class Spec:
    """A transition system the explorer can check.  Subclass it or fill it in."""

    name: str
    layout: Layout
    init: Sequence[Mapping[str, Any]]
    actions: Sequence[Action]
    invariants: Mapping[str, Predicate] = field(default_factory=dict)
    action_invariants: Mapping[str, TransitionPredicate] = field(default_factory=dict)
    liveness: Mapping[str, Liveness] = field(default_factory=dict)
    witnesses: Mapping[str, Predicate] = field(default_factory=dict)
    constraint: Predicate | None = None
    end_states: Predicate | None = None
    canonical: Callable[[np.ndarray], np.ndarray] | None = None
    symmetry: Symmetry | None = None
    check_deadlock: bool = True
    # The name under which a successor assigning a variable a value outside its field is
    # reported (the explorer cannot store it): the spec's type invariant, TLA+'s TypeOK.
    type_invariant: str = "TypeOK"
    description: str = ""

    def init_rows(self) -> np.ndarray:
        return self.layout.pack(self.init)

    def view(self, rows: np.ndarray) -> View:
        return View(self.layout, rows)

    def families(self) -> list[str]:
        seen: dict[str, None] = {}
        for a in self.actions:
            seen.setdefault(a.family, None)
        return list(seen)

    def successors(self, row: np.ndarray) -> Iterable[tuple[str, np.ndarray]]:
        """``(label, next_row)`` for one packed state, in action order (for tools/tests)."""
        from checker.lang.layout import apply

        rows = np.asarray(row, dtype=np.uint64).reshape(1, -1)
        v = self.view(rows)
        for a in self.actions:
            if bool(np.broadcast_to(np.asarray(a.guard(v), dtype=bool), (1,))[0]):
                t = Next(v)
                a.effect(v, t)
                yield a.label, apply(self.layout, rows, t.assigned, a.label)[0]


def as_mask(value: Any, n: int) -> np.ndarray:
    """A predicate's result as a bool column of length ``n`` (scalars broadcast)."""
    arr = np.asarray(value, dtype=bool)
    if arr.ndim == 0:
        return np.full(n, bool(arr))
    if arr.shape != (n,):
        raise ValueError(f"predicate returned shape {arr.shape}, expected ({n},)")
    return arr


# --- names and texts in spec files ----------------------------------------------------------
# A name (of a spec, a device, an action parameter) ends up in file names of reports, in
# action labels and traces, on terminals and in JSON: it is a plain identifier, so it can
# neither leave a directory nor forge a line of output.

NAME_RULE = "letters, digits, '_', '.', '-' (not first), at most 64 characters"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a name (None: it can)."""
    if _NAME.fullmatch(text):
        return None
    bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c in "_.-"))), None)
    if not text:
        return "is empty"
    if bad is not None:
        return f"holds {_char_name(bad)}; a name is made of {NAME_RULE}"
    if len(text) > 64:
        return f"is {len(text)} characters long; a name is made of {NAME_RULE}"
    return f"starts with {text[0]!r}; a name is made of {NAME_RULE}"


def text_problem(text: str) -> str | None:
    """Why free text (a description) cannot be shown as it is (None: it can): control
    characters other than newline and tab, and bidirectional-text controls, which would
    rearrange what a terminal or a browser shows."""
    for c in text:
        if c in "\n\t":
            continue
        if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") or unicodedata.bidirectional(c) in (
            "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"
        ):
            return f"holds {_char_name(c)}"
    return None


def _char_name(c: str) -> str:
    if c.isascii() and c.isprintable():
        return repr(c)
    name = unicodedata.name(c, "")
    return f"the character U+{ord(c):04X}" + (f" ({name})" if name else "")
