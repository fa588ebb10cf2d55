"""QEMU's decision as decision tables over every configuration, enumerated by z3.

For one profile and device count, z3 enumerates the whole configuration space
(:mod:`model.decision.space`) under the z3 restatement of QEMU's rules
(:mod:`model.decision.smt`) and prints the choice as a table (:func:`decision_table`):
each row is a partial configuration (the other settings are "don't care") that z3 proved
to determine the outcome, and the rows together cover every configuration.  Two tables
per profile and device count: the *method* (and what type1 reports), and the *blockers*:
the verdict (migrates, blocked, or QEMU does not start because a device with
``enable-migration=on`` fails to realize) with the first blocker QEMU installs, and per
row the blocker codes every configuration of the row has and those some have (the exact
set of codes varies too much with device order to make a readable table of its own).

:func:`outcome_of` and :func:`evaluate` put :func:`model.decision.tracking.decide` and the
z3 terms at one configuration in the rows' terms, for the exhaustive agreement test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import z3

from model.contract import BLOCKER_CODES
from model.decision.smt import (
    Outcome,
    decide_terms,
    device_dirty_tracking_enabled,
    finish,
    initial,
    realize_step,
)
from model.decision.solver import unsat
from model.decision.space import (
    M_TYPE1,
    MAX_TABLE_DEVICES,
    METHODS,
    ON,
    Bool,
    ConfigSpace,
    ConfigVar,
    DeviceTerms,
    count_configurations,
)
from model.decision.tracking import Method, TrackingDecision
from model.profiles import Profile, get_profile

VERDICTS = ("migrates", "blocked", "QEMU does not start")


def outcome_of(decision: TrackingDecision) -> dict[str, Any]:
    """A :class:`~model.decision.tracking.TrackingDecision` in the tables' terms (what the rows of
    :func:`decision_table` claim)."""
    method = decision.method
    reports = "-"
    if method is Method.TYPE1:
        reports = "pinned pages" if decision.type1_pinned_scope else "every mapped page"
    verdict = VERDICTS[2 if decision.realize_failed else 1 if decision.blocked else 0]
    return {
        "method": method.value,
        "type1_reports": reports,
        "verdict": verdict,
        "first_blocker": decision.blocked_by[0] if decision.blocked_by else "-",
        "blockers": set(decision.blocked_by),
    }


def evaluate(space: ConfigSpace, config: Mapping[str, str],
             mutations: Iterable[str] = ()) -> dict[str, Any]:
    """The z3 decision at one configuration, in the same terms as :func:`outcome_of`."""
    o = decide_terms(space, mutations)
    subst = [(v.var, z3.IntVal(v.values.index(config[v.key]))) for v in space.vars]

    def val(t: z3.ExprRef) -> Any:
        r = z3.simplify(z3.substitute(t, *subst))
        return z3.is_true(r) if z3.is_bool(r) else r.as_long()

    method = val(o.method)
    reports = "-"
    if method == M_TYPE1:
        reports = "pinned pages" if val(o.pinned_scope) else "every mapped page"
    blockers = {c for c, b in zip(BLOCKER_CODES, o.blockers, strict=True) if val(b)}
    first = val(o.first_blocker)
    verdict = VERDICTS[2 if val(o.realize_error) else 1 if blockers else 0]
    return {
        "method": METHODS[method].value,
        "type1_reports": reports,
        "verdict": verdict,
        "first_blocker": BLOCKER_CODES[first] if first >= 0 else "-",
        "blockers": blockers,
    }


# --- decision tables --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A partial configuration and the outcome z3 proved it determines.

    ``conditions`` maps a setting to the values it may take (a setting not listed: any
    value); ``outcome`` names the decision every such configuration gets.
    """

    conditions: Mapping[str, tuple[str, ...]]
    outcome: Mapping[str, Any]
    configurations: int  # configurations the row covers

    def matches(self, config: Mapping[str, str]) -> bool:
        return all(config[k] in vs for k, vs in self.conditions.items())


