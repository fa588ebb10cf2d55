"""QEMU's dirty-tracking decision and migration blockers as z3 formulas.

:mod:`model.decision.tracking` answers "what does QEMU do for *this* configuration" by running the
rules on one :class:`~model.scenario.Scenario`.  This module states the same rules over
*symbolic* configurations (:mod:`model.decision.space`), so that z3 can enumerate every
configuration of a profile as decision tables (:mod:`model.decision.tables`) and prove
properties for any number of devices (:mod:`model.decision.proofs`).

The rules (and their QEMU sources) are those of :mod:`model.decision.tracking`; each rule below
names the function of ``tracking.py`` it restates, and the tests check that the two agree
configuration by configuration.

**Encoding.**  QEMU realizes devices one after the other (``vfio_migration_realize()``,
hw/vfio/migration.c, in ``-device`` order) and every rule that spans devices only reads a
few facts about the devices realized so far: how many hold a migration object (QEMU
compares that number with 1, so "0, 1, 2 or more" is exact), whether all of them have
``VFIO_MIGRATION_P2P``, whether the shared multi-device blocker is installed, whether a
realize error stopped QEMU, and which blockers exist.  The method choice at
log_global_start (``vfio_listener_log_global_start()``) reads "does every device do DMA
logging" and "does some device"; type1's pinned scope reads "does every device pin".  So
QEMU's whole decision is a fold: a small :class:`Realized` summary, updated by
:func:`realize_step` once per device, then :func:`finish` (save_prepare and the method).
For a fixed number of devices the fold is unrolled (the tables); for any number it is an
induction over the fold (the proofs), with the same step function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import z3

from model.contract import BLOCKER_CODES, Mutation
from model.decision.space import (
    AUTO,
    M_ALL_DIRTY,
    M_DEVICE,
    M_IOMMUFD,
    M_TYPE1,
    OFF,
    ON,
    Bool,
    ConfigSpace,
    DeviceTerms,
    GlobalTerms,
    Term,
)
from model.decision.tracking import (
    MIGRATION_DISABLED,
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    NO_DIRTY_TRACKING,
    POSTCOPY,
    TYPE1_LARGE_RAM,
    VIOMMU,
)
from model.profiles import (
    EnableMigrationProperty,
    MultiDeviceOnError,
    MultiDeviceRule,
    Profile,
    ViommuRule,
)

# Mutations that change the decision (the others act in the protocol model;
# no_unmap_dirty_query only changes what a vIOMMU unmap does, not the choice).
DECISION_MUTATIONS = (Mutation.ALLOW_VIOMMU_DEVICE_TRACKING, Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER,
                      Mutation.TYPE1_IGNORES_UNPINNED_GROUPS)


# --- the fold over devices --------------------------------------------------------------


def _sat_inc(x: Term) -> Term:
    """x + 1, saturating at 2 ("two or more" is all QEMU distinguishes)."""
    return z3.If(x >= 2, z3.IntVal(2), x + 1)


@dataclass(frozen=True)
class Realized:
    """What QEMU knows after realizing the first k devices (and what the method choice
    and the properties read about them).  All fields are z3 terms."""

    seen: Term  # devices processed, saturating at 2
    migratable: Term  # devices holding a migration object, saturating at 2
    migratable_all_p2p: Bool  # every migratable device has VFIO_MIGRATION_P2P
    multi_blocker: Bool  # the shared multi-device blocker is installed (global_multi)
    stopped: Bool  # a realize error: QEMU exits, later devices are not realized
    blockers: tuple[Bool, ...]  # per BLOCKER_CODES: some blocker with this code exists
    all_device_dt: Bool  # every device has device dirty tracking enabled
    any_device_dt: Bool  # some device has it
    all_pin: Bool  # every device pins pages
    # ghosts, read only by the properties: the devices' hardware capabilities
    all_dma_logging: Bool  # every device supports DMA logging
    all_p2p: Bool  # every device has VFIO_MIGRATION_P2P
    # the first blocker QEMU installed (index into BLOCKER_CODES; -1: none yet)
    first: Term = z3.IntVal(-1)

    def blocker(self, code: str) -> Bool:
        return self.blockers[BLOCKER_CODES.index(code)]

    def fields(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "blockers"}
        out.update({f"blocker[{c}]": b for c, b in zip(BLOCKER_CODES, self.blockers, strict=True)})
        return out


def initial() -> Realized:
    t, f = z3.BoolVal(True), z3.BoolVal(False)
    return Realized(z3.IntVal(0), z3.IntVal(0), t, f, f, tuple(f for _ in BLOCKER_CODES),
                    t, f, t, t, t)


def symbolic_realized(tag: str) -> tuple[Realized, Bool]:
    """An arbitrary summary (for induction) and its type domain."""
    r = Realized(
        seen=z3.Int(f"seen@{tag}"),
        migratable=z3.Int(f"migratable@{tag}"),
        migratable_all_p2p=z3.Bool(f"migratable_all_p2p@{tag}"),
        multi_blocker=z3.Bool(f"multi_blocker@{tag}"),
        stopped=z3.Bool(f"stopped@{tag}"),
        blockers=tuple(z3.Bool(f"blocker[{c}]@{tag}") for c in BLOCKER_CODES),
        all_device_dt=z3.Bool(f"all_device_dt@{tag}"),
        any_device_dt=z3.Bool(f"any_device_dt@{tag}"),
        all_pin=z3.Bool(f"all_pin@{tag}"),
        all_dma_logging=z3.Bool(f"all_dma_logging@{tag}"),
        all_p2p=z3.Bool(f"all_p2p@{tag}"),
        first=z3.Int(f"first@{tag}"),
    )
    dom = z3.And(r.seen >= 0, r.seen <= 2, r.migratable >= 0, r.migratable <= 2,
                 r.first >= -1, r.first < len(BLOCKER_CODES))
    return r, dom


def device_dirty_tracking_enabled(p: Profile, d: DeviceTerms) -> Bool:
    """tracking.device_dirty_tracking_enabled(): DMA logging probed by vfio_migration_init()
    (which runs unless enable-migration is off) and not switched off by
    x-device-dirty-page-tracking (9.1+, 30b9167785)."""
    off_by_property = (d.x_device_dirty == OFF) if p.has_device_dirty_page_tracking_property \
        else z3.BoolVal(False)
    return z3.And(d.dma_logging, d.mode != OFF, z3.Not(off_by_property))


def iommu_dirty_tracking(p: Profile, g: GlobalTerms) -> Bool:
    """tracking.iommu_dirty_tracking(): a dirty-capable iommufd hwpt (9.1, dddfd8d667)."""
    return z3.And(g.iommufd, g.hw_dirty, z3.BoolVal(p.iommufd_hw_dirty_tracking))


def realize_step(p: Profile, g: GlobalTerms, s: Realized, d: DeviceTerms,
                 mutations: Iterable[str] = ()) -> Realized:
    """QEMU realizes one more device: tracking._realize_8_0() / tracking._realize()."""
    muts = frozenset(mutations)
    dt = device_dirty_tracking_enabled(p, d)
    live = z3.Not(s.stopped)
    off, on, auto = d.mode == OFF, d.mode == ON, d.mode == AUTO
    runs = z3.And(live, z3.Not(off))  # vfio_migration_init() runs: a migration object
    migratable = z3.If(runs, _sat_inc(s.migratable), s.migratable)
    mig_all_p2p = z3.If(runs, z3.And(s.migratable_all_p2p, d.p2p), s.migratable_all_p2p)
    # Mutation allow_viommu_device_tracking: no vIOMMU blocker for a device-tracking user.
    drops_viommu = z3.And(dt, z3.BoolVal(Mutation.ALLOW_VIOMMU_DEVICE_TRACKING in muts))
    new: dict[str, Bool] = {c: z3.BoolVal(False) for c in BLOCKER_CODES}
    new[MIGRATION_DISABLED] = z3.And(live, off)

    if p.enable_migration_property is EnableMigrationProperty.EXPERIMENTAL_BOOL:
        # 8.0 (_realize_8_0): x-enable-migration; a global blocker once more than one device
        # is migratable (29d81b71aa) and one when a vIOMMU translates VFIO DMA (e46883204c).
        new[MULTIPLE_DEVICES] = z3.And(runs, migratable >= 2)
        new[VIOMMU] = z3.And(runs, g.viommu, z3.Not(drops_viommu))
        stops = z3.BoolVal(False)
        multi_blocker = z3.Or(s.multi_blocker, new[MULTIPLE_DEVICES])
        met: tuple[str, ...] = (MIGRATION_DISABLED, MULTIPLE_DEVICES, VIOMMU)
    else:
        # 3. a usable dirty-tracking method: DMA logging, or from 9.1 a dirty-capable
        #    iommufd hwpt (8bbcb64a71, f48b472450).
        usable = z3.Or(dt, z3.And(z3.BoolVal(p.auto_accepts_iommu_dirty_tracking),
                                  iommu_dirty_tracking(p, g)))
        no_dirty = z3.And(runs, z3.Not(usable))
        new[NO_DIRTY_TRACKING] = z3.And(no_dirty, auto)  # blocker; the device stays migratable
        large = z3.And(no_dirty, on, z3.BoolVal(p.type1_large_ram_blocker), z3.Not(g.iommufd),
                       g.large_ram)  # realize error (master, 46c7633114)
        new[TYPE1_LARGE_RAM] = large
        at4 = z3.And(runs, z3.Not(new[NO_DIRTY_TRACKING]), z3.Not(large))
        # 4. more than one migratable device: 8.1 any (8bbcb64a71), 8.2+ unless all have P2P
        #    (5c7a4b6035); enable-migration=on fails: 8.1 only before the shared blocker
        #    exists, 8.2+ always (8118349b1b).
        all_p2p_rule = p.multi_device_rule is MultiDeviceRule.ALL_P2P
        supported = z3.Or(migratable <= 1, z3.And(z3.BoolVal(all_p2p_rule), mig_all_p2p))
        unsupported = z3.And(at4, z3.Not(supported))
        if p.multi_device_on_error is MultiDeviceOnError.ALWAYS:
            fails = z3.And(unsupported, on)
        elif p.multi_device_on_error is MultiDeviceOnError.FIRST_ONLY:
            fails = z3.And(unsupported, on, z3.Not(s.multi_blocker))
        else:
            fails = z3.BoolVal(False)
        new[MULTIPLE_DEVICES_WITHOUT_P2P if all_p2p_rule else MULTIPLE_DEVICES] = unsupported
        multi_blocker = z3.Or(s.multi_blocker, z3.And(unsupported, z3.Not(fails)))
        # 5. vIOMMU: every migratable device up to 10.2 (3c26c80a0a), only device dirty
        #    tracking users on master (0e3c1e2b2b); with enable-migration=on an error.
        if p.viommu_rule is ViommuRule.EVERY_DEVICE:
            applies = g.viommu
        elif p.viommu_rule is ViommuRule.DEVICE_TRACKING_ONLY:
            applies = z3.And(g.viommu, dt)
        else:  # pragma: no cover - GLOBAL is 8.0's rule, handled above
            raise AssertionError(p.viommu_rule)
        viommu = z3.And(at4, z3.Not(fails), applies, z3.Not(drops_viommu))
        new[VIOMMU] = viommu
        stops = z3.Or(large, fails, z3.And(viommu, on))
        met = (MIGRATION_DISABLED, NO_DIRTY_TRACKING, TYPE1_LARGE_RAM, MULTIPLE_DEVICES,
               MULTIPLE_DEVICES_WITHOUT_P2P, VIOMMU)
    # the device's blockers in the order its realize meets them
    first = s.first
    for code in reversed(met):
        first = z3.If(z3.And(s.first == -1, new[code]), z3.IntVal(BLOCKER_CODES.index(code)), first)
    return Realized(
        seen=_sat_inc(s.seen),
        migratable=migratable,
        migratable_all_p2p=mig_all_p2p,
        multi_blocker=multi_blocker,
        stopped=z3.Or(s.stopped, stops),
        blockers=tuple(z3.Or(old, new[c]) for c, old in zip(BLOCKER_CODES, s.blockers, strict=True)),
        # choose_method() and type1_pinned_scope() read every device, realized or not
        all_device_dt=z3.And(s.all_device_dt, dt),
        any_device_dt=z3.Or(s.any_device_dt, dt),
        all_pin=z3.And(s.all_pin, d.pins),
        all_dma_logging=z3.And(s.all_dma_logging, d.dma_logging),
        all_p2p=z3.And(s.all_p2p, d.p2p),
        first=first,
    )


@dataclass(frozen=True)
class Outcome:
    """QEMU's decision as z3 terms (tracking.TrackingDecision's method and blockers)."""

    method: Term  # index into METHODS
    pinned_scope: Bool  # type1 GET_BITMAP reports only pinned pages
    blockers: tuple[Bool, ...]  # per BLOCKER_CODES
    realize_error: Bool  # a device fails to realize: QEMU does not start
    first_blocker: Term  # index into BLOCKER_CODES of the first blocker QEMU meets; -1: none

    @property
    def blocked(self) -> Bool:
        return z3.Or(self.blockers)

    def blocker(self, code: str) -> Bool:
        return self.blockers[BLOCKER_CODES.index(code)]


def finish(p: Profile, g: GlobalTerms, s: Realized, mutations: Iterable[str] = ()) -> Outcome:
    """After the last device: save_prepare_blockers(), choose_method(), type1_pinned_scope()."""
    muts = frozenset(mutations)
    realize_blocked = z3.Or(s.blockers)
    # vfio_save_prepare() refuses postcopy-ram (8.2+, bf7ef7a2da); it only runs when no
    # realize blocker stopped migrate_prepare() first.
    postcopy = z3.And(g.postcopy, z3.BoolVal(p.refuses_postcopy), s.migratable >= 1,
                      z3.Not(realize_blocked))
    blockers = tuple(z3.Or(b, postcopy) if c == POSTCOPY else b
                     for c, b in zip(BLOCKER_CODES, s.blockers, strict=True))
    mixed = z3.And(s.any_device_dt, z3.BoolVal(Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER in muts))
    method = z3.If(z3.Or(s.all_device_dt, mixed), z3.IntVal(M_DEVICE),
                   z3.If(z3.Not(g.iommufd), z3.IntVal(M_TYPE1),
                         z3.If(iommu_dirty_tracking(p, g), z3.IntVal(M_IOMMUFD),
                               z3.IntVal(M_ALL_DIRTY))))
    pinned = z3.And(z3.Not(g.iommufd),
                    z3.Or(s.all_pin, z3.BoolVal(Mutation.TYPE1_IGNORES_UNPINNED_GROUPS in muts)))
    first = z3.If(postcopy, z3.IntVal(BLOCKER_CODES.index(POSTCOPY)), s.first)
    return Outcome(method, pinned, blockers, s.stopped, first)


def fold(space: ConfigSpace, mutations: Iterable[str] = ()) -> tuple[Realized, Outcome]:
    """The summary after ``space.n`` devices (unrolled over dev0, dev1, ...) and the
    decision."""
    p, g = space.profile, space.globals()
    s = initial()
    for i in range(space.n):
        s = realize_step(p, g, s, space.device(i), mutations)
    return s, finish(p, g, s, mutations)


def decide_terms(space: ConfigSpace, mutations: Iterable[str] = ()) -> Outcome:
    """The decision for ``space.n`` devices, as z3 terms over the space's settings."""
    return fold(space, mutations)[1]


