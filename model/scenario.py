"""Scenario files: the typed, validated configuration of one check (docs/spec-files.md).

A scenario is a TOML file: a QEMU behaviour profile, the guest (``[vm]``), the host IOMMU
(``[host]``), one to three VFIO devices (``[[devices]]`` with their ``-device`` properties),
the migration to explore (``[migration]``), what to check and expect (``[check]``) and the
deliberate bugs to switch on (``[mutations]``).  :func:`load_scenario` turns a file into a
frozen :class:`Scenario` or raises :class:`SpecError`, whose ``str()`` is one line naming the
file, the key and what is allowed, e.g.::

    specs/x.toml: [devices.1].dma_pages: page 5 is out of range 0..2 (vm.pages = 3)

Keys are written as ``[table].key``; ``[devices.N]`` is the N-th ``[[devices]]`` entry,
counted from 0 in file order; top-level keys are written bare (``qemu``).

``vmm`` (default ``"qemu"``) picks the VMM whose flow is checked: QEMU (a ``qemu`` profile)
or cloud-hypervisor (``cloud_hypervisor = "ae44c297"``, the code at one commit).  Keys only
one VMM has (:mod:`model.vmm`) are errors with the other.

Decisions taken here (documented for spec writers):

* ``qemu`` defaults to ``"master"``; ``name`` to the file stem; ``[vm].pages`` to 2,
  ``[vm].ram`` to 16 GiB; ``[migration].precopy_rounds`` to 1, ``attempts`` to 1, the
  other ``[migration]`` switches to false; ``features`` to ``[]`` (a device with only the
  mandatory ``VFIO_MIGRATION_STOP_COPY``); ``dma_logging`` to false; ``dma_pages`` to all
  pages; ``pins`` to ``[]``; the properties to QEMU's defaults.
* ``p2p_dma`` (may the device initiate peer-to-peer DMA to another device of the VM)
  defaults to true when the VM has another VFIO device and false otherwise: a device
  without ``VFIO_MIGRATION_P2P`` can still do P2P DMA, it just cannot be quiesced
  separately, so the conservative assumption is the one QEMU has to make.  Setting it true
  with a single device is an error (there is no peer to target).
* Profile-dependent properties are checked against the profile, because QEMU itself would
  refuse them: ``x-device-dirty-page-tracking`` exists from 9.1 (30b9167785); the iommufd
  backend from 9.0 (5ee3dc7af7, so from the 9.1 profile); QEMU 8.0 only has the
  experimental boolean ``x-enable-migration`` (default off): under ``qemu = "8.0"``,
  ``enable-migration = "on"|"off"`` sets it and leaving the key out means off.
* ``[migration].postcopy`` (an optional extension of the original spec-file format, default false):
  postcopy-ram requested.  From 8.2 QEMU refuses it for VFIO devices at migration start
  (``vfio_save_prepare``, bf7ef7a2da); earlier releases did not refuse it and the
  destination failed, which the model does not cover, so it is an error there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from model.contract import (
    BLOCKER_CODES,
    MUTATION_NAMES,
    PAGE_SIZE,
    PROPERTY_KINDS,
    PROPERTY_NAMES,
    Method,
    Mutation,
)
from model.profiles import (
    PROFILE_NAMES,
    EnableMigrationProperty,
    OverrideError,
    Profile,
    apply_overrides,
    get_profile,
)
from model.spec_file import SpecError, read_toml
from model.spec_table import (
    Table,
    describe,
    did_you_mean,
    first_duplicate,
    quoted,
)
from model.vmm import (
    CH_DEFAULT_PROFILE,
    CH_PROFILES,
    CLOUD_HYPERVISOR,
    QEMU,
    VMMS,
    ch_migration_problem,
    foreign_key,
    keys_for,
)

# --- vocabulary and bounds ----------------------------------------------------------------

FEATURE_P2P = "p2p"  # VFIO_MIGRATION_P2P
FEATURE_PRE_COPY = "pre-copy"  # VFIO_MIGRATION_PRE_COPY
FEATURES: tuple[str, ...] = (FEATURE_P2P, FEATURE_PRE_COPY)
ON_OFF_AUTO: tuple[str, ...] = ("on", "off", "auto")
IOMMU_BACKENDS: tuple[str, ...] = ("type1", "iommufd", "iommufd-compat")
EXPECT_KINDS: tuple[str, ...] = ("pass", "blocked", "violation")

MAX_PAGES = 8  # pages are interchangeable; the concrete executor covers real sizes
MAX_DEVICES = 3
MAX_PRECOPY_ROUNDS = 3
MAX_ATTEMPTS = 3
DEFAULT_PAGES = 2
DEFAULT_RAM = 16 << 30  # 16 GiB
MAX_PIN = (1 << 63) - 1

TRACKING_METHODS: tuple[str, ...] = tuple(m.value for m in Method)

IommuBackend = Literal["type1", "iommufd", "iommufd-compat"]
OnOffAuto = Literal["on", "off", "auto"]
ARCHES: tuple[str, ...] = ("x86_64", "aarch64")
ExpectKind = Literal["pass", "blocked", "violation"]


# --- the typed configuration --------------------------------------------------------------


@dataclass(frozen=True)
class DeviceProperties:
    """QEMU ``-device vfio-pci,...`` properties that matter for migration."""

    # OnOffAuto, default on (hw/vfio/pci.c since 5.2, bb0990d174); only "off" counts.
    pre_copy_dirty_page_tracking: OnOffAuto = "on"
    x_device_dirty_page_tracking: OnOffAuto = "on"  # since 9.1 (30b9167785); only "off" counts
    enable_migration: OnOffAuto = "auto"  # 8.1+; under 8.0 "on"/"off" = x-enable-migration
    # x-migration-multifd-transfer, 10.0+ (623af41dd3), default auto (hw/vfio/pci.c)
    migration_multifd_transfer: OnOffAuto = "auto"
    migration_load_config_after_iter: OnOffAuto = "auto"  # x-migration-load-config-after-iter, 10.1+

    @property
    def x_pre_copy_dirty_page_tracking(self) -> bool:
        """The device's log_sync opt-out is not set (QEMU compares with ON_OFF_AUTO_OFF)."""
        return self.pre_copy_dirty_page_tracking != "off"


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    features: frozenset[str]  # subset of FEATURES; VFIO_MIGRATION_STOP_COPY is implied
    dma_logging: bool  # VFIO_DEVICE_FEATURE_DMA_LOGGING_* supported (PROBE succeeds)
    dma_pages: tuple[int, ...]  # sorted pages (IOVAs under a vIOMMU) the device writes
    pins: tuple[int, ...]  # sorted pages its driver pins through vfio_pin_pages()
    p2p_dma: bool  # may initiate P2P DMA to another device of the VM
    properties: DeviceProperties = DeviceProperties()
    # iommufd: its IOMMU reports IOMMU_HW_CAP_DIRTY_TRACKING (None: [host].iommu_dirty_tracking)
    iommu_dirty_tracking: bool | None = None
    migration: bool = True  # cloud-hypervisor: VFIO migration v2 supported (STOP_COPY)

    @property
    def has_p2p(self) -> bool:
        return FEATURE_P2P in self.features

    @property
    def has_pre_copy(self) -> bool:
        return FEATURE_PRE_COPY in self.features


