"""QEMU's dirty-tracking decision and migration blockers as z3 formulas.

:mod:`model.decision.tracking` answers "what does QEMU do for *this* configuration" by running the
rules on one :class:`~model.scenario.Scenario`.  This module states the same rules over
*symbolic* configurations, so that z3 can

* enumerate every configuration of up to four devices of a profile and print the choice as
  a decision table (:func:`decision_table`): each row is a partial configuration (the
  other settings are "don't care") that z3 proved to determine the outcome, and the rows
  together cover every configuration.  Two tables per profile and device count: the
  *method* (and what type1 reports), and the *blockers*: the verdict (migrates, blocked,
  or QEMU does not start because a device with ``enable-migration=on`` fails to realize)
  with the first blocker QEMU installs, and per row the blocker codes every configuration
  of the row has and those some have (the exact set of codes varies too much with device
  order to make a readable table of its own);
* prove properties for **any** number of devices (:func:`prove_any_devices`):
  device DMA logging is never chosen when some device lacks it; with a vIOMMU it is never
  the method of a migration that can start (every profile forbids it); two or more
  devices, one without ``VFIO_MIGRATION_P2P``, are blocked (every profile from 8.0).

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

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import z3

from model.contract import Mutation
from model.decision.tracking import (
    BLOCKER_CODES,
    MIGRATION_DISABLED,
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    NO_DIRTY_TRACKING,
    POSTCOPY,
    TYPE1_LARGE_RAM,
    TYPE1_RAM_LIMIT,
    VIOMMU,
    Method,
    TrackingDecision,
)
from model.profiles import (
    PROFILE_NAMES,
    EnableMigrationProperty,
    MultiDeviceOnError,
    MultiDeviceRule,
    Profile,
    ViommuRule,
    get_profile,
)
from model.scenario import (
    FEATURE_P2P,
    CheckConfig,
    DeviceConfig,
    DeviceProperties,
    HostConfig,
    MigrationConfig,
    Scenario,
    VmConfig,
)

MAX_TABLE_DEVICES = 4

# Method numbers in the formulas (index into METHODS).
METHODS: tuple[Method, ...] = (Method.DEVICE_DMA_LOGGING, Method.TYPE1, Method.IOMMUFD_HW,
                               Method.ALL_DIRTY)
M_DEVICE, M_TYPE1, M_IOMMUFD, M_ALL_DIRTY = range(4)

# enable-migration / x-device-dirty-page-tracking values (index into ON_OFF_AUTO).
ON_OFF_AUTO = ("on", "off", "auto")
ON, OFF, AUTO = range(3)
BOOL = ("no", "yes")
BACKENDS = ("type1", "iommufd")

# Mutations that change the decision (the others act in the protocol model;
# no_unmap_dirty_query only changes what a vIOMMU unmap does, not the choice).
DECISION_MUTATIONS = (Mutation.ALLOW_VIOMMU_DEVICE_TRACKING, Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER,
                      Mutation.TYPE1_IGNORES_UNPINNED_GROUPS)

Bool = z3.BoolRef
Term = z3.ArithRef


# --- the configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigVar:
    """One setting of a configuration: a z3 integer ranging over ``values``."""

    key: str  # "viommu", "dev1.enable-migration"
    values: tuple[str, ...]
    device: int | None = None
    attr: str = ""  # the setting's name without the device prefix

    @property
    def var(self) -> Term:
        return z3.Int(self.key)

    def domain(self) -> Bool:
        return z3.And(self.var >= 0, self.var < len(self.values))


@dataclass(frozen=True)
class DeviceTerms:
    """One device's settings as z3 terms (``mode`` and ``x_device_dirty`` index ON_OFF_AUTO)."""

    mode: Term  # enable-migration (8.0: x-enable-migration, on/off only)
    dma_logging: Bool  # VFIO_DEVICE_FEATURE_DMA_LOGGING_* supported
    x_device_dirty: Term  # x-device-dirty-page-tracking (9.1+)
    p2p: Bool  # VFIO_MIGRATION_P2P
    pins: Bool  # its driver pins pages (type1 pinned scope)