@dataclass
class Table:
    profile: str
    devices: int
    kind: str  # "method" | "blockers"
    columns: list[ConfigVar]
    rows: list[Row]
    configurations: int  # size of the configuration space
    seconds: float
    solver_calls: int

    def lookup(self, config: Mapping[str, str]) -> Row | None:
        """The first row ``config`` matches (rows may overlap, but each determines its
        outcome, so overlapping rows agree)."""
        return next((row for row in self.rows if row.matches(config)), None)

    def used_columns(self) -> list[ConfigVar]:
        """The settings some row depends on (the outcome ignores the others)."""
        used = {k for r in self.rows for k in r.conditions}
        return [c for c in self.columns if c.key in used]

    def as_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "devices": self.devices,
            "kind": self.kind,
            "columns": [{"key": c.key, "values": list(c.values)} for c in self.columns],
            "configurations": self.configurations,
            "seconds": round(self.seconds, 3),
            "solver_calls": self.solver_calls,
            "rows": [{"when": {k: list(v) for k, v in r.conditions.items()},
                      "then": dict(r.outcome), "configurations": r.configurations}
                     for r in self.rows],
        }


Part = tuple[str, z3.ExprRef, Callable[[z3.ExprRef], Any]]



def _method_outcome(o: Outcome) -> list[Part]:
    """The 'method' table's outcome: the method, and for type1 what GET_BITMAP reports."""
    scope = z3.If(o.method == M_TYPE1, z3.If(o.pinned_scope, 1, 2), 0)
    return [
        ("method", o.method, lambda v: METHODS[v.as_long()].value),
        ("type1_reports", scope, lambda v: ("-", "pinned pages", "every mapped page")[v.as_long()]),
    ]


def _verdict_outcome(o: Outcome) -> list[Part]:
    """The 'blockers' table's outcome: can the VM migrate, is it blocked, or does a device
    fail to realize (enable-migration=on) so that QEMU does not start."""
    verdict = z3.If(o.realize_error, 2, z3.If(o.blocked, 1, 0))
    return [("verdict", verdict, lambda v: VERDICTS[v.as_long()]),
            ("first_blocker", o.first_blocker,
             lambda v: BLOCKER_CODES[v.as_long()] if v.as_long() >= 0 else "-")]


TABLE_KINDS: dict[str, Callable[[Outcome], list[Part]]] = {
    "method": _method_outcome,
    "blockers": _verdict_outcome,
}


def decision_table(profile: str | Profile, devices: int, kind: str = "blockers", *,
                   mutations: Iterable[str] = (), raw: bool = False) -> Table:
    """Every configuration of ``devices`` devices under ``profile``, as z3 enumerates it.

    All-solutions enumeration with generalisation: z3 picks a configuration no row covers
    yet and the outcome is read from its model; then the row is widened setting by setting
    while z3 still proves that the partial configuration forces that outcome: a setting is
    dropped ("any value") when it can be, else widened to two of its three values; each
    successful proof also drops the settings outside its unsat core.  The row is recorded
    and excluded from the search, which ends when every configuration is covered.  Rows
    that other rows with the same outcome cover are then removed.  Each remaining row is a
    proved implication "these settings => this outcome"; overlapping rows agree.

    For the 'blockers' table (outcome: the verdict), each row also lists the blocker codes
    present in every configuration of the row (``blockers``) and those present in some
    (``blockers_possible``), both proved by z3.
    """
    p = get_profile(profile) if isinstance(profile, str) else profile
    if not 1 <= devices <= MAX_TABLE_DEVICES:
        raise ValueError(f"devices must be 1..{MAX_TABLE_DEVICES}, got {devices}")
    if kind not in TABLE_KINDS:
        raise ValueError(f"table kind must be one of {', '.join(TABLE_KINDS)}")
    t0 = time.perf_counter()
    space = ConfigSpace(p, devices, raw=raw)
    outcome = decide_terms(space, mutations)
    parts = TABLE_KINDS[kind](outcome)
    cover = _Cover(space, parts)
    cubes = cover.enumerate()
    cubes = cover.irredundant(cubes)
    rows = []
    for cond, results in cubes:
        conditions = {k: tuple(space.vars[i].values[x] for x in cond[k])
                      for i, k in enumerate(v.key for v in space.vars) if k in cond}
        rendered: dict[str, Any] = {name: fmt(r) for (name, _, fmt), r
                                    in zip(parts, results, strict=True)}
        if kind == "blockers":
            always, possible = cover.codes(cond, outcome)
            rendered["blockers"] = always
            rendered["blockers_possible"] = possible
        rows.append(Row(conditions, rendered, count_configurations(space, conditions)))
    rows.sort(key=lambda r: (_outcome_key(kind, r.outcome), len(r.conditions),
                             [(k, r.conditions[k]) for k in r.conditions]))
    return Table(p.name, devices, kind, list(space.vars), rows, space.size(),
                 time.perf_counter() - t0, cover.calls)


