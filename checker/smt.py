"""z3 back end: the same spec, as a symbolic transition relation (in the manner of Apalache).

A spec's guards, effects and invariants are evaluated once on a *symbolic* view whose
variables are z3 bit-vectors (one per layout slot, of the slot's width, zero-extended to
64 bits so arithmetic matches numpy's ``int64``).  Specs that write their expressions with
Python operators and :mod:`checker.lang.ops` work unchanged; a spec that uses numpy-only
functions is reported as not symbolic-ready.

Queries:

* :class:`Induction`         the induction engine, one per spec, its symbolic transitions
                             shared by its queries:
  ``.initiation``            Init => Inv
  ``.consecution``           Inv /\\ Next => Inv', action by action (a failure is a
                             counterexample to induction: state before, action, after)
  ``.implication``           Inv => Property
* :func:`bmc`                bounded model checking to depth k, shortest counterexample
                             first (depth by depth, as the explicit BFS finds it)

Every symbolic state is constrained to its type domain (enumerated fields hold one of
their named values), so counterexamples to induction are well-typed states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from checker.interrupt import INTERRUPT
from checker.lang.layout import Layout, LayoutError
from checker.lang.spec import Action, Spec

Pred = Callable[[Any], Any]
TransitionPred = Callable[[Any, Any, Action], Any]


class NotSymbolic(TypeError):
    """The spec uses an operation z3 cannot follow (e.g. ``np.where``; use checker.lang.ops)."""


class _SymIndexed:
    def __init__(self, view: SymView, name: str, count: int) -> None:
        self._view, self._name, self._count = view, name, count

    def __getitem__(self, i: int) -> z3.BitVecRef:
        if not 0 <= i < self._count:
            raise LayoutError(f"{self._name}[{i}]: index out of range 0..{self._count - 1}")
        return self._view[f"{self._name}[{i}]"]

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[z3.BitVecRef]:
        return (self[i] for i in range(self._count))


class SymView:
    """A symbolic state: ``s.x`` is a 64-bit z3 term."""

    def __init__(self, layout: Layout, tag: str) -> None:
        self._layout = layout
        self.tag = tag
        self.vars: dict[str, z3.BitVecRef] = {
            s.key: z3.BitVec(f"{s.key}@{tag}", s.field.bits) for s in layout.slots
        }

    @property
    def layout(self) -> Layout:
        return self._layout

    def __len__(self) -> int:
        return 1

    def __getitem__(self, key: str) -> z3.BitVecRef:
        v = self.vars[self._layout.slot(key).key]
        bits = v.size()
        return v if bits == 64 else z3.ZeroExt(64 - bits, v)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        f = self._layout.field(name)
        if f.count > 1:
            return _SymIndexed(self, name, f.count)
        return self[name]

    def zeros(self, dtype: Any = bool) -> z3.ExprRef:
        return z3.BoolVal(False) if dtype is bool else z3.BitVecVal(0, 64)

    def ones(self, dtype: Any = bool) -> z3.ExprRef:
        return z3.BoolVal(True) if dtype is bool else z3.BitVecVal(1, 64)

    def domain(self) -> z3.BoolRef:
        cs = []
        for s in self._layout.slots:
            if s.field.values is not None and len(s.field.values) < s.mask + 1:
                cs.append(z3.ULT(self.vars[s.key], len(s.field.values)))
        return z3.And(cs) if cs else z3.BoolVal(True)

    def values(self, model: z3.ModelRef) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self._layout.fields:
            vals = []
            for i in range(f.count):
                key = f.name if f.count == 1 else f"{f.name}[{i}]"
                v = model.eval(self.vars[key], model_completion=True).as_long()
                vals.append(f.render(v))
            out[f.name] = vals[0] if f.count == 1 else vals
        return out


class _SymIndexedNext:
    def __init__(self, nxt: SymNext, name: str) -> None:
        self._next, self._name = nxt, name

    def __getitem__(self, i: int) -> z3.BitVecRef:
        return self._next[f"{self._name}[{i}]"]

    def __setitem__(self, i: int, value: Any) -> None:
        self._next[f"{self._name}[{i}]"] = value


class SymNext:
    def __init__(self, view: SymView) -> None:
        object.__setattr__(self, "_view", view)
        object.__setattr__(self, "assigned", {})

    def __getitem__(self, key: str) -> z3.BitVecRef:
        if key in self.assigned:
            return _as_bv(self.assigned[key])
        return self._view[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._view.layout.slot(key)
        self.assigned[key] = value

    def __getattr__(self, name: str) -> Any:
        f = self._view.layout.field(name)
        if f.count > 1:
            return _SymIndexedNext(self, name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _as_bv(value: Any) -> z3.BitVecRef:
    if isinstance(value, z3.BoolRef):
        return z3.If(value, z3.BitVecVal(1, 64), z3.BitVecVal(0, 64))
    if isinstance(value, z3.BitVecRef):
        return value if value.size() == 64 else z3.ZeroExt(64 - value.size(), value)
    if hasattr(value, "shape") and getattr(value, "shape", ()) not in ((), (1,)):
        raise NotSymbolic(f"an effect produced a numpy array {value!r}; use checker.lang.ops")
    return z3.BitVecVal(int(value), 64)


def _as_bool(value: Any, what: str) -> z3.BoolRef:
    if isinstance(value, z3.BoolRef):
        return value
    if isinstance(value, bool) or (hasattr(value, "dtype") and getattr(value, "shape", None) == ()):
        return z3.BoolVal(bool(value))
    if hasattr(value, "shape"):
        if value.shape == (1,):
            return z3.BoolVal(bool(value[0]))
        raise NotSymbolic(
            f"{what} returned a numpy array; write it with Python operators and checker.lang.ops"
        )
    if isinstance(value, z3.BitVecRef):
        return value != 0
    return z3.BoolVal(bool(value))


def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except NotSymbolic:
        raise
    except (TypeError, ValueError, AttributeError, IndexError, z3.Z3Exception) as exc:
        raise NotSymbolic(f"{what} cannot be evaluated symbolically: {exc}") from exc


@dataclass
class Encoding:
    """A spec's symbolic pieces for a pair of states ``s`` and ``t``."""

    spec: Spec

    def init(self, s: SymView) -> z3.BoolRef:
        options = []
        for assignment in self.spec.init:
            row = self.spec.layout.pack([assignment])
            raw = self.spec.layout.raw(row[0])
            options.append(z3.And([s.vars[k] == v for k, v in raw.items()]))
        return z3.Or(options) if options else z3.BoolVal(False)

    def pred(self, name: str, fn: Pred, s: SymView) -> z3.BoolRef:
        return _as_bool(_call(name, fn, s), name)

    def transition(self, a: Action, s: SymView, t: SymView) -> z3.BoolRef:
        g = _as_bool(_call(f"guard of {a.label}", a.guard, s), f"guard of {a.label}")
        nxt = SymNext(s)
        _call(f"effect of {a.label}", a.effect, s, nxt)
        eqs = [g]
        for slot in self.spec.layout.slots:
            var = t.vars[slot.key]
            if slot.key in nxt.assigned:
                value = _as_bv(nxt.assigned[slot.key])
                # The explicit engine rejects out-of-range writes; here they disable the step.
                eqs.append(
                    z3.ZeroExt(64 - slot.field.bits, var) == value if slot.field.bits < 64 else var == value
                )
            else:
                eqs.append(var == s.vars[slot.key])
        return z3.And(eqs)

    def constraint(self, s: SymView) -> z3.BoolRef:
        if self.spec.constraint is None:
            return z3.BoolVal(True)
        return self.pred("constraint", self.spec.constraint, s)


