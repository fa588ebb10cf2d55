"""``vfio-migcheck prove``: NoPageLost through DirtyTrackingSound for guests of any size.

For each spec file and each class of its pages (:mod:`model.migration.page_proof`, which states the
reduction, the invariant and why one page suffices), the per-page instance of the
migration model is proved by induction with z3 (``checker.smt.Induction``):

0. separation   the reduction's premise: the rest of the guest never influences the page
                under proof, for every state and action (without a vIOMMU; with one the
                premise holds per page and IOVA slot and is not checked per bit);
1. ``Control``  the reachable combinations of the control variables, by explicit search
                of the per-page instance (two pages), part of the invariant and so
                re-checked by z3 rather than trusted;
2. initiation   Init => Inv;
3. consecution  Inv /\\ Next => Inv' (and the action invariant), action by action: a
                failure is a counterexample to induction (state before, action, after);
4. implication  Inv => NoPageLost.

Inv is ``Control``, the spec's control-level invariants and the per-page strengthening
of DirtyTrackingSound.  A spec expecting a violation must be refuted at that property (a
page property: at any conjunct of its proof); every other spec must be proved.

The driver lives here, not in ``model/``, because the model may use only the checker's
specification language (docs/design.md#folder-rules).

Exit codes: 0 every result as expected, 1 otherwise, 3 z3 could not decide a query
(``unknown``: a timeout), 2 a usage or spec-file error, 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import z3

from checker import smt
from checker.explore import Limits, explore
from checker.lang.layout import Layout
from checker.smt import Pred, TransitionPred
from checker.trace import changes, format_value
from checker.verdict import EXIT_INTERRUPTED, EXIT_LIMIT, EXIT_MISMATCH, EXIT_OK
from cli.errors import UserError
from cli.interrupts import caused_by_ctrl_c, z3_interruptible
from cli.limits import stopped_by
from cli.load import collect_paths, load_target, not_a_scenario
from cli.options import FiniteFloat, writable_file, write_text
from model.contract import PROPERTY_KINDS
from model.migration.page_proof import (
    BITMAP_EMPTY_TEST_PHASES,
    PAGE,
    PAGE_PROPERTIES,
    PAGE_VARIABLES,
    Obligation,
    PageClass,
    control_invariants,
    describe_invariant,
    expected_group,
    obligation,
    page_classes,
    page_invariants,
    reached_control,
)
from model.scenario import Scenario

CLAIM = "proved for any number of pages"
DEFAULT_TIMEOUT_MS = 120_000


@dataclass
class CounterexampleToInduction:
    query: str  # initiation | consecution | implication
    action: str | None
    violated: list[str]
    before: dict[str, Any]
    after: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ClassProof:
    page_class: PageClass
    holds: bool
    explored_states: int
    control_states: int
    conjuncts: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    cti: CounterexampleToInduction | None = None
    layout: Layout | None = field(default=None, repr=False)
    # the reduction's premise checked by z3: [] holds, a list of violations, or None when
    # it is not a per-page statement (vIOMMU: see model.migration.page_proof)
    separation: list[str] | None = None
    actions: int = 0  # actions checked in consecution
    actions_disabled: int = 0  # of which never enabled in a state satisfying Inv

    def as_json(self) -> dict[str, Any]:
        return {
            "pages": list(self.page_class.pages),
            "class": self.page_class.describe(),
            "result": "proved" if self.holds else "refuted",
            "separation": ("not applicable (vIOMMU)" if self.separation is None
                           else "holds" if not self.separation else self.separation),
            "explored_states": self.explored_states,
            "actions": self.actions,
            "actions_never_enabled": self.actions_disabled,
            "control_states": self.control_states,
            "invariant": self.conjuncts,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "cti": self.cti.as_json() if self.cti else None,
        }


@dataclass
class SpecProof:
    path: Path
    name: str
    expected: str
    outcome: str  # proved | refuted | skipped | error | unknown (z3 could not decide)
    matched: bool
    classes: list[ClassProof]
    seconds: float
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.name,
            "file": str(self.path),
            "outcome": self.outcome,
            "claim": CLAIM if self.outcome == "proved" else None,
            "expected": self.expected,
            "matched": self.matched,
            "message": self.message or None,
            "seconds": round(self.seconds, 3),
            "classes": [c.as_json() for c in self.classes],
        }


# --- the queries -----------------------------------------------------------------------


def _reachable_control(ob: Obligation, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Every combination of control values the per-page instance reaches."""
    spec = dataclasses.replace(ob.spec, invariants={}, action_invariants={}, liveness={},
                               witnesses={}, check_deadlock=False)
    r = explore(spec, keep_graph=True, check_liveness=False, limits=Limits(seconds=max_seconds))
    if r.outcome != "pass" or r.graph_data is None:
        raise RuntimeError(f"exploring the per-page instance stopped: {stopped_by(r) or r.outcome}")
    rows = r.graph_data.rows
    cols = np.stack([spec.layout.column(rows, k) for k in ob.control_keys], axis=1)
    return np.unique(cols, axis=0), r.stats.distinct