@dataclass(frozen=True)
class VmConfig:
    pages: int = DEFAULT_PAGES
    viommu: bool = False
    cpu_writes: bool = True
    ram: int = DEFAULT_RAM  # bytes of guest RAM (only the type1 large-RAM limit reads it)
    paused: bool = False  # the VM is paused (QEMU: a user's stop) when the migration starts
    # QEMU: the user may stop the VM during pre-copy and continue it (model.migration.user_pause)
    user_pause: bool = False
    arch: str = "x86_64"  # QEMU: the guest architecture (read by model.migration.config_load)


@dataclass(frozen=True)
class HostConfig:
    # type1: the kernel's type1 driver; iommufd: QEMU's iommufd backend (9.0+);
    # iommufd-compat: QEMU's legacy container on iommufd's /dev/vfio/vfio compatibility
    iommu: IommuBackend = "type1"
    iommu_dirty_tracking: bool = False  # iommufd: IOMMU_HW_CAP_DIRTY_TRACKING (default per device)


@dataclass(frozen=True)
class MigrationConfig:
    precopy_rounds: int = 1
    cancel: bool = False
    device_faults: bool = False
    query_faults: bool = False
    # DMA_LOGGING_START may fail on one of the logging devices (QEMU only)
    log_start_faults: bool = False
    # IOMMU_HWPT_SET_DIRTY_TRACKING may fail at log_global_start (QEMU iommufd only)
    hwpt_tracking_faults: bool = False
    # ... and may fail at log_global_stop (QEMU iommufd only)
    log_stop_faults: bool = False
    attempts: int = 1
    postcopy: bool = False
    background_snapshot: bool = False
    # cloud-hypervisor's send-migration options and one failure class
    local: bool = False  # local=on: memory handed over as file descriptors, not copied
    preserve_source: bool = False  # preserve_source=on: the source VM is kept (paused)
    late_errors: bool = False  # an error reaches the source after the destination resumed
    # QEMU's migration capabilities return-path and switchover-ack (both off by default)
    return_path: bool = False
    switchover_ack: bool = False
    load_faults: bool = False  # the destination's write of one device's state may fail
    multifd: bool = False  # QEMU's multifd capability (off by default, as in QEMU)


