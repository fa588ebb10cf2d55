"""The configuration space of QEMU's dirty-tracking decision, as z3 variables.

The settings of ``n`` devices under one profile that QEMU's decision
(:mod:`model.decision.tracking`) can depend on, each a small z3 integer: the rules over
them are :mod:`model.decision.smt`, the tables that enumerate them
:mod:`model.decision.tables`, the proofs for any number of devices (arbitrary devices and
globals, :func:`symbolic_device` / :func:`symbolic_globals`) :mod:`model.decision.proofs`.
A configuration maps back to the :class:`~model.scenario.Scenario` it stands for
(:meth:`ConfigSpace.scenario`), so the explicit rules can decide it too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import z3

from model.contract import MUTATIONS
from model.decision.tracking import TYPE1_RAM_LIMIT, Method
from model.profiles import EnableMigrationProperty, Profile
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
BACKENDS = ("type1", "iommufd", "iommufd-compat")

Bool: TypeAlias = z3.BoolRef
Term: TypeAlias = z3.ArithRef


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
    iommu_dt: Bool  # iommufd: its IOMMU has dirty tracking ([[devices]].iommu_dirty_tracking)


@dataclass(frozen=True)
class GlobalTerms:
    viommu: Bool
    iommufd: Bool  # [host].iommu = "iommufd"
    compat: Bool  # [host].iommu = "iommufd-compat" (neither: the type1 driver)
    large_ram: Bool  # guest RAM beyond type1's unmap_bitmap limit (tracking.TYPE1_RAM_LIMIT)
    postcopy: Bool  # postcopy-ram requested
    snapshot: Bool  # a background snapshot requested

    @property
    def type1(self) -> Bool:
        """The kernel's type1 driver (dirty support, pinned scope, the large-RAM limit)."""
        return z3.And(z3.Not(self.iommufd), z3.Not(self.compat))


def _flag(v: ConfigVar) -> Bool:
    return v.var == 1