@dataclass
class QueryResult:
    """The answer to one query; ``holds`` False comes with a readable counterexample."""

    query: str
    holds: bool
    seconds: float
    action: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    trace: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    detail: str = ""
    violated: list[str] = field(default_factory=list)  # the conjuncts the counterexample breaks
    actions_disabled: int = 0  # consecution: actions found enabled in no state satisfying Inv


def new_solver(timeout_ms: int | None = None) -> z3.Solver:
    """A fresh z3 solver that gives up on a query after ``timeout_ms`` (None: never)."""
    s = z3.Solver()
    if timeout_ms is not None:
        s.set("timeout", timeout_ms)
    return s


def _check(solver: z3.Solver, what: str) -> z3.CheckSatResult:
    r = solver.check()
    if r == z3.unknown:
        if INTERRUPT.requested:  # z3 was interrupted (Ctrl-C), it did not time out
            raise KeyboardInterrupt
        raise TimeoutError(f"z3 could not decide {what}: {solver.reason_unknown()}")
    return r


def satisfiable(solver: z3.Solver, what: str) -> bool:
    """Whether ``solver``'s assertions have a model; TimeoutError when z3 cannot decide."""
    return bool(_check(solver, what) == z3.sat)


def _violated(m: z3.ModelRef, preds: Mapping[str, z3.BoolRef]) -> list[str]:
    return [n for n, p in preds.items() if z3.is_false(m.eval(p, model_completion=True))]