@dataclass(frozen=True)
class Expect:
    """The expected outcome as plain validated data; ``cli.load`` turns it (with the pins of
    :class:`CheckConfig`) into the ``checker.verdict.Expectation`` that judges a result (this
    package may not import it)."""

    kind: ExpectKind
    invariants: tuple[str, ...] = ()  # the properties expected to be violated (kind "violation")
    several: bool = False  # written { violations = [...] }

    @property
    def invariant(self) -> str | None:
        """The (first) property expected to be violated."""
        return self.invariants[0] if self.invariants else None

    def __str__(self) -> str:
        return f"violation({', '.join(self.invariants)})" if self.kind == "violation" else self.kind


#: ``[check]`` keys that pin the exact figures of a complete exploration (the same names as
#: ``checker.verdict.PIN_KEYS``, which this package may not import; a test keeps them equal).
PIN_KEYS: tuple[str, ...] = ("distinct_states", "generated_states", "depth", "trace_length")


@dataclass(frozen=True)
class CheckConfig:
    invariants: tuple[str, ...] | None = None  # None: all that apply
    expect: Expect | None = None  # None: any outcome but a violation is fine
    # Pins (None: not stated): distinct and generated states, BFS depth, and the number of
    # states of the expected counterexample (several expected: per property).
    distinct_states: int | None = None
    generated_states: int | None = None
    depth: int | None = None
    trace_length: int | Mapping[str, int] | None = None
    # What QEMU decides before the migration starts (None: not stated): the dirty-tracking
    # method, and the reason codes of the blockers it installs.
    tracking_method: str | None = None
    blocked_by: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    description: str
    qemu: str
    vm: VmConfig
    host: HostConfig
    devices: tuple[DeviceConfig, ...]
    migration: MigrationConfig
    check: CheckConfig
    mutations: frozenset[Mutation]
    vmm: str = QEMU  # "qemu" | "cloud-hypervisor" (model.vmm)
    cloud_hypervisor: str | None = None  # the cloud-hypervisor profile (vmm = "cloud-hypervisor")
    # ``qemu = { base = ..., <flag> = ... }``: the base profile with those flags changed
    # (None: the release profile ``qemu`` names as it is).
    patched_profile: Profile | None = None

    @property
    def profile(self) -> Profile:
        """The QEMU behaviour profile (QEMU scenarios only), patched if the spec says so."""
        return self.patched_profile if self.patched_profile is not None else get_profile(self.qemu)

    @property
    def is_cloud_hypervisor(self) -> bool:
        return self.vmm == CLOUD_HYPERVISOR

    def device(self, name: str) -> DeviceConfig:
        for dev in self.devices:
            if dev.name == name:
                return dev
        raise KeyError(name)

    def has_mutation(self, name: str) -> bool:
        if name not in MUTATION_NAMES:
            raise KeyError(name)
        return name in self.mutations


# --- loading ------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one spec file."""
    path = Path(path)
    return scenario_from_dict(read_toml(path), path)


def load_scenarios(paths_or_dirs: Iterable[str | Path]) -> list[Scenario]:
    """Load files as given and, for a directory, all its ``*.toml`` files sorted by name."""
    scenarios: list[Scenario] = []
    for item in paths_or_dirs:
        p = Path(item)
        if p.is_dir():
            scenarios.extend(load_scenario(f) for f in sorted(p.glob("*.toml")))
        elif p.exists():
            scenarios.append(load_scenario(p))
        else:
            raise SpecError(p, None, "no such file or directory")
    return scenarios