def _check_separation(ob: Obligation, timeout_ms: int, engine: smt.Induction | None = None) -> list[str]:
    """The reduction's premise, by z3, for every state (not only reachable ones): take two
    states with the same control and the same page-0 bits (page 1 arbitrary in each).
    For every action not on page 1, the guard agrees, page 0's next bits agree, and so
    does the next control -- except when one of them is at the bitmap-empty test.
    Returns the violations ("action: what differs"); empty when the premise holds."""
    spec = ob.spec
    lay = spec.layout
    engine = engine if engine is not None else smt.Induction(spec, timeout_ms=timeout_ms)
    enc, s, t = engine.enc, engine.s, engine.t
    s2, t2 = smt.SymView(lay, "s2"), smt.SymView(lay, "t2")
    pages = [sl for sl in lay.slots if sl.field.name in PAGE_VARIABLES]
    ctrl = [sl for sl in lay.slots if sl.field.name not in PAGE_VARIABLES]

    def same_control(a: smt.SymView, b: smt.SymView) -> z3.BoolRef:
        return z3.And([a.vars[sl.key] == b.vars[sl.key] for sl in ctrl])

    def same_page(a: smt.SymView, b: smt.SymView) -> z3.BoolRef:
        return z3.And([z3.Extract(PAGE, PAGE, a.vars[sl.key]) == z3.Extract(PAGE, PAGE, b.vars[sl.key])
                       for sl in pages])

    def at_test(v: smt.SymView) -> z3.BoolRef:
        return z3.Or([v.vars["pc"] == int(ph) for ph in BITMAP_EMPTY_TEST_PHASES])

    solver = smt.new_solver(timeout_ms)
    solver.add(s.domain(), s2.domain(), same_control(s, s2), same_page(s, s2))
    bad = []
    for a in spec.actions:
        if ob.on_rest(a.label):
            continue
        tr, tr2 = engine.step(a), enc.transition(a, s2, t2)
        checks = {
            "its guard reads page 1": enc.pred("g", a.guard, s) != enc.pred("g", a.guard, s2),
            "page 0's next bits depend on page 1": z3.And(tr, tr2, z3.Not(same_page(t, t2))),
            "the next control depends on page 1": z3.And(
                tr, tr2, z3.Not(same_control(t, t2)), z3.Not(at_test(t)), z3.Not(at_test(t2))),
        }
        for what, claim in checks.items():
            solver.push()
            solver.add(claim)
            if smt.satisfiable(solver, f"separation of {a.label}"):
                bad.append(f"{a.label}: {what}")
            solver.pop()
    return bad


def _invariant(ob: Obligation, rows: np.ndarray) -> tuple[dict[str, Pred], dict[str, Pred],
                                                          dict[str, TransitionPred]]:
    """Inv (Control, the control invariants, the page strengthening), the goal it must
    imply (NoPageLost) and the action invariants every step from Inv must satisfy."""
    inv = {"Control": reached_control(ob, rows.tolist()), **control_invariants(ob)}
    pages = page_invariants(ob)
    goal = {n: p for n, p in pages.items() if n == "NoPageLost"}  # proved by implication
    inv.update({n: p for n, p in pages.items() if n not in goal})
    act_invs = {n: p for n, p in ob.spec.action_invariants.items() if n in ob.properties}
    return inv, goal, act_invs