@dataclass(frozen=True)
class GlobalTerms:
    viommu: Bool
    iommufd: Bool  # [host].iommu = "iommufd" (else type1)
    hw_dirty: Bool  # [host].iommu_dirty_tracking
    large_ram: Bool  # guest RAM beyond type1's unmap_bitmap limit (tracking.TYPE1_RAM_LIMIT)
    postcopy: Bool  # postcopy-ram requested


def _flag(v: ConfigVar) -> Bool:
    return v.var == 1


@dataclass
class ConfigSpace:
    """The settings of ``n`` devices under ``profile`` that the decision can depend on.

    Settings a profile does not have are left out (fixed at QEMU's default): the iommufd
    backend before 9.1, ``x-device-dirty-page-tracking`` before 9.1, the large-RAM limit
    before master, postcopy before 8.2 (the scenario loader refuses it there), ``auto``
    for 8.0's boolean ``x-enable-migration``.

    ``raw``: each device has ``dma_logging`` and ``x-device-dirty-page-tracking`` as in a
    spec file.  Otherwise (the tables) the two are one column, ``device-dirty-tracking``:
    DMA logging supported and not switched off by the property, which is all QEMU reads of
    them (``vfio_device_dirty_pages_disabled()``); :func:`check_columns` proves that
    merging them loses nothing.
    """

    profile: Profile
    n: int
    raw: bool = False
    vars: list[ConfigVar] = field(default_factory=list)

    def __post_init__(self) -> None:
        p = self.profile
        add = self.vars.append
        add(ConfigVar("viommu", BOOL, attr="viommu"))
        if p.has_iommufd_backend:
            add(ConfigVar("iommu", BACKENDS, attr="iommu"))
            add(ConfigVar("iommu_dirty_tracking", BOOL, attr="iommu_dirty_tracking"))
        if p.type1_large_ram_blocker:
            add(ConfigVar("ram>8TiB", BOOL, attr="large_ram"))
        if p.refuses_postcopy:
            add(ConfigVar("postcopy", BOOL, attr="postcopy"))
        modes = (("on", "off") if p.enable_migration_property
                 is EnableMigrationProperty.EXPERIMENTAL_BOOL else ON_OFF_AUTO)
        for i in range(self.n):
            add(ConfigVar(f"dev{i}.enable-migration", modes, i, "enable-migration"))
            if self.raw:
                add(ConfigVar(f"dev{i}.dma_logging", BOOL, i, "dma_logging"))
                if p.has_device_dirty_page_tracking_property:
                    add(ConfigVar(f"dev{i}.x-device-dirty-page-tracking", ON_OFF_AUTO, i,
                                  "x-device-dirty-page-tracking"))
            else:
                add(ConfigVar(f"dev{i}.device-dirty-tracking", BOOL, i, "device-dirty-tracking"))
            add(ConfigVar(f"dev{i}.p2p", BOOL, i, "p2p"))
            add(ConfigVar(f"dev{i}.pins", BOOL, i, "pins"))

    def var(self, key: str) -> ConfigVar | None:
        return next((v for v in self.vars if v.key == key), None)

    def domain(self) -> Bool:
        cs = [v.domain() for v in self.vars]
        iommu, hw = self.var("iommu"), self.var("iommu_dirty_tracking")
        if iommu is not None and hw is not None:
            # scenario loader: hardware dirty bits need iommufd (type1 has none)
            cs.append(z3.Implies(_flag(hw), iommu.var == 1))
        return z3.And(cs)

    def globals(self) -> GlobalTerms:
        def flag(key: str) -> Bool:
            v = self.var(key)
            return z3.BoolVal(False) if v is None else _flag(v)

        iommu = self.var("iommu")
        return GlobalTerms(
            viommu=flag("viommu"),
            iommufd=z3.BoolVal(False) if iommu is None else iommu.var == 1,
            hw_dirty=flag("iommu_dirty_tracking"),
            large_ram=flag("ram>8TiB"),
            postcopy=flag("postcopy"),
        )

    def device(self, i: int) -> DeviceTerms:
        def get(attr: str) -> ConfigVar:
            v = self.var(f"dev{i}.{attr}")
            assert v is not None, attr
            return v

        if self.raw:
            xdd = self.var(f"dev{i}.x-device-dirty-page-tracking")
            logging = _flag(get("dma_logging"))
            x_device_dirty = z3.IntVal(ON) if xdd is None else xdd.var
        else:
            logging, x_device_dirty = _flag(get("device-dirty-tracking")), z3.IntVal(ON)
        return DeviceTerms(mode=get("enable-migration").var, dma_logging=logging,
                           x_device_dirty=x_device_dirty, p2p=_flag(get("p2p")),
                           pins=_flag(get("pins")))

    def size(self) -> int:
        """Number of configurations (the domain, including the iommufd/hw-dirty rule)."""
        return count_configurations(self, {})

    def column_of(self, raw_config: Mapping[str, str]) -> dict[str, str]:
        """A raw configuration (``raw`` keys) as this space's (merged) configuration."""
        if self.raw:
            return dict(raw_config)
        out = {k: v for k, v in raw_config.items() if self.var(k) is not None}
        for i in range(self.n):
            logs = raw_config[f"dev{i}.dma_logging"] == "yes" and raw_config.get(
                f"dev{i}.x-device-dirty-page-tracking", "on") != "off"
            out[f"dev{i}.device-dirty-tracking"] = BOOL[logs]
        return out

    def configurations(self) -> Iterable[dict[str, str]]:
        """Every configuration of the space (for exhaustive tests on small spaces)."""
        for combo in itertools.product(*[v.values for v in self.vars]):
            cfg = dict(zip([v.key for v in self.vars], combo, strict=True))
            if cfg.get("iommu_dirty_tracking") == "yes" and cfg.get("iommu") == "type1":
                continue
            yield cfg

    def scenario(self, config: Mapping[str, str], mutations: Iterable[str] = ()) -> Scenario:
        """The scenario a configuration stands for (merged columns: DMA logging as given,
        x-device-dirty-page-tracking at its default)."""
        g = dict(config)
        devices = []
        for i in range(self.n):
            if f"dev{i}.device-dirty-tracking" in g:
                logging = g[f"dev{i}.device-dirty-tracking"] == "yes"
                xdd = "on"
            else:
                logging = g[f"dev{i}.dma_logging"] == "yes"
                xdd = g.get(f"dev{i}.x-device-dirty-page-tracking", "on")
            p2p = g[f"dev{i}.p2p"] == "yes"
            devices.append(DeviceConfig(
                name=f"dev{i}",
                features=frozenset({FEATURE_P2P} if p2p else set()),
                dma_logging=logging,
                dma_pages=(0,),
                pins=(0,) if g[f"dev{i}.pins"] == "yes" else (),
                p2p_dma=self.n > 1,
                properties=DeviceProperties(
                    x_device_dirty_page_tracking=xdd,  # type: ignore[arg-type]
                    enable_migration=g[f"dev{i}.enable-migration"],  # type: ignore[arg-type]
                ),
            ))
        ram = TYPE1_RAM_LIMIT + (1 << 40) if g.get("ram>8TiB") == "yes" else VmConfig().ram
        return Scenario(
            path=Path(f"<{self.profile.name} table>"),
            name="table",
            description="",
            qemu=self.profile.name,
            vm=VmConfig(pages=1, viommu=g["viommu"] == "yes", ram=ram),
            host=HostConfig(iommu=g.get("iommu", "type1"),  # type: ignore[arg-type]
                            iommu_dirty_tracking=g.get("iommu_dirty_tracking") == "yes"),
            devices=tuple(devices),
            migration=MigrationConfig(postcopy=g.get("postcopy") == "yes"),
            check=CheckConfig(),
            mutations=frozenset(mutations),
        )