_TOP_KEYS = ("name", "description", "vmm", "qemu", "cloud_hypervisor", "vm", "host", "devices",
             "migration", "check", "mutations")
_VM_KEYS = ("pages", "viommu", "cpu_writes", "ram", "paused", "user_pause", "arch")
_HOST_KEYS = ("iommu", "iommu_dirty_tracking")
_DEVICE_KEYS = ("name", "features", "dma_logging", "dma_pages", "pins", "p2p_dma",
                "iommu_dirty_tracking", "properties", "migration")
_PROPERTY_KEYS = ("x-pre-copy-dirty-page-tracking", "x-device-dirty-page-tracking",
                  "enable-migration", "x-migration-multifd-transfer",
                  "x-migration-load-config-after-iter")
_NEWER_PROPERTIES = {  # properties newer than 8.0: (the profile flag that says they exist, since)
    "x-device-dirty-page-tracking": ("has_device_dirty_page_tracking_property", "9.1, 30b9167785"),
    "x-migration-multifd-transfer": ("has_multifd_device_state", "10.0, 623af41dd3"),
    "x-migration-load-config-after-iter": ("has_load_config_after_iter", "10.1, 6380b0a02f")}
_MIGRATION_KEYS = ("precopy_rounds", "cancel", "device_faults", "query_faults",
                   "log_start_faults", "hwpt_tracking_faults", "log_stop_faults", "attempts",
                   "postcopy", "background_snapshot", "local", "preserve_source", "late_errors",
                   "return_path", "switchover_ack", "load_faults", "multifd")
_CHECK_KEYS = ("invariants", "expect", *PIN_KEYS, "tracking_method", "blocked_by")


def scenario_from_dict(data: Mapping[str, Any], path: str | Path) -> Scenario:
    """Validate parsed TOML (``data``) of the file ``path`` into a :class:`Scenario`."""
    path = Path(path)
    top = Table(path, None, data)
    vmm = top.choice("vmm", QEMU, VMMS, what="VMM")
    _check_vmm_keys(top, vmm)
    top.only(keys_for(vmm, "", _TOP_KEYS))

    name = top.name("name", path.stem)
    description = top.text("description", "")
    qemu, profile = _load_qemu(top)
    ch = (top.choice("cloud_hypervisor", CH_DEFAULT_PROFILE, tuple(CH_PROFILES),
                     what="cloud-hypervisor profile") if vmm == CLOUD_HYPERVISOR else None)

    vm = _load_vm(top.table("vm"), vmm, profile)
    host = _load_host(top.table("host"), profile)
    devices = _load_devices(top, vm, profile, vmm)
    migration = _load_migration(top.table("migration"), profile, vmm)
    _check_multifd_transfer(top, devices, migration)
    if vm.user_pause and migration.switchover_ack:
        # After a cont the PRE_COPY device is RUNNING with its saving stream closed; what
        # vfio_save_iterate's read of it then does (an error that fails the migration, on
        # mlx5) is not modelled, and without it the model would wait for an ack forever.
        top.table("migration").fail("switchover_ack", "true is not modelled with [vm].user_pause "
                                    "(a cont leaves the device RUNNING without its pre-copy stream)")
    check = _load_check(top.table("check"))
    mutations = _load_mutations(top.table("mutations"))
    return Scenario(path=path, name=name, description=description, qemu=qemu, vm=vm,
                    host=host, devices=devices, migration=migration, check=check,
                    mutations=mutations, vmm=vmm, cloud_hypervisor=ch,
                    patched_profile=None if profile is get_profile(qemu) else profile)


def _check_multifd_transfer(top: Table, devices: tuple[DeviceConfig, ...],
                            migration: MigrationConfig) -> None:
    """x-migration-multifd-transfer=on without multifd fails QEMU's save_setup
    (vfio_multifd_setup(), hw/vfio/migration-multifd.c, 10.0+), a failure not modelled."""
    for i, dev in enumerate(devices):
        if dev.properties.migration_multifd_transfer == "on" and not migration.multifd:
            props = top.array_of_tables("devices")[i].table("properties")
            props.fail("x-migration-multifd-transfer",
                       '"on" needs [migration] multifd = true (QEMU fails save_setup '
                       'otherwise, which is not modelled); use "auto" or "off"')