Cube = dict[str, tuple[int, ...]]


class _Cover:
    """The z3 machinery of :func:`decision_table`: one solver proving "a partial
    configuration forces an outcome", one enumerating the configurations not yet covered."""

    def __init__(self, space: ConfigSpace, parts: list[Part]) -> None:
        self.space = space
        self.parts = parts
        self.calls = 0
        dom = space.domain()
        self.enum, self.prove = z3.Solver(), z3.Solver()
        self.enum.add(dom)
        self.prove.add(dom)
        # the outcome as fresh variables, so "differs from an outcome" is one clause
        self.out_vars = [z3.Bool(f"out[{name}]") if z3.is_bool(t) else z3.Int(f"out[{name}]")
                         for name, t, _ in parts]
        self.prove.add([ov == t for ov, (_, t, _) in zip(self.out_vars, parts, strict=True)])
        self._proxies: dict[tuple[str, tuple[int, ...]], Bool] = {}
        self._switches: dict[str, Bool] = {}
        self._cubes: dict[tuple, Bool] = {}

    def literal(self, key: str, ks: tuple[int, ...]) -> Bool:
        """A proxy meaning "setting ``key`` takes one of the values ``ks``" (assumptions
        must be constants; unsat cores then name settings)."""
        lit = self._proxies.get((key, ks))
        if lit is None:
            var = self.space.var(key)
            assert var is not None
            lit = z3.Bool(f"in[{key}:{','.join(map(str, ks))}]")
            self.prove.add(z3.Implies(lit, z3.Or([var.var == k for k in ks])))
            self._proxies[(key, ks)] = lit
        return lit

    def switch(self, name: str, claim: Bool) -> Bool:
        """A literal that, assumed, adds ``claim`` to the proving solver."""
        lit = self._switches.get(name)
        if lit is None:
            lit = z3.Bool(f"switch[{name}]")
            self.prove.add(z3.Implies(lit, claim))
            self._switches[name] = lit
        return lit

    def cube(self, cond: Cube) -> Bool:
        key = tuple(sorted(cond.items()))
        term = self._cubes.get(key)
        if term is None:
            term = z3.And([z3.Or([self.space.var(k).var == x for x in ks])  # type: ignore[union-attr]
                           for k, ks in cond.items()])
            self._cubes[key] = term
        return term

    def unsat(self, cond: Cube, *extra: Bool) -> bool:
        self.calls += 1
        lits = [self.literal(k, ks) for k, ks in cond.items()]
        return unsat(self.prove, *extra, *lits)

    def _differs(self, results: list[z3.ExprRef]) -> Bool:
        key = "differs:" + ",".join(str(r) for r in results)
        return self.switch(key, z3.Or([ov != r for ov, r in zip(self.out_vars, results,
                                                                strict=True)]))

    def enumerate(self) -> list[tuple[Cube, list[z3.ExprRef]]]:
        out: list[tuple[Cube, list[z3.ExprRef]]] = []
        while True:
            self.calls += 1
            if unsat(self.enum):  # every configuration is covered
                return out
            m = self.enum.model()
            values = {v.key: m.eval(v.var, model_completion=True).as_long() for v in self.space.vars}
            results = [m.eval(t, model_completion=True) for _, t, _ in self.parts]
            cond = self._generalise({k: (x,) for k, x in values.items()}, self._differs(results))
            self.enum.add(z3.Not(self.cube(cond)))
            out.append((cond, results))

    def _generalise(self, cond: Cube, differs: Bool) -> Cube:
        def shrink(c: Cube) -> Cube:
            core = {x.get_id() for x in self.prove.unsat_core()}
            return {k: ks for k, ks in c.items() if self.literal(k, ks).get_id() in core}

        ok = self.unsat(cond, differs)
        assert ok, "a full configuration determines the outcome"
        cond = shrink(cond)
        tried: set[str] = set()
        while True:
            # drop one more setting: devices first (the last device first), globals last
            key = next((k for k in sorted(cond, key=_drop_order) if k not in tried), None)
            if key is None:
                return cond
            tried.add(key)
            trial = {k: ks for k, ks in cond.items() if k != key}
            if self.unsat(trial, differs):
                cond = shrink(trial)
                continue
            var = self.space.var(key)
            assert var is not None
            if len(var.values) > 2 and len(cond[key]) == 1:
                for other in range(len(var.values)):
                    wider = tuple(sorted((*cond[key], other)))
                    if other not in cond[key] and self.unsat({**cond, key: wider}, differs):
                        cond = shrink({**cond, key: wider})
                        break

    def irredundant(self, cubes: list[tuple[Cube, list[z3.ExprRef]]]
                    ) -> list[tuple[Cube, list[z3.ExprRef]]]:
        """Drop rows that the other rows with the same outcome cover."""
        groups: dict[str, list[int]] = {}
        for i, (_, results) in enumerate(cubes):
            groups.setdefault(",".join(str(r) for r in results), []).append(i)
        dropped: set[int] = set()
        for members in groups.values():
            # the most specific rows first: they are the likeliest to be redundant
            for i in sorted(members, key=lambda j: -len(cubes[j][0])):
                others = [self.cube(cubes[j][0]) for j in members if j != i and j not in dropped]
                if not others:
                    continue
                self.calls += 1
                s = z3.Solver()
                s.add(self.space.domain(), self.cube(cubes[i][0]), z3.Not(z3.Or(others)))
                if unsat(s):
                    dropped.add(i)
        return [c for i, c in enumerate(cubes) if i not in dropped]

    def codes(self, cond: Cube, o: Outcome) -> tuple[list[str], list[str]]:
        """Blocker codes present in every configuration of the row, and in some but not all."""
        always, possible = [], []
        for code, b in zip(BLOCKER_CODES, o.blockers, strict=True):
            if self.unsat(cond, self.switch(f"not {code}", z3.Not(b))):
                always.append(code)
            elif not self.unsat(cond, self.switch(code, b)):
                possible.append(code)
        return always, possible