class Induction:
    """The induction queries on one spec, sharing its symbolic transitions between the
    states ``s`` and ``t``: each is built once, on first use (building them is most of a
    proof's time), and an action whose guard no state satisfying the invariant enables
    is skipped without building its effect.

    A counterexample names every conjunct it breaks (``violated``).
    """

    def __init__(self, spec: Spec, *, timeout_ms: int | None = None) -> None:
        self.spec = spec
        self.enc = Encoding(spec)
        self.s, self.t = SymView(spec.layout, "s"), SymView(spec.layout, "t")
        self.timeout_ms = timeout_ms
        self._steps: dict[str, z3.BoolRef] = {}

    def step(self, a: Action) -> z3.BoolRef:
        """The transition of ``a`` from ``s`` to ``t``."""
        if a.label not in self._steps:
            self._steps[a.label] = self.enc.transition(a, self.s, self.t)
        return self._steps[a.label]

    def _step_or_disabled(self, solver: z3.Solver, a: Action) -> z3.BoolRef | None:
        """The transition of ``a``, or None when its guard holds in no state satisfying the
        invariant (already asserted in ``solver``): then the action cannot break
        consecution, and building its effect (the costly part) is skipped."""
        solver.push()
        solver.add(self.enc.pred(f"guard of {a.label}", a.guard, self.s))
        enabled = _check(solver, f"the guard of {a.label}") == z3.sat
        solver.pop()
        return self.step(a) if enabled else None

    def initiation(self, inv: Mapping[str, Pred]) -> QueryResult:
        """Init => Inv."""
        t0 = time.perf_counter()
        s = SymView(self.spec.layout, "0")
        solver = new_solver(self.timeout_ms)
        preds = {n: self.enc.pred(n, p, s) for n, p in inv.items()}
        solver.add(self.enc.init(s), s.domain(), z3.Not(z3.And(list(preds.values()))))
        if _check(solver, "initiation") == z3.sat:
            m = solver.model()
            return QueryResult("initiation", False, time.perf_counter() - t0, before=s.values(m),
                               detail="an initial state violates the invariant",
                               violated=_violated(m, preds))
        return QueryResult("initiation", True, time.perf_counter() - t0)

    def consecution(
        self,
        inv: Mapping[str, Pred],
        action_invariants: Mapping[str, TransitionPred] | None = None,
        *,
        first: Sequence[str] = (),
    ) -> QueryResult:
        """Inv /\\ A => Inv' and every action invariant (default: the spec's), for every
        action A in order.  The conjuncts named in ``first`` are looked for under every
        action before the others, so that a refutation the caller expects is the one
        reported.  Under a state constraint the state before is assumed to satisfy it (the
        explorer expands no other state)."""
        t0 = time.perf_counter()
        act_invs = dict(self.spec.action_invariants if action_invariants is None else action_invariants)
        s, t, enc = self.s, self.t, self.enc
        solver = new_solver(self.timeout_ms)
        solver.add(s.domain(), *[enc.pred(n, p, s) for n, p in inv.items()])
        if self.spec.constraint is not None:
            solver.add(enc.constraint(s))
        # the invariant's conjuncts over the next state's variables, built once
        inv_t = {n: enc.pred(n, p, t) for n, p in inv.items()}
        steps: dict[str, z3.BoolRef | None] = {}  # None: never enabled in a state satisfying Inv
        cti = None
        for names in ([list(first)] if first else []) + [[*inv, *act_invs]]:
            after = {n: inv_t[n] for n in names if n in inv_t}
            step_invs = {n: p for n, p in act_invs.items() if n in names}
            if after or step_invs:
                cti = self._first_break(solver, steps, after, step_invs)
            if cti is not None:
                break
        result = cti or QueryResult("consecution", True, 0.0)
        result.seconds = time.perf_counter() - t0
        result.actions_disabled = sum(1 for v in steps.values() if v is None)
        return result

    def _first_break(
        self,
        solver: z3.Solver,
        steps: dict[str, z3.BoolRef | None],
        inv_t: Mapping[str, z3.BoolRef],
        act_invs: Mapping[str, TransitionPred],
    ) -> QueryResult | None:
        """The first action, in order, with a step that breaks one of ``inv_t`` or
        ``act_invs``; ``steps`` caches each action's transition or None (disabled)."""
        for a in self.spec.actions:
            if a.label not in steps:
                steps[a.label] = self._step_or_disabled(solver, a)
            step = steps[a.label]
            if step is not None:
                cti = self._breaks(solver, a, step, inv_t, act_invs)
                if cti is not None:
                    return cti
        return None

    def _breaks(
        self,
        solver: z3.Solver,
        a: Action,
        step: z3.BoolRef,
        inv_t: Mapping[str, z3.BoolRef],
        act_invs: Mapping[str, TransitionPred],
    ) -> QueryResult | None:
        """A step of ``a`` from a state satisfying the invariant (asserted in ``solver``)
        that breaks one of ``inv_t`` (conjuncts over ``t``) or of ``act_invs``, if any."""
        s, t = self.s, self.t
        after = dict(inv_t)
        after.update({n: _as_bool(_call(n, p, s, t, a), n) for n, p in act_invs.items()})
        solver.push()
        solver.add(step, z3.Not(z3.And(list(after.values()))))
        cti = None
        if _check(solver, f"consecution under {a.label}") == z3.sat:
            m = solver.model()
            broken = _violated(m, after)
            cti = QueryResult("consecution", False, 0.0, action=a.label, before=s.values(m),
                              after=t.values(m), violated=broken,
                              detail=f"{a.label} leads from a state satisfying the invariant to one "
                                     f"violating {', '.join(broken)}")
        solver.pop()
        return cti

    def implication(self, inv: Mapping[str, Pred], goal: Mapping[str, Pred]) -> QueryResult:
        """Inv => every predicate of ``goal``."""
        t0 = time.perf_counter()
        s = SymView(self.spec.layout, "i")
        solver = new_solver(self.timeout_ms)
        solver.add(s.domain(), *[self.enc.pred(n, p, s) for n, p in inv.items()])
        gp = {n: self.enc.pred(n, p, s) for n, p in goal.items()}
        solver.add(z3.Not(z3.And(list(gp.values()))))
        if _check(solver, "implication") == z3.sat:
            m = solver.model()
            broken = _violated(m, gp)
            return QueryResult("implication", False, time.perf_counter() - t0, before=s.values(m),
                               detail=f"a state satisfies the invariant but not {', '.join(broken)}",
                               violated=broken)
        return QueryResult("implication", True, time.perf_counter() - t0)