def _load_qemu(top: Table) -> tuple[str, Profile]:
    """``qemu = "<release>"`` or ``qemu = { base = "<release>", <flag> = <value>, ... }``
    (a reviewer's own patch: the release with behaviour flags changed, docs/spec-files.md)."""
    if not isinstance(top.data.get("qemu"), dict):
        name = top.choice("qemu", "master", PROFILE_NAMES, what="profile", suggest=False)
        return name, get_profile(name)
    t = top.table("qemu")
    base = t.choice("base", "master", PROFILE_NAMES, what="profile", suggest=False)
    flags = {k: v for k, v in t.data.items() if k != "base"}
    try:
        return base, apply_overrides(get_profile(base), flags)
    except OverrideError as exc:
        if exc.flag is None:
            top.fail("qemu", str(exc))
        t.fail(exc.flag, str(exc))


def _check_vmm_keys(top: Table, vmm: str) -> None:
    """A key that only the other VMM has is an error naming it (model.vmm)."""
    tables: list[tuple[str, Table]] = [("", top)]
    tables += [(name, top.table(name)) for name in ("vm", "migration") if name in top.data]
    for entry in top.array_of_tables("devices"):
        tables.append(("devices", entry))
    for kind, table in tables:
        found = foreign_key(vmm, kind, [str(k) for k in table.data])
        if found is not None:
            table.fail(*found)


def _load_vm(t: Table, vmm: str, profile: Profile) -> VmConfig:
    t.only(keys_for(vmm, "vm", _VM_KEYS))
    pages = t.integer("pages", DEFAULT_PAGES, 1, MAX_PAGES)
    ram = t.size("ram", DEFAULT_RAM)
    if ram < pages * PAGE_SIZE:
        t.fail("ram", f"{ram} bytes is less than vm.pages = {pages} pages of {PAGE_SIZE} bytes")
    paused = t.boolean("paused", False)
    user_pause = t.boolean("user_pause", False)
    if user_pause and paused:
        t.fail("user_pause", "true needs paused = false (a VM paused before the migration "
                             "is [vm].paused; user_pause stops a running VM during pre-copy)")
    if user_pause and profile.failure_notifier_follows_runstate:
        t.fail("user_pause", "true is not modelled with the patch flag "
                             "failure_notifier_follows_runstate (it is read for [vm].paused only)")
    return VmConfig(pages=pages, viommu=t.boolean("viommu", False),
                    cpu_writes=t.boolean("cpu_writes", True), ram=ram,
                    paused=paused, user_pause=user_pause,
                    arch=t.choice("arch", "x86_64", ARCHES, what="guest architecture"))


def _load_host(t: Table, profile: Profile) -> HostConfig:
    t.only(_HOST_KEYS)
    iommu = t.choice("iommu", "type1", IOMMU_BACKENDS)
    dirty = t.boolean("iommu_dirty_tracking", False)
    if iommu == "iommufd" and not profile.has_iommufd_backend:
        t.fail("iommu", f'"iommufd" needs QEMU 9.0 or later (iommufd backend, 5ee3dc7af7); '
                        f'profile is {profile.name}')
    if dirty and iommu != "iommufd":
        t.fail("iommu_dirty_tracking",
               'true needs iommu = "iommufd" (type1 has no hardware dirty bits, and the '
               "compat container uses the type1 interface)")
    return HostConfig(iommu=iommu, iommu_dirty_tracking=dirty)  # type: ignore[arg-type]


def _load_devices(top: Table, vm: VmConfig, profile: Profile,
                  vmm: str) -> tuple[DeviceConfig, ...]:
    entries = top.array_of_tables("devices")
    if not entries:
        top.fail("devices", "at least one [[devices]] entry is required")
    if len(entries) > MAX_DEVICES:
        top.fail("devices", f"{len(entries)} devices; at most {MAX_DEVICES} can be modelled")
    devices: list[DeviceConfig] = []
    seen: dict[str, int] = {}
    for index, t in enumerate(entries):
        dev = _load_device(t, index, len(entries), vm, profile, vmm)
        if dev.name in seen:
            t.fail("name", f'duplicate device name "{dev.name}" (also [devices.{seen[dev.name]}])')
        seen[dev.name] = index
        devices.append(dev)
    _check_iommu_capabilities(top, entries, devices, vm)
    return tuple(devices)