def check_columns(profile: str | Profile, devices: int) -> bool:
    """z3 proves that merging ``dma_logging`` and ``x-device-dirty-page-tracking`` into one
    ``device-dirty-tracking`` column changes no outcome (method, scope, blockers, error)."""
    p = get_profile(profile) if isinstance(profile, str) else profile
    space = ConfigSpace(p, devices, raw=True)
    full = decide_terms(space)
    merged_devices = []
    for i in range(devices):
        d = space.device(i)
        logs = device_dirty_tracking_enabled(p, DeviceTerms(z3.IntVal(ON), d.dma_logging,
                                                            d.x_device_dirty, d.p2p, d.pins,
                                                            d.iommu_dt))
        merged_devices.append(DeviceTerms(d.mode, logs, z3.IntVal(ON), d.p2p, d.pins, d.iommu_dt))
    g = space.globals()
    s = initial()
    for d in merged_devices:
        s = realize_step(p, g, s, d)
    merged = finish(p, g, s)
    same = z3.And(full.method == merged.method, full.pinned_scope == merged.pinned_scope,
                  full.realize_error == merged.realize_error,
                  *[a == b for a, b in zip(full.blockers, merged.blockers, strict=True)])
    solver = z3.Solver()
    solver.add(space.domain(), z3.Not(same))
    return unsat(solver)


def _drop_order(key: str) -> tuple[int, str]:
    if key.startswith("dev"):
        return (0, f"{9 - int(key[3])}{key}")
    return (1, key)


def _column_order(space: ConfigSpace, keys: Iterable[str]) -> list[str]:
    ks = set(keys)
    return [v.key for v in space.vars if v.key in ks]


def _outcome_key(kind: str, outcome: Mapping[str, Any]) -> tuple:
    if kind == "method":
        return ([m.value for m in METHODS].index(outcome["method"]), outcome["type1_reports"])
    return (VERDICTS.index(outcome["verdict"]), [BLOCKER_CODES.index(c) for c in outcome["blockers"]])