Say = Callable[[str], None]


def _prove_class(ob: Obligation, expect: tuple[str, ...], *, timeout_ms: int,
                 max_seconds: float | None, control_rows: np.ndarray | None = None,
                 say: Say | None = None) -> ClassProof:
    """Prove one page class.  ``control_rows`` replaces the reached control combinations
    (tests use it to show that a wrong set is caught, not trusted); ``say`` is told each
    phase as it starts (progress)."""
    say = say or (lambda text: None)
    spec = ob.spec
    t0 = time.perf_counter()
    say("z3: the reduction's premise" if ob.separation_checkable else "building the z3 encoding")
    engine = smt.Induction(spec, timeout_ms=timeout_ms)
    separation = _check_separation(ob, timeout_ms, engine) if ob.separation_checkable else None
    sep_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("the control set, by explicit search")
    rows, explored = _reachable_control(ob, max_seconds)
    if control_rows is not None:
        rows = control_rows
    seconds = {"control": time.perf_counter() - t0}
    if separation is not None:
        seconds["separation"] = sep_seconds
    inv, goal, act_invs = _invariant(ob, rows)
    proof = ClassProof(ob.page_class, True, explored, len(rows), dict(describe_invariant(ob)),
                       seconds, layout=spec.layout, separation=separation)
    # initiation, consecution (an expected violation looked for first), implication
    queries: list[tuple[str, Callable[[], smt.QueryResult | None]]] = [
        ("initiation", lambda: engine.initiation(inv)),
        ("consecution", lambda: engine.consecution(inv, act_invs, first=expect)),
        ("implication", lambda: engine.implication(inv, goal) if goal else None),
    ]
    for query, run in queries:
        say(f"z3: {query}")
        q0 = time.perf_counter()
        q = run()
        seconds[query] = time.perf_counter() - q0
        if query == "consecution" and q is not None:
            proof.actions, proof.actions_disabled = len(spec.actions), q.actions_disabled
        if q is not None and not q.holds:
            proof.holds = False
            proof.cti = CounterexampleToInduction(q.query, q.action, q.violated, q.before or {}, q.after)
            break
    return proof


def _prefixed(say: Say | None, where: str) -> Say | None:
    return None if say is None else (lambda text: say(where + text))


def prove_scenario(scenario: Scenario, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                   max_seconds: float | None = None, say: Say | None = None) -> SpecProof:
    """Prove (or refute) every page class of ``scenario`` and compare with its expect;
    ``say`` hears each phase as it starts (``prove: NAME: page class 1/2: z3: consecution``)."""
    t0 = time.perf_counter()
    exp = scenario.check.expect
    expected = "pass" if exp is None else str(exp)
    want = exp.invariant if exp is not None and exp.kind == "violation" else None
    if want is not None and PROPERTY_KINDS[want] not in ("invariant", "action-invariant"):
        return SpecProof(scenario.path, scenario.name, expected, "skipped", True, [],
                         time.perf_counter() - t0,
                         f"{want} is a {PROPERTY_KINDS[want]} property: induction does not "
                         "decide it (use check)")
    group = expected_group(want)
    classes: list[ClassProof] = []
    all_classes = page_classes(scenario)
    for i, cls in enumerate(all_classes, 1):
        ob = obligation(scenario, cls)
        where = f"prove: {scenario.name}: page class {i}/{len(all_classes)}: "
        classes.append(_prove_class(ob, group, timeout_ms=timeout_ms, max_seconds=max_seconds,
                                    say=_prefixed(say, where)))
        if not classes[-1].holds:
            break
    broken = [f for c in classes for f in (c.separation or [])]
    if broken:
        return SpecProof(scenario.path, scenario.name, expected, "error", False, classes,
                         time.perf_counter() - t0,
                         "the per-page reduction does not apply: " + "; ".join(broken))
    refuted = next((c for c in classes if not c.holds), None)
    outcome = "refuted" if refuted else "proved"
    if want is None:
        matched = refuted is None
    else:
        matched = refuted is not None and refuted.cti is not None and bool(
            set(refuted.cti.violated) & set(group))
    return SpecProof(scenario.path, scenario.name, expected, outcome, matched, classes,
                     time.perf_counter() - t0)