def _check_iommu_capabilities(top: Table, entries: list[Table], devices: list[DeviceConfig],
                              vm: VmConfig) -> None:
    """``[[devices]].iommu_dirty_tracking`` is an iommufd notion; behind a vIOMMU each device
    has a container of its own, which the model does not give different capabilities."""
    iommu = top.table("host").data.get("iommu", "type1")
    stated = [(t, d) for t, d in zip(entries, devices, strict=True)
              if d.iommu_dirty_tracking is not None]
    if stated and iommu != "iommufd":
        stated[0][0].fail("iommu_dirty_tracking", 'needs [host].iommu = "iommufd" (the IOMMU '
                                                  "capability of an iommufd device)")
    default = bool(top.table("host").data.get("iommu_dirty_tracking", False))
    caps = {default if d.iommu_dirty_tracking is None else d.iommu_dirty_tracking
            for d in devices}
    if vm.viommu and len(caps) > 1:
        stated[0][0].fail("iommu_dirty_tracking",
                          "devices behind a vIOMMU each get their own container; mixed IOMMU "
                          "dirty capabilities are modelled without a vIOMMU only")


def _load_device(t: Table, index: int, count: int, vm: VmConfig,
                 profile: Profile, vmm: str) -> DeviceConfig:
    t.only(keys_for(vmm, "devices", _DEVICE_KEYS))
    name = t.name("name", f"dev{index}")
    features = t.string_set(
        "features", FEATURES, what="feature", hint=" (VFIO_MIGRATION_STOP_COPY is implied)",
        special={"stop-copy": '"stop-copy" is implied (VFIO_MIGRATION_STOP_COPY is mandatory); '
                              'list only "p2p", "pre-copy"'})
    all_pages = tuple(range(vm.pages))
    dma_pages = t.pages("dma_pages", all_pages, vm.pages)
    pins = t.pages("pins", (), vm.pages)
    p2p_dma = t.boolean("p2p_dma", count > 1)
    if p2p_dma and count == 1:
        t.fail("p2p_dma", "true needs another device to target (the VM has one device)")
    props = _load_properties(t.table("properties"), profile)
    iommu_dirty = t.boolean("iommu_dirty_tracking", False) if "iommu_dirty_tracking" in t.data \
        else None
    return DeviceConfig(name=name, features=features, dma_logging=t.boolean("dma_logging", False),
                        dma_pages=dma_pages, pins=pins, p2p_dma=p2p_dma, properties=props,
                        iommu_dirty_tracking=iommu_dirty,
                        migration=t.boolean("migration", True))


def _load_properties(t: Table, profile: Profile) -> DeviceProperties:
    t.only(_PROPERTY_KEYS)
    # OnOffAuto as QEMU parses it; a TOML boolean is refused with the spelling to use.
    if isinstance(t.data.get("x-pre-copy-dirty-page-tracking"), bool):
        t.fail("x-pre-copy-dirty-page-tracking",
               'an OnOffAuto property: write "on", "off" or "auto" (as QEMU takes it)')
    pre_copy = t.choice("x-pre-copy-dirty-page-tracking", "on", ON_OFF_AUTO)
    for key, (flag, since) in _NEWER_PROPERTIES.items():
        if key in t.data and not getattr(profile, flag):
            t.fail(key, f"property does not exist in QEMU {profile.name} (added in {since})")
    device_tracking = t.choice("x-device-dirty-page-tracking", "on", ON_OFF_AUTO)
    if profile.enable_migration_property is EnableMigrationProperty.EXPERIMENTAL_BOOL:
        # QEMU 8.0: boolean x-enable-migration, default false (hw/vfio/pci.c at c1eb2ddf0f).
        enable = t.choice("enable-migration", "off", ("on", "off"),
                          hint=" (QEMU 8.0 has only the experimental boolean "
                               "x-enable-migration, default off)")
    else:
        enable = t.choice("enable-migration", "auto", ON_OFF_AUTO)
    multifd = t.choice("x-migration-multifd-transfer", "auto", ON_OFF_AUTO)
    config_after_iter = t.choice("x-migration-load-config-after-iter", "auto", ON_OFF_AUTO)
    return DeviceProperties(pre_copy_dirty_page_tracking=pre_copy,  # type: ignore[arg-type]
                            x_device_dirty_page_tracking=device_tracking,  # type: ignore[arg-type]
                            enable_migration=enable,  # type: ignore[arg-type]
                            migration_multifd_transfer=multifd,  # type: ignore[arg-type]
                            migration_load_config_after_iter=config_after_iter)  # type: ignore[arg-type]


