"""Properties of QEMU's decision proved by z3 for **any** number of devices.

:func:`prove_any_devices`: device DMA logging is never chosen when some device lacks it;
with a vIOMMU it is never the method of a migration that can start (every profile forbids
it); two or more devices, one without ``VFIO_MIGRATION_P2P``, are blocked (every profile
from 8.0).  The proof is an induction over the realize fold of :mod:`model.decision.smt`
(the same step function the decision tables unroll), over arbitrary devices and global
settings (:mod:`model.decision.space`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from model.decision.smt import (
    Outcome,
    Realized,
    finish,
    fold,
    initial,
    realize_step,
    symbolic_realized,
)
from model.decision.solver import unsat
from model.decision.space import (
    M_DEVICE,
    MAX_TABLE_DEVICES,
    ON_OFF_AUTO,
    Bool,
    ConfigSpace,
    DeviceTerms,
    GlobalTerms,
    symbolic_device,
    symbolic_globals,
)
from model.decision.tracking import MULTIPLE_DEVICES, MULTIPLE_DEVICES_WITHOUT_P2P
from model.profiles import PROFILE_NAMES, Profile, ViommuRule, get_profile

# --- properties for any number of devices ------------------------------------------------


@dataclass(frozen=True)
class DeviceProperty:
    """A claim about QEMU's decision for every configuration, whatever the device count.

    ``holds(p, g, s, o)``: the claim about the final summary ``s`` (after the last device)
    and its outcome ``o``.  ``strengthening(p, g, s)``: the inductive invariant of the fold
    that implies it (see :func:`prove_any_devices`).
    """

    name: str
    text: str
    holds: Callable[[Profile, GlobalTerms, Realized, Outcome], Bool]
    strengthening: Callable[[Profile, GlobalTerms, Realized], Bool]
    applies: Callable[[Profile], bool] = lambda p: True


def _structure(p: Profile, g: GlobalTerms, s: Realized) -> Bool:
    """Facts true of every reachable summary, in every profile.

    * nothing has happened before the first device;
    * a realize error (``stopped``) always comes with a blocker, so a migratable VM has not
      stopped;
    * while no blocker exists, every device seen so far is migratable (enable-migration=off
      is itself a blocker) and the two P2P facts coincide (the migratable devices are all
      the devices);
    * the shared multi-device blocker is only installed alongside its code.
    """
    blocked = z3.Or(s.blockers)
    multi = z3.Or(s.blocker(MULTIPLE_DEVICES), s.blocker(MULTIPLE_DEVICES_WITHOUT_P2P))
    return z3.And(
        z3.Implies(s.seen == 0, z3.And(z3.Not(blocked), z3.Not(s.stopped), s.migratable == 0,
                                       s.migratable_all_p2p, s.all_p2p, s.all_dma_logging,
                                       s.all_device_dt, z3.Not(s.any_device_dt))),
        z3.Implies(z3.And(s.seen >= 1, s.all_device_dt), s.any_device_dt),
        z3.Implies(s.stopped, blocked),
        z3.Implies(s.multi_blocker, multi),
        z3.Implies(z3.Not(blocked), z3.And(s.migratable == s.seen,
                                          s.migratable_all_p2p == s.all_p2p)),
    )


def _logging_needs_every_device(p: Profile, g: GlobalTerms, s: Realized, o: Outcome) -> Bool:
    return z3.Implies(z3.Not(s.all_dma_logging), o.method != M_DEVICE)


def _no_active_logging_with_viommu(p: Profile, g: GlobalTerms, s: Realized, o: Outcome) -> Bool:
    return z3.Implies(z3.And(g.viommu, o.method == M_DEVICE), o.blocked)


def _multi_needs_p2p(p: Profile, g: GlobalTerms, s: Realized, o: Outcome) -> Bool:
    return z3.Implies(z3.And(s.seen >= 2, z3.Not(s.all_p2p)), o.blocked)


def _viommu_strengthening(p: Profile, g: GlobalTerms, s: Realized) -> Bool:
    # once a device with device dirty tracking is realized behind a vIOMMU, something blocks
    return z3.Implies(z3.And(g.viommu, s.any_device_dt), z3.Or(s.blockers))


def _p2p_strengthening(p: Profile, g: GlobalTerms, s: Realized) -> Bool:
    return z3.Implies(z3.And(s.seen >= 2, z3.Not(s.all_p2p)), z3.Or(s.blockers))


DEVICE_PROPERTIES: tuple[DeviceProperty, ...] = (
    DeviceProperty(
        "LoggingNeedsEveryDevice",
        "device DMA logging is never chosen when some device lacks DMA logging support",
        _logging_needs_every_device,
        lambda p, g, s: z3.Implies(s.all_device_dt, s.all_dma_logging),
    ),
    DeviceProperty(
        "NoActiveLoggingWithViommu",
        "with a vIOMMU, device DMA logging is never the method of a migration that can start",
        _no_active_logging_with_viommu,
        _viommu_strengthening,
        # every profile has a vIOMMU rule (ViommuRule: global, every device, tracking users)
        lambda p: p.viommu_rule in tuple(ViommuRule),
    ),
    DeviceProperty(
        "MultiDeviceNeedsP2P",
        "two or more devices, one of them without VFIO_MIGRATION_P2P: migration is blocked",
        _multi_needs_p2p,
        _p2p_strengthening,
    ),
)


@dataclass
class Proof:
    profile: str
    property: str
    text: str
    holds: bool
    seconds: float
    failed_query: str | None = None  # "initiation" | "consecution" | "implication"
    counterexample: dict[str, Any] | None = None
    queries: dict[str, float] = field(default_factory=dict)
    # when the induction fails: a concrete configuration (up to MAX_TABLE_DEVICES devices)
    # that violates the property, if there is one, i.e. the failure is not only inductive
    witness: dict[str, str] | None = None


def find_violation(profile: Profile, prop: DeviceProperty, mutations: Iterable[str] = (),
                   max_devices: int = MAX_TABLE_DEVICES) -> dict[str, str] | None:
    """Bounded search: the smallest configuration (fewest devices) violating ``prop``."""
    for n in range(1, max_devices + 1):
        space = ConfigSpace(profile, n, raw=True)
        s, o = fold(space, mutations)
        solver = z3.Solver()
        solver.add(space.domain(), z3.Not(prop.holds(profile, space.globals(), s, o)))
        if not unsat(solver):
            m = solver.model()
            return {v.key: v.values[m.eval(v.var, model_completion=True).as_long()]
                    for v in space.vars}
    return None


def prove_any_devices(profile: str | Profile, prop: DeviceProperty, *,
                      mutations: Iterable[str] = (), timeout_ms: int = 60_000) -> Proof:
    """Prove ``prop`` for every number of devices >= 1 (and every setting of each).

    Induction on the number of devices, over the fold of this module: for N devices QEMU's
    decision is ``finish(step(...step(step(initial, d1), d2)..., dN))``, so with
    ``Inv = structure /\\ strengthening``:

    1. initiation   Inv(initial);
    2. consecution  Inv(s) /\\ s' = realize_step(s, d) => Inv(s') for an arbitrary summary
                    ``s`` and an arbitrary device ``d``;
    3. implication  Inv(s) /\\ seen >= 1 => prop(s, finish(s)).

    (1) and (2) give Inv after any number of devices, (3) the property.  The step and
    finish functions are the ones the decision tables unroll, and the tables are checked
    against :func:`model.decision.tracking.decide`; the summary loses nothing QEMU reads (the only
    count QEMU compares is "more than one", kept exactly by the counters saturating at 2).
    The global settings are arbitrary too, constrained only as the scenario loader does.
    """
    p = get_profile(profile) if isinstance(profile, str) else profile
    muts = tuple(mutations)
    g, gdom = symbolic_globals("g", p)

    def inv(s: Realized) -> Bool:
        return z3.And(_structure(p, g, s), prop.strengthening(p, g, s))

    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def check(name: str, claim: Bool, *context: Bool, show: Realized | None = None,
              device: DeviceTerms | None = None, after: Realized | None = None) -> Proof | None:
        q0 = time.perf_counter()
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.add(gdom, *context, z3.Not(claim))
        proved = unsat(solver, query=f"the {name} of {prop.name}")
        timings[name] = time.perf_counter() - q0
        if proved:
            return None
        m = solver.model()
        cex: dict[str, Any] = {"globals": _eval_fields(m, g.__dict__)}
        if show is not None:
            cex["before"] = _eval_fields(m, show.fields())
        if device is not None:
            cex["device"] = _eval_device(m, device)
        if after is not None:
            cex["after"] = _eval_fields(m, after.fields())
        return Proof(p.name, prop.name, prop.text, False, time.perf_counter() - t0, name, cex,
                     timings, find_violation(p, prop, muts))

    s0 = initial()
    bad = check("initiation", inv(s0), show=s0)
    if bad:
        return bad
    s, sdom = symbolic_realized("s")
    d, ddom = symbolic_device("d", p)
    s1 = realize_step(p, g, s, d, muts)
    bad = check("consecution", inv(s1), sdom, ddom, inv(s), show=s, device=d, after=s1)
    if bad:
        return bad
    o = finish(p, g, s, muts)
    bad = check("implication", prop.holds(p, g, s, o), sdom, inv(s), s.seen >= 1, show=s)
    if bad:
        return bad
    return Proof(p.name, prop.name, prop.text, True, time.perf_counter() - t0, queries=timings)


def prove_all(profiles: Sequence[str] = PROFILE_NAMES, *, mutations: Iterable[str] = ()
              ) -> list[Proof]:
    out = []
    for name in profiles:
        p = get_profile(name)
        for prop in DEVICE_PROPERTIES:
            if prop.applies(p):
                out.append(prove_any_devices(p, prop, mutations=mutations))
    return out


def _eval_fields(m: z3.ModelRef, terms: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, t in terms.items():
        v = m.eval(t, model_completion=True)
        out[k] = bool(z3.is_true(v)) if z3.is_bool(v) else v.as_long()
    return out


def _eval_device(m: z3.ModelRef, d: DeviceTerms) -> dict[str, Any]:
    def val(t: Any) -> Any:
        return m.eval(t, model_completion=True)

    return {
        "enable-migration": ON_OFF_AUTO[val(d.mode).as_long()],
        "dma_logging": z3.is_true(val(d.dma_logging)),
        "x-device-dirty-page-tracking": ON_OFF_AUTO[val(d.x_device_dirty).as_long()],
        "p2p": z3.is_true(val(d.p2p)),
        "pins": z3.is_true(val(d.pins)),
        "iommu_dirty_tracking": z3.is_true(val(d.iommu_dt)),
    }