def count_configurations(space: ConfigSpace, conditions: Mapping[str, Sequence[str]]) -> int:
    """Configurations of ``space`` whose settings lie in ``conditions`` (unlisted: any)."""
    total = 1
    special = ("iommu", "iommu_dirty_tracking")
    for v in space.vars:
        if v.key not in special:
            total *= len(conditions.get(v.key, v.values))
    if space.var("iommu") is None:
        return total
    backends = conditions.get("iommu", BACKENDS)
    dirty = conditions.get("iommu_dirty_tracking", BOOL)
    pairs = sum(1 for b in backends for h in dirty if not (b == "type1" and h == "yes"))
    return total * pairs


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


def symbolic_device(tag: str, profile: Profile) -> tuple[DeviceTerms, Bool]:
    """An arbitrary device (for induction) and the settings the profile allows."""
    d = DeviceTerms(z3.Int(f"mode@{tag}"), z3.Bool(f"dma_logging@{tag}"),
                    z3.Int(f"x_device_dirty@{tag}"), z3.Bool(f"p2p@{tag}"), z3.Bool(f"pins@{tag}"))
    modes = [ON, OFF] if (profile.enable_migration_property
                          is EnableMigrationProperty.EXPERIMENTAL_BOOL) else [ON, OFF, AUTO]
    xdd = [ON, OFF, AUTO] if profile.has_device_dirty_page_tracking_property else [ON]
    dom = z3.And(z3.Or([d.mode == m for m in modes]), z3.Or([d.x_device_dirty == x for x in xdd]))
    return d, dom