# --- output ------------------------------------------------------------------------------


def render_cti(cti: CounterexampleToInduction, layout: Layout | None = None) -> str:
    """A counterexample to induction for people: the state before (every variable), the
    action, and what it changed."""
    lines = []
    what = ", ".join(cti.violated) or "the invariant"
    if cti.query == "consecution":
        lines.append(f"counterexample to induction: {cti.action} leads from a state "
                     f"satisfying the invariant to one violating {what}")
        lines.append("  state before:")
        lines += [f"    {k} = {format_value(layout, k, v)}" for k, v in cti.before.items()]
        lines.append(f"  action: {cti.action}")
        lines.append("  state after (what changed):")
        changed = changes(cti.before, cti.after or {})
        lines += [f"    {k} = {format_value(layout, k, v)}" for k, v in changed.items()] or ["    (nothing)"]
    else:
        head = ("an initial state violates" if cti.query == "initiation"
                else "a state satisfying the invariant violates")
        lines.append(f"{cti.query} fails: {head} {what}")
        lines += [f"    {k} = {format_value(layout, k, v)}" for k, v in cti.before.items()]
    return "\n".join(lines)


def render(p: SpecProof) -> str:
    ok = "ok" if p.matched else "MISMATCH"
    verdict = {"proved": CLAIM, "refuted": "refuted"}.get(p.outcome, p.outcome)
    lines = [f"{p.name} ({p.path}): {verdict} [expected {p.expected}: {ok}] "
             f"{p.seconds:.2f} s"]
    if p.message:
        lines.append(f"  {p.message}")
    for i, c in enumerate(p.classes, 1):
        lines += _render_class(i, c)
    return "\n".join(lines)


def _render_class(i: int, c: ClassProof) -> list[str]:
    """One page class: its verdict, the queries' times, the premise and the invariant."""
    pages = ", ".join(f"p{x}" for x in c.page_class.pages)
    lines = [f"  page class {i} ({c.page_class.describe()}; spec pages {pages}): "
             f"{'proved' if c.holds else 'refuted'}",
             f"    Control: {c.control_states} combinations reached "
             f"({c.explored_states:,} states of the per-page instance)"]
    times = ", ".join(f"{k} {v:.2f} s" for k, v in c.seconds.items())
    lines.append(f"    queries: {times}")
    if c.separation is None:
        lines.append("    reduction premise: per (page, IOVA slot) with a vIOMMU, not "
                     "checked per bit (see model/migration/page_proof.py)")
    elif not c.separation:
        lines.append("    reduction premise (page 1 never influences page 0): proved by z3")
    if c.holds:
        lines.append(f"    consecution over {c.actions} actions "
                     f"({c.actions_disabled} never enabled under the invariant)")
        implied = [n for n in c.conjuncts if n == "NoPageLost"]
        steps = [n for n in c.conjuncts if n == "LegalDeviceArcs"]
        conj = [n for n in c.conjuncts if n not in implied and n not in steps]
        lines.append("    Inv = " + " /\\ ".join(conj))
        if implied:
            lines.append(f"    Inv => {', '.join(implied)}")
        if steps:
            lines.append(f"    every step from Inv satisfies {', '.join(steps)}")
    if c.cti is not None:
        lines += ["    " + x for x in render_cti(c.cti, c.layout).splitlines()]
    return lines