@dataclass
class ConfigSpace:
    """The settings of ``n`` devices under ``profile`` that the decision can depend on.

    Settings a profile does not have are left out (fixed at QEMU's default): the iommufd
    backend before 9.0 (the compat container exists for every release), each device's
    IOMMU dirty capability before 9.1 (QEMU reads it from 9.1; it has no effect off
    iommufd, where :meth:`scenario` drops it), ``x-device-dirty-page-tracking`` before 9.1,
    the large-RAM limit before master, postcopy and background snapshots before 8.2 (the
    scenario loader refuses them there), ``auto`` for 8.0's boolean ``x-enable-migration``.

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
        backends = BACKENDS if p.has_iommufd_backend else ("type1", "iommufd-compat")
        add(ConfigVar("iommu", backends, attr="iommu"))
        if p.type1_large_ram_blocker:
            add(ConfigVar("ram>8TiB", BOOL, attr="large_ram"))
        if p.refuses_postcopy:
            add(ConfigVar("postcopy", BOOL, attr="postcopy"))
        if p.refuses_background_snapshot:
            add(ConfigVar("background-snapshot", BOOL, attr="background_snapshot"))
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
            if p.iommufd_hw_dirty_tracking:
                add(ConfigVar(f"dev{i}.iommu-dirty", BOOL, i, "iommu-dirty"))

    def var(self, key: str) -> ConfigVar | None:
        return next((v for v in self.vars if v.key == key), None)

    def domain(self) -> Bool:
        return z3.And([v.domain() for v in self.vars])

    def globals(self) -> GlobalTerms:
        def flag(key: str) -> Bool:
            v = self.var(key)
            return z3.BoolVal(False) if v is None else _flag(v)

        iommu = self.var("iommu")
        assert iommu is not None
        return GlobalTerms(
            viommu=flag("viommu"),
            iommufd=iommu.var == iommu.values.index("iommufd") if "iommufd" in iommu.values
            else z3.BoolVal(False),
            compat=iommu.var == iommu.values.index("iommufd-compat"),
            large_ram=flag("ram>8TiB"),
            postcopy=flag("postcopy"),
            snapshot=flag("background-snapshot"),
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
        cap = self.var(f"dev{i}.iommu-dirty")
        return DeviceTerms(mode=get("enable-migration").var, dma_logging=logging,
                           x_device_dirty=x_device_dirty, p2p=_flag(get("p2p")),
                           pins=_flag(get("pins")),
                           iommu_dt=z3.BoolVal(False) if cap is None else _flag(cap))

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
            yield dict(zip([v.key for v in self.vars], combo, strict=True))

    def scenario(self, config: Mapping[str, str], mutations: Iterable[str] = ()) -> Scenario:
        """The scenario a configuration stands for (merged columns: DMA logging as given,
        x-device-dirty-page-tracking at its default)."""
        g = dict(config)
        iommufd = g.get("iommu", "type1") == "iommufd"
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
                iommu_dirty_tracking=(g.get(f"dev{i}.iommu-dirty", "no") == "yes"
                                      if iommufd else None),
            ))
        ram = TYPE1_RAM_LIMIT + (1 << 40) if g.get("ram>8TiB") == "yes" else VmConfig().ram
        return Scenario(
            path=Path(f"<{self.profile.name} table>"),
            name="table",
            description="",
            qemu=self.profile.name,
            vm=VmConfig(pages=1, viommu=g["viommu"] == "yes", ram=ram),
            host=HostConfig(iommu=g.get("iommu", "type1")),  # type: ignore[arg-type]
            devices=tuple(devices),
            migration=MigrationConfig(postcopy=g.get("postcopy") == "yes",
                                      background_snapshot=g.get("background-snapshot") == "yes"),
            check=CheckConfig(),
            mutations=frozenset(MUTATIONS[m] for m in mutations),
        )


def count_configurations(space: ConfigSpace, conditions: Mapping[str, Sequence[str]]) -> int:
    """Configurations of ``space`` whose settings lie in ``conditions`` (unlisted: any)."""
    total = 1
    for v in space.vars:
        total *= len(conditions.get(v.key, v.values))
    return total


def symbolic_device(tag: str, profile: Profile) -> tuple[DeviceTerms, Bool]:
    """An arbitrary device (for induction) and the settings the profile allows."""
    d = DeviceTerms(z3.Int(f"mode@{tag}"), z3.Bool(f"dma_logging@{tag}"),
                    z3.Int(f"x_device_dirty@{tag}"), z3.Bool(f"p2p@{tag}"), z3.Bool(f"pins@{tag}"),
                    z3.Bool(f"iommu_dt@{tag}"))
    modes = [ON, OFF] if (profile.enable_migration_property
                          is EnableMigrationProperty.EXPERIMENTAL_BOOL) else [ON, OFF, AUTO]
    xdd = [ON, OFF, AUTO] if profile.has_device_dirty_page_tracking_property else [ON]
    dom = z3.And(z3.Or([d.mode == m for m in modes]), z3.Or([d.x_device_dirty == x for x in xdd]))
    return d, dom


def symbolic_globals(tag: str, profile: Profile) -> tuple[GlobalTerms, Bool]:
    g = GlobalTerms(z3.Bool(f"viommu@{tag}"), z3.Bool(f"iommufd@{tag}"), z3.Bool(f"compat@{tag}"),
                    z3.Bool(f"large_ram@{tag}"), z3.Bool(f"postcopy@{tag}"),
                    z3.Bool(f"snapshot@{tag}"))
    cs = [z3.Not(z3.And(g.iommufd, g.compat))]
    if not profile.has_iommufd_backend:
        cs.append(z3.Not(g.iommufd))
    if not profile.type1_large_ram_blocker:
        cs.append(z3.Not(g.large_ram))
    if not profile.refuses_postcopy:
        cs.append(z3.Not(g.postcopy))
    if not profile.refuses_background_snapshot:
        cs.append(z3.Not(g.snapshot))
    return g, z3.And(cs)