def _load_migration(t: Table, profile: Profile, vmm: str) -> MigrationConfig:
    t.only(keys_for(vmm, "migration", _MIGRATION_KEYS))
    postcopy = t.boolean("postcopy", False)
    if postcopy and vmm == QEMU and not profile.refuses_postcopy:
        t.fail("postcopy", f"QEMU {profile.name} does not refuse postcopy with VFIO devices "
                           "(the destination fails; refused since 8.2, bf7ef7a2da) and "
                           "postcopy is not modelled")
    config = MigrationConfig(
        precopy_rounds=t.integer("precopy_rounds", 1, 0, MAX_PRECOPY_ROUNDS),
        cancel=t.boolean("cancel", False),
        device_faults=t.boolean("device_faults", False),
        query_faults=t.boolean("query_faults", False),
        log_start_faults=t.boolean("log_start_faults", False),
        hwpt_tracking_faults=t.boolean("hwpt_tracking_faults", False),
        log_stop_faults=t.boolean("log_stop_faults", False),
        attempts=t.integer("attempts", 1, 1, MAX_ATTEMPTS),
        postcopy=postcopy,
        background_snapshot=_background_snapshot(t, profile),
        local=t.boolean("local", False),
        preserve_source=t.boolean("preserve_source", False),
        late_errors=t.boolean("late_errors", False),
        return_path=t.boolean("return_path", False),
        switchover_ack=_switchover_ack(t, profile),
        load_faults=t.boolean("load_faults", False),
        multifd=t.boolean("multifd", False),
    )
    problem = ch_migration_problem(config) if vmm == CLOUD_HYPERVISOR else None
    if problem is not None:
        t.fail(*problem)
    return config


def _switchover_ack(t: Table, profile: Profile) -> bool:
    """``[migration].switchover_ack``: the capability exists from 8.1 (745c42912a) and
    needs the return path (migrate_caps_check, migration/options.c)."""
    wanted = t.boolean("switchover_ack", False)
    if wanted and not profile.has_switchover_ack:
        t.fail("switchover_ack", f"QEMU {profile.name} has no switchover-ack capability "
                                 "(added in 8.1, 745c42912a)")
    if wanted and not t.boolean("return_path", False):
        t.fail("switchover_ack", "true needs return_path = true (QEMU refuses the "
                                 "capability without the return path)")
    return wanted


def _background_snapshot(t: Table, profile: Profile) -> bool:
    """``[migration].background_snapshot``: the background-snapshot capability.  From 8.2
    vfio_save_prepare() refuses it (615379764a); earlier releases ran it without dirty
    tracking and saved a stale device state, which the model does not cover."""
    wanted = t.boolean("background_snapshot", False)
    if wanted and not profile.refuses_background_snapshot:
        t.fail("background_snapshot", f"QEMU {profile.name} does not refuse background "
                                      "snapshots with VFIO devices (refused since 8.2, "
                                      "615379764a) and they are not modelled")
    return wanted


def _load_check(t: Table) -> CheckConfig:
    t.only(_CHECK_KEYS)
    invariants: tuple[str, ...] | None = None
    if "invariants" in t.data:
        names = t.string_list("invariants")
        if not names:
            t.fail("invariants", "empty list; leave the key out to check all that apply")
        for name in names:
            _known_property(t, "invariants", name)
        dup = first_duplicate(names)
        if dup is not None:
            t.fail("invariants", f'"{dup}" is listed twice')
        invariants = tuple(names)
    expect = _load_expect(t)
    if expect is not None and expect.kind == "violation" and invariants is not None:
        for name in expect.invariants:
            if name not in invariants:
                t.fail("expect", f'violation of "{name}" is expected but '
                                 "[check].invariants does not check it")
    method = t.choice("tracking_method", "", TRACKING_METHODS, what="tracking method") or None
    blocked_by = _load_blocked_by(t, expect)
    return CheckConfig(invariants=invariants, expect=expect, tracking_method=method,
                       blocked_by=blocked_by, **_load_pins(t, expect))


def _known_property(t: Table, key: str, name: str) -> None:
    if name not in PROPERTY_KINDS:
        t.fail(key, f'unknown property "{name}"; allowed: {", ".join(PROPERTY_NAMES)}'
                    f"{did_you_mean(name, PROPERTY_NAMES)}")