def _scenarios(paths: tuple[str, ...]) -> tuple[list[Scenario], list[str]]:
    """The QEMU scenarios under ``paths``, and what was skipped: engine examples and
    cloud-hypervisor scenarios (the page proof is stated over QEMU's flow,
    model/migration/page_proof.py); either named on the command line is an error."""
    scenarios: list[Scenario] = []
    skipped = other_vmm = 0
    named = [Path(p) for p in paths]
    for f in collect_paths(paths):
        target = load_target(f)
        if target.migration is None:
            if f in named:
                raise not_a_scenario(f, "prove")
            skipped += 1
        elif target.migration.scenario.is_cloud_hypervisor:
            if f in named:
                raise UserError(f"{f}: prove covers vmm = \"qemu\" scenarios; this one is "
                                "cloud-hypervisor's (check it with vfio-migcheck check)")
            other_vmm += 1
        else:
            scenarios.append(target.migration.scenario)
    skips = [f"{skipped} engine-validation example(s)"] if skipped else []
    skips += [f"{other_vmm} cloud-hypervisor scenario(s)"] if other_vmm else []
    return scenarios, skips


@click.command("prove")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "json_out", metavar="FILE|-", help="Write the results as JSON.")
@click.option("--timeout", "timeout_s", type=FiniteFloat(min=0, min_open=True),
              default=DEFAULT_TIMEOUT_MS / 1000, show_default=True,
              help="Seconds z3 may spend on one query.")
def prove(paths: tuple[str, ...], json_out: str | None, timeout_s: float) -> None:
    """Prove NoPageLost (through DirtyTrackingSound) for guests of ANY size by induction
    with z3, one page at a time, or print the counterexample to induction.

    SPEC files or directories (default: specs/); engine-validation examples are skipped.
    A spec expecting a violation must be refuted at that property.  Exit 0 when every
    result is as expected, 1 otherwise, 3 when z3 could not decide a query (--timeout)
    and nothing else went wrong, 2 on a usage or spec-file error, 130 interrupted (the
    JSON holds the specs done).
    """
    writable_file(json_out, "--json")
    scenarios, skips = _scenarios(paths)
    z3_interruptible()
    results: list[SpecProof] = []
    interrupted = False
    try:
        for sc in scenarios:
            try:
                results.append(prove_scenario(sc, timeout_ms=int(timeout_s * 1000),
                                              say=lambda text: click.echo(text, err=True)))
            except TimeoutError as exc:  # z3 answered unknown: no verdict (exit 3)
                if caused_by_ctrl_c(exc):
                    raise  # the spec was not done: it is left out, not "unknown"
                exp = sc.check.expect
                results.append(SpecProof(sc.path, sc.name, "pass" if exp is None else str(exp), "unknown",
                                         False, [], 0.0, str(exc)))
    except (KeyboardInterrupt, Exception) as exc:  # what a Ctrl-C broke (see cli/tables.py)
        if not caused_by_ctrl_c(exc):
            raise
        interrupted = True
    _write(results, json_out, skips, interrupted)
    if interrupted:
        click.echo(f"interrupted: {len(results)} of {len(scenarios)} spec(s) done", err=True)
    sys.exit(prove_exit_code(results, interrupted))


def prove_exit_code(results: list[SpecProof], interrupted: bool) -> int:
    """130 interrupted; 1 a result not as expected; 3 z3 could not decide one; else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if any(not r.matched and r.outcome != "unknown" for r in results):
        return EXIT_MISMATCH
    return EXIT_LIMIT if any(r.outcome == "unknown" for r in results) else EXIT_OK


def _write(results: list[SpecProof], json_out: str | None, skips: list[str], interrupted: bool) -> None:
    if json_out != "-":
        for r in results:
            click.echo(render(r))
        n_bad = sum(not r.matched for r in results)
        note = f" ({', '.join(skips)} skipped)" if skips else ""
        click.echo(f"\n{len(results)} spec(s): "
                   + ("every result as expected" if n_bad == 0 else f"{n_bad} not as expected")
                   + note + ".")
    if json_out is not None:
        doc = {"version": 1, "claim": CLAIM, "page_properties": list(PAGE_PROPERTIES),
               "interrupted": interrupted, "results": [r.as_json() for r in results]}
        text = json.dumps(doc, indent=2, default=str)
        if json_out == "-":
            click.echo(text)
        else:
            write_text(json_out, text + "\n", "--json")