def bmc(
    spec: Spec,
    props: Mapping[str, Pred] | None = None,
    depth: int = 10,
    *,
    timeout_ms: int | None = None,
) -> QueryResult:
    """Bounded model checking: the shortest behaviour (up to ``depth`` steps) violating a
    state invariant or an action invariant, or ``holds`` when none exists within the bound.

    Each depth is one satisfiability check of "some property fails here" on a fresh solver
    (z3's incremental push/pop mode was measured 10-15x slower on the migration specs);
    only at the depth where something fails are the properties asked one by one, in their
    declared order, so the reported property is the first that fails at the shortest depth
    (as in the explicit BFS).
    """
    props = dict(spec.invariants if props is None else props)
    enc = Encoding(spec)
    t0 = time.perf_counter()
    states = [SymView(spec.layout, "0")]
    base: list[z3.BoolRef] = [enc.init(states[0]), states[0].domain(), enc.constraint(states[0])]
    choice: list[list[z3.BoolRef]] = []

    def sat(extra: z3.BoolRef, what: str) -> z3.ModelRef | None:
        solver = new_solver(timeout_ms)
        solver.add(*base, extra)
        return solver.model() if _check(solver, what) == z3.sat else None

    def first_failing(bad: list[tuple[str, z3.BoolRef]], what: str) -> tuple[str, z3.ModelRef] | None:
        if not bad or sat(z3.Or([b for _, b in bad]), what) is None:
            return None
        for name, b in bad:
            model = sat(b, what)
            if model is not None:
                return name, model
        return None  # pragma: no cover - the disjunction was satisfiable

    for k in range(depth + 1):
        s = states[k]
        found = first_failing([(n, z3.Not(enc.pred(n, p, s))) for n, p in props.items()], f"BMC step {k}")
        if found is not None:
            name, model = found
            return QueryResult(
                "bmc",
                False,
                time.perf_counter() - t0,
                trace=_trace(model, spec, states, choice),
                detail=f"{name} is violated after {k} steps",
            )
        if k == depth:
            break
        t = SymView(spec.layout, str(k + 1))
        steps = [enc.transition(a, s, t) for a in spec.actions]
        choice.append(steps)
        base += [z3.Or(steps), enc.constraint(t)]
        bad = [
            (
                name,
                z3.Or(
                    [
                        z3.And(st, z3.Not(_as_bool(_call(name, p, s, t, a), name)))
                        for st, a in zip(steps, spec.actions, strict=True)
                    ]
                ),
            )
            for name, p in spec.action_invariants.items()
        ]
        found = first_failing(bad, f"BMC step {k + 1}")
        if found is not None:
            name, model = found
            p = spec.action_invariants[name]
            return QueryResult(
                "bmc",
                False,
                time.perf_counter() - t0,
                trace=_trace(model, spec, states + [t], choice, action_inv=(name, p)),
                detail=f"{name} is violated by step {k + 1}",
            )
        states.append(t)
    return QueryResult("bmc", True, time.perf_counter() - t0, detail=f"no violation within {depth} steps")


def _trace(
    model: z3.ModelRef,
    spec: Spec,
    states: list[SymView],
    choice: list[list[z3.BoolRef]],
    action_inv: tuple[str, TransitionPred] | None = None,
) -> list[tuple[str | None, dict[str, Any]]]:
    out: list[tuple[str | None, dict[str, Any]]] = [(None, states[0].values(model))]
    for k, steps in enumerate(choice[: len(states) - 1]):
        label = None
        for st, a in zip(steps, spec.actions, strict=True):
            if z3.is_true(model.eval(st, model_completion=True)):
                if action_inv is not None:
                    name, p = action_inv
                    bad = _as_bool(p(states[k], states[k + 1], a), name)
                    if k == len(states) - 2 and not z3.is_false(model.eval(bad, model_completion=True)):
                        continue
                label = a.label
                break
        out.append((label, states[k + 1].values(model)))
    return out