def _load_blocked_by(t: Table, expect: Expect | None) -> tuple[str, ...] | None:
    if "blocked_by" not in t.data:
        return None
    codes = t.string_list("blocked_by")
    for code in codes:
        if code not in BLOCKER_CODES:
            t.fail("blocked_by", f'unknown blocker "{code}"; allowed: {quoted(BLOCKER_CODES)}'
                                 f"{did_you_mean(code, BLOCKER_CODES)}")
    dup = first_duplicate(codes)
    if dup is not None:
        t.fail("blocked_by", f'"{dup}" is listed twice')
    if codes and (expect is None or expect.kind != "blocked"):
        t.fail("blocked_by", "names blockers, so the migration is refused: expect must be "
                             '"blocked"; use [] to state that nothing blocks it')
    return tuple(codes)


def _load_pins(t: Table, expect: Expect | None) -> dict[str, Any]:
    pins: dict[str, Any] = {}
    for key in PIN_KEYS:
        if key not in t.data:
            continue
        if key == "trace_length" and isinstance(t.data[key], dict):
            pins[key] = _load_trace_lengths(t, expect)
            continue
        pins[key] = _pin(t, key, t._get(key, int, "an integer >= 1"))
    if "trace_length" in pins and (expect is None or expect.kind != "violation"):
        t.fail("trace_length", "only an expected violation has a counterexample; expect is "
                               + ("not given" if expect is None else f'"{expect}"'))
    if isinstance(pins.get("trace_length"), int) and expect is not None and len(expect.invariants) > 1:
        t.fail("trace_length", "several violations are expected: give one length each, "
                               '{ NoPageLost = 30, ... }')
    return pins


def _pin(t: Table, key: str, value: int) -> int:
    if not 1 <= value <= MAX_PIN:
        t.fail(key, f"expected an integer >= 1, got integer {value}")
    return int(value)


def _load_trace_lengths(t: Table, expect: Expect | None) -> dict[str, int]:
    table = t.table("trace_length")
    expected = expect.invariants if expect is not None else ()
    out: dict[str, int] = {}
    for name in table.data:
        if name not in expected:
            table.fail(name, "is not among the violations expect names"
                             + (f" ({', '.join(expected)})" if expected else ""))
        out[name] = _pin(table, name, table._get(name, int, "an integer >= 1"))
    return out


_EXPECT_FORM = '"pass", "blocked", { violation = "<property>" } or { violations = ["<property>", ...] }'


def _load_expect(t: Table) -> Expect | None:
    if "expect" not in t.data:
        return None
    value = t.data["expect"]
    if isinstance(value, str):
        if value in ("pass", "blocked"):
            return Expect(kind=value)  # type: ignore[arg-type]
        if value == "violation":
            t.fail("expect", '"violation" needs the property: { violation = "<property>" }')
        t.fail("expect", f'unknown value "{value}"; allowed: {_EXPECT_FORM}'
                         f"{did_you_mean(value, ('pass', 'blocked'))}")
    if isinstance(value, dict):
        keys = list(value)
        if len(keys) != 1 or keys[0] not in ("violation", "violations"):
            extra = [k for k in keys if k not in ("violation", "violations")]
            bad = extra[0] if extra else ", ".join(keys) or "(none)"
            t.fail("expect", f'unknown key "{bad}" in the inline table; allowed: violation '
                             "or violations (one of them)")
        return _expect_violations(t, keys[0], value[keys[0]])
    t.fail("expect", f"expected {_EXPECT_FORM}, got {describe(value)}")


def _expect_violations(t: Table, key: str, value: Any) -> Expect:
    several = key == "violations"
    if several and (not isinstance(value, list) or not value):
        t.fail("expect", f"violations: expected a non-empty array of property names, got {describe(value)}")
    names = value if several else [value]
    for inv in names:
        if not isinstance(inv, str):
            t.fail("expect", f"{key}: expected a property name string, got {describe(inv)}")
        _known_property(t, "expect", inv)
    dup = first_duplicate(names)
    if dup is not None:
        t.fail("expect", f'violations: "{dup}" is listed twice')
    return Expect(kind="violation", invariants=tuple(names), several=several)


def _load_mutations(t: Table) -> frozenset[Mutation]:
    t.only(MUTATION_NAMES, what="mutation")
    return frozenset(m for m in Mutation if t.boolean(m.value, False))