def symbolic_globals(tag: str, profile: Profile) -> tuple[GlobalTerms, Bool]:
    g = GlobalTerms(z3.Bool(f"viommu@{tag}"), z3.Bool(f"iommufd@{tag}"), z3.Bool(f"hw_dirty@{tag}"),
                    z3.Bool(f"large_ram@{tag}"), z3.Bool(f"postcopy@{tag}"))
    cs = [z3.Implies(g.hw_dirty, g.iommufd)]
    if not profile.has_iommufd_backend:
        cs.append(z3.Not(g.iommufd))
    if not profile.type1_large_ram_blocker:
        cs.append(z3.Not(g.large_ram))
    if not profile.refuses_postcopy:
        cs.append(z3.Not(g.postcopy))
    return g, z3.And(cs)


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
        met = (MIGRATION_DISABLED, MULTIPLE_DEVICES, VIOMMU)
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

VERDICTS = ("migrates", "blocked", "QEMU does not start")


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
        return self.prove.check(*extra, *lits) == z3.unsat

    def _differs(self, results: list[z3.ExprRef]) -> Bool:
        key = "differs:" + ",".join(str(r) for r in results)
        return self.switch(key, z3.Or([ov != r for ov, r in zip(self.out_vars, results,
                                                                strict=True)]))

    def enumerate(self) -> list[tuple[Cube, list[z3.ExprRef]]]:
        out = []
        while True:
            self.calls += 1
            if self.enum.check() != z3.sat:
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
                if s.check() == z3.unsat:
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
                                                            d.x_device_dirty, d.p2p, d.pins))
        merged_devices.append(DeviceTerms(d.mode, logs, z3.IntVal(ON), d.p2p, d.pins))
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
    return solver.check() == z3.unsat


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
        if solver.check() == z3.sat:
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
        r = solver.check()
        timings[name] = time.perf_counter() - q0
        if r == z3.unknown:
            raise TimeoutError(f"z3 could not decide the {name} of {prop.name}: "
                               f"{solver.reason_unknown()}")
        if r == z3.unsat:
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
    }
