"""QEMU's dirty-tracking decision and migration blockers, per QEMU profile.

Two questions, answered as pure functions of a :class:`~model.scenario.Scenario`:

1. Which blockers does QEMU install (or which devices fail to realize) — at device realize
   (``vfio_migration_realize()``, hw/vfio/migration.c) and at migration start
   (``vfio_save_prepare()``)?  :func:`realize_blockers`, :func:`save_prepare_blockers`.
2. How does the (single, shared) VFIO container report dirty pages once migration starts?
   :func:`choose_method`, plus the type1 pinned scope and whether vIOMMU unmaps fetch dirty
   bits first.

:func:`decide` bundles both into a :class:`TrackingDecision` with human-readable notes and
the QEMU sources of every rule that fired, so reports can show why.

Rules were read in the QEMU history at the release commits named in
:mod:`model.profiles` (see also docs/sources.md#qemu-tracking-decision,
#qemu-realize-blockers, #qemu-releases).  Modelling decisions:

* All devices of a scenario sit in one container (one address space); each device is its
  own IOMMU-backed group.  Every modelled device supports ``VFIO_MIGRATION_STOP_COPY``, so
  ``vfio_migration_init()`` succeeds whenever it runs (the "not supported in kernel"
  blocker is not modelled).
* Devices realize in file order, as ``-device`` options do.  A realize error (the
  ``enable-migration=on`` form of a blocker) stops QEMU from starting: later devices are not
  realized and the scenario is blocked.
* The host IOMMU's dirty-tracking capability (``[host].iommu_dirty_tracking``) applies to
  every device, so a container never mixes dirty-capable and plain hwpts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from model.contract import (  # the contract names of methods and blocker codes, re-exported
    MIGRATION_DISABLED,
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    NO_DIRTY_TRACKING,
    PAGE_SIZE,
    POSTCOPY,
    TYPE1_LARGE_RAM,
    VIOMMU,
    Method,
    Mutation,
)
from model.profiles import (
    EnableMigrationProperty,
    MultiDeviceOnError,
    MultiDeviceRule,
    Profile,
    ViommuRule,
)
from model.scenario import DeviceConfig, Scenario
from model.units import format_size


class Stage(StrEnum):
    REALIZE = "realize"  # vfio_migration_realize(): blocker installed or realize error
    SAVE_PREPARE = "save_prepare"  # vfio_save_prepare(): migration start refused


# type1's unmap_bitmap limit: DIRTY_BITMAP_SIZE_MAX (kernel vfio_iommu_type1.c) is the bytes
# for INT_MAX pages rounded to u64 words = 256 MiB, i.e. 2^31 pages; QEMU compares guest RAM
# with max_dirty_bitmap_size * 8 * smallest dirty page size (vfio_dirty_tracking_exceed_limit,
# master 46c7633114 + e3c659fee0).  With 4 KiB pages: 8 TiB.
TYPE1_DIRTY_BITMAP_BYTES = 1 << 28
TYPE1_RAM_LIMIT = TYPE1_DIRTY_BITMAP_BYTES * 8 * PAGE_SIZE


@dataclass(frozen=True)
class Blocker:
    """One reason QEMU will not migrate this VM."""

    code: str  # one of BLOCKER_CODES
    device: str | None  # None: a global blocker
    message: str
    source: str
    stage: Stage
    error: bool  # the device fails to realize (enable-migration=on), QEMU does not start


@dataclass(frozen=True)
class TrackingDecision:
    profile: str
    method: Method
    blockers: tuple[Blocker, ...]
    blocked: bool
    # type1 GET_BITMAP reports only pinned pages (every IOMMU-backed group pins).
    type1_pinned_scope: bool
    # a vIOMMU unmap during tracking fetches the range's dirty bits (before the mapping
    # disappears, or, for device logs and all-dirty, for the translated range right after).
    unmap_queries_dirty: bool
    notes: tuple[str, ...]
    sources: tuple[str, ...]
    # devices that start DMA logging and are asked for reports (method device-dma-logging).
    logging_devices: frozenset[str] = frozenset()
    # devices holding a migration object after realize (they get save/load handlers).
    migratable_devices: tuple[str, ...] = ()
    # union of the devices' pinned pages (what type1 reports under pinned scope).
    pinned_pages: frozenset[int] = frozenset()
    # devices with x-pre-copy-dirty-page-tracking=off: while any of them is in one of
    # profile.precopy_sync_suppressing_states, the container skips log_sync.
    precopy_sync_opt_out: tuple[str, ...] = ()
    mutations_applied: tuple[str, ...] = ()

    @property
    def blocked_by(self) -> tuple[str, ...]:
        """Reason codes, each once, in the order QEMU meets them."""
        return tuple(dict.fromkeys(b.code for b in self.blockers))

    @property
    def realize_failed(self) -> bool:
        return any(b.error for b in self.blockers)

    def type1_reported_pages(self, mapped: Iterable[int]) -> frozenset[int]:
        """Pages a type1 GET_BITMAP (or unmap-with-bitmap) reports for ``mapped`` pages.

        vfio_iova_dirty_bitmap()/update_user_bitmap() in vfio_iommu_type1.c: while any
        IOMMU-backed group is outside pinned scope every mapped page is reported; else the
        per-mapping bitmap, re-populated with the pinned pages after every report.
        """
        mapped = frozenset(mapped)
        return mapped & self.pinned_pages if self.type1_pinned_scope else mapped


# --- sources (cited in decisions) --------------------------------------------------------

SRC_REALIZE = "hw/vfio/migration.c vfio_migration_realize()"
SRC_8_0_REALIZE = f"{SRC_REALIZE} + hw/vfio/pci.c x-enable-migration (QEMU 8.0, c1eb2ddf0f)"
SRC_ENABLE_MIGRATION = f"{SRC_REALIZE}: enable-migration OnOffAuto (8.1, 8bbcb64a71)"
SRC_NO_DIRTY_8_1 = f"{SRC_REALIZE}: AUTO requires device dirty tracking (8.1, 8bbcb64a71)"
SRC_NO_DIRTY_9_1 = (f"{SRC_REALIZE}: AUTO accepts IOMMU dirty tracking (9.1, f48b472450); "
                    "x-device-dirty-page-tracking (9.1, 30b9167785)")
SRC_LARGE_RAM = ("hw/vfio/migration.c vfio_dirty_tracking_exceed_limit() "
                 "(master, 46c7633114, e3c659fee0)")
SRC_MULTI_8_0 = "hw/vfio/common.c vfio_block_multiple_devices_migration() (8.0, 29d81b71aa)"
SRC_MULTI_8_1 = ("hw/vfio/common.c vfio_block_multiple_devices_migration(): "
                 "enable-migration=on errors (8.1, 8bbcb64a71)")
SRC_MULTI_P2P = ("vfio_multiple_devices_migration_is_supported(): all P2P (8.2, 5c7a4b6035); "
                 "enable-migration=on fails even with the blocker present (8.2, 8118349b1b)")
SRC_VIOMMU_8_0 = "hw/vfio/common.c vfio_block_giommu_migration() (8.0, e46883204c)"
SRC_VIOMMU_8_1 = f"{SRC_REALIZE} vfio_viommu_preset(): per device (8.1, 3c26c80a0a)"
SRC_VIOMMU_MASTER = (f"{SRC_REALIZE}: vIOMMU blocks only device dirty tracking users "
                     "(master, 0e3c1e2b2b)")
SRC_POSTCOPY = "hw/vfio/migration.c vfio_save_prepare() (8.2, bf7ef7a2da)"
SRC_METHOD_DEVICE = ("log_global_start: DMA logging when every device supports it "
                     "(vfio_devices_all_device_dirty_tracking, 8.0, 5255bbf4ec/b153402a89); "
                     "9.1+ also honours x-device-dirty-page-tracking=off (30b9167785)")
SRC_METHOD_TYPE1 = ("type1 container tracking VFIO_IOMMU_DIRTY_PAGES "
                    "(vfio_set_dirty_page_tracking / vfio_query_dirty_bitmap, QEMU 5.1+)")
SRC_METHOD_IOMMUFD = ("iommufd hwpt dirty tracking (hw/vfio/iommufd.c set_dirty_tracking / "
                      "query_dirty_bitmap, 9.1, 52ce88229c/7c30710bd9)")
SRC_METHOD_ALL_DIRTY = ("vfio_get_dirty_bitmap / vfio_container_query_dirty_bitmap: no "
                        "container support and not all devices log -> mark range dirty "
                        "(8.0, b051a3f640)")
SRC_TYPE1_SCOPE = ("kernel vfio_iommu_type1.c: num_non_pinned_groups, "
                   "pinned_page_dirty_scope, update_user_bitmap()")
SRC_UNMAP_TYPE1 = ("hw/vfio unmap: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP for container "
                   "tracking, unmap-then-query otherwise (9e7b0442f2, 9a04fe0957)")
SRC_UNMAP_IOMMUFD_OLD = ("hw/vfio/iommufd.c iommufd_cdev_unmap(): no dirty query on "
                         "vIOMMU unmap (9.0..10.2)")
SRC_UNMAP_IOMMUFD_MASTER = ("hw/vfio/iommufd.c iommufd_cdev_unmap(): GET_DIRTY_BITMAP "
                            "NO_CLEAR before unmap (master, 31ec4aadd0/f051dbeb91/e98a1c7049)")
SRC_PRECOPY_SYNC = ("vfio_devices_all_dirty_tracking / vfio_log_sync_needed: "
                    "x-pre-copy-dirty-page-tracking=off skips log_sync (bb0990d174)")


class _Collector:
    """Accumulates blockers, notes and sources while rules fire."""

    def __init__(self) -> None:
        self.blockers: list[Blocker] = []
        self.notes: list[str] = []
        self.sources: list[str] = []

    def cite(self, source: str) -> None:
        if source not in self.sources:
            self.sources.append(source)

    def note(self, text: str, source: str | None = None) -> None:
        self.notes.append(text)
        if source:
            self.cite(source)

    def block(self, code: str, device: str | None, message: str, source: str,
              stage: Stage = Stage.REALIZE, error: bool = False) -> None:
        self.blockers.append(Blocker(code, device, message, source, stage, error))
        self.cite(source)


# --- per-device facts -------------------------------------------------------------------


def migration_init_runs(dev: DeviceConfig) -> bool:
    """vfio_migration_init() runs (and, in the model, succeeds): enable-migration is not off.

    8.0: x-enable-migration (bool, default off) gates it; 8.1+: enable-migration=off returns
    before it.  Only init probes DMA logging (``dirty_pages_supported``, 95b29658b6).
    """
    return dev.properties.enable_migration != "off"


def device_dirty_tracking_enabled(dev: DeviceConfig, profile: Profile) -> bool:
    """``!vfio_device_dirty_pages_disabled()``: DMA logging probed and not switched off.

    ``x-device-dirty-page-tracking`` only counts from 9.1 (30b9167785; before, the scenario
    loader rejects it and it stays "on").
    """
    if not (dev.dma_logging and migration_init_runs(dev)):
        return False
    return not (profile.has_device_dirty_page_tracking_property
                and dev.properties.x_device_dirty_page_tracking == "off")


def iommu_dirty_tracking(scenario: Scenario) -> bool:
    """A device's ``iommu_dirty_tracking``: its iommufd hwpt was allocated dirty-capable.

    Set only by hw/vfio/iommufd.c (9.1, dddfd8d667); always false for the type1 container.
    """
    host = scenario.host
    return (host.iommu == "iommufd" and host.iommu_dirty_tracking
            and scenario.profile.iommufd_hw_dirty_tracking)


def container_dirty_tracking_supported(scenario: Scenario) -> bool:
    """``container->dirty_pages_supported``.

    type1: the VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION capability, which every type1 kernel
    the profiles run on reports (vfio_get_iommu_info_migration).  iommufd: OR of the
    devices' iommu_dirty_tracking (hw/vfio/iommufd.c, 9.1).
    """
    return scenario.host.iommu == "type1" or iommu_dirty_tracking(scenario)


# --- blockers ---------------------------------------------------------------------------


def _realize_8_0(scenario: Scenario, out: _Collector, migratable: list[DeviceConfig]) -> None:
    """QEMU 8.0: experimental x-enable-migration; global multi-device and vIOMMU blockers."""
    global_multi = global_viommu = False
    for dev in scenario.devices:
        if not migration_init_runs(dev):
            out.block(MIGRATION_DISABLED, dev.name,
                      f"{dev.name}: x-enable-migration is off (the QEMU 8.0 default): "
                      "QEMU installs the blocker 'VFIO device doesn't support migration'",
                      SRC_8_0_REALIZE)
            continue
        migratable.append(dev)
        # Global blocker once more than one device holds a migration object (29d81b71aa).
        if not global_multi and len(migratable) > 1:
            global_multi = True
            out.block(MULTIPLE_DEVICES, None,
                      f"{len(migratable)} migratable VFIO devices: QEMU 8.0 migrates at most "
                      "one", SRC_MULTI_8_0)
        # Global blocker when any VFIO address space is not system memory (e46883204c).
        if not global_viommu and scenario.vm.viommu and not _mutation_drops_viommu(
                scenario, dev):
            global_viommu = True
            out.block(VIOMMU, None, "a vIOMMU translates VFIO DMA: QEMU 8.0 blocks migration",
                      SRC_VIOMMU_8_0)


def _mutation_drops_viommu(scenario: Scenario, dev: DeviceConfig) -> bool:
    """Mutation ``allow_viommu_device_tracking``: no vIOMMU blocker for a device-tracking user."""
    return (Mutation.ALLOW_VIOMMU_DEVICE_TRACKING in scenario.mutations
            and device_dirty_tracking_enabled(dev, scenario.profile))


class _Next(Enum):
    """What follows one check of vfio_migration_realize() for a device."""

    GO_ON = "go on"  # the device passed: the next check runs
    NEXT_DEVICE = "next device"  # a blocker ends this device's realize; the next device's begins
    STOP = "stop"  # a realize error (enable-migration=on): QEMU exits


def _realize(scenario: Scenario, out: _Collector, migratable: list[DeviceConfig]) -> None:
    """QEMU 8.1+: vfio_migration_realize() for each device in order, stopping at an error."""
    _Realizer(scenario, out, migratable).run()


class _Realizer:
    """vfio_migration_realize() of 8.1+, one device after the other, as its checks run:
    1. enable-migration=off, 2. vfio_migration_init(), 3. a usable dirty-tracking method,
    4. more than one migratable device, 5. a vIOMMU."""

    def __init__(self, scenario: Scenario, out: _Collector,
                 migratable: list[DeviceConfig]) -> None:
        self.scenario = scenario
        self.profile = scenario.profile
        self.out = out
        self.migratable = migratable  # devices holding a migration object, in realize order
        self.iommu_dt = iommu_dirty_tracking(scenario)
        self.global_multi = False  # the shared multi-device blocker is installed

    def run(self) -> None:
        for index, dev in enumerate(self.scenario.devices):
            # 1. enable-migration=off: a blocker, never an error (8bbcb64a71).
            if dev.properties.enable_migration == "off":
                self.out.block(MIGRATION_DISABLED, dev.name,
                               f"{dev.name}: enable-migration=off ('Migration is disabled for "
                               "VFIO device')", SRC_ENABLE_MIGRATION)
                continue
            # 2. vfio_migration_init() succeeds: the device now holds a migration object.
            self.migratable.append(dev)
            step = _Next.GO_ON
            for check in (self._dirty_tracking, self._multiple_devices, self._viommu):
                step = check(dev)
                if step is not _Next.GO_ON:
                    break
            if step is _Next.STOP:
                self.migratable.remove(dev)
                _stop_after(self.scenario, index, self.out)
                return

    def _dirty_tracking(self, dev: DeviceConfig) -> _Next:
        """3. A usable dirty-tracking method for this device.  8.1/8.2: DMA logging only
        (8bbcb64a71); 9.1+: or an iommufd dirty-capable hwpt (f48b472450)."""
        profile, scenario, out = self.profile, self.scenario, self.out
        mode = dev.properties.enable_migration
        device_dt = device_dirty_tracking_enabled(dev, profile)
        if device_dt or (profile.auto_accepts_iommu_dirty_tracking and self.iommu_dt):
            if not device_dt:
                out.note(f"{dev.name}: IOMMU dirty tracking satisfies enable-migration="
                         f"{mode}", SRC_NO_DIRTY_9_1)
            return _Next.GO_ON
        source = (SRC_NO_DIRTY_9_1 if profile.auto_accepts_iommu_dirty_tracking
                  else SRC_NO_DIRTY_8_1)
        what = ("device or IOMMU dirty tracking" if profile.auto_accepts_iommu_dirty_tracking
                else "device dirty tracking (DMA logging)")
        if mode == "auto":
            # The device keeps its migration object: it still counts for step 4 of
            # later devices (the add_blocker path only deinits on failure).
            out.block(NO_DIRTY_TRACKING, dev.name,
                      f"{dev.name}: no {what} under enable-migration=auto", source)
            return _Next.NEXT_DEVICE
        if (profile.type1_large_ram_blocker and scenario.host.iommu == "type1"
                and scenario.vm.ram > TYPE1_RAM_LIMIT):
            out.block(TYPE1_LARGE_RAM, dev.name,
                      f"{dev.name}: guest RAM {format_size(scenario.vm.ram)} exceeds type1's "
                      f"unmap_bitmap limit {format_size(TYPE1_RAM_LIMIT)}",
                      SRC_LARGE_RAM, error=True)
            return _Next.STOP
        out.note(f"{dev.name}: no {what}; enable-migration=on only warns, so migration "
                 "relies on container tracking or marks every page dirty", source)
        return _Next.GO_ON

    def _multiple_devices(self, dev: DeviceConfig) -> _Next:
        """4. More than one migratable device (counted over every device realized so far)."""
        profile, migratable, out = self.profile, self.migratable, self.out
        rule_all_p2p = profile.multi_device_rule is MultiDeviceRule.ALL_P2P
        if len(migratable) <= 1 or (rule_all_p2p and all(d.has_p2p for d in migratable)):
            if len(migratable) > 1:
                out.note(f"{len(migratable)} migratable devices, all with VFIO_MIGRATION_P2P: "
                         "allowed", SRC_MULTI_P2P)
            return _Next.GO_ON
        code = MULTIPLE_DEVICES_WITHOUT_P2P if rule_all_p2p else MULTIPLE_DEVICES
        source = SRC_MULTI_P2P if rule_all_p2p else SRC_MULTI_8_1
        lacking = ", ".join(d.name for d in migratable if not d.has_p2p)
        reason = (f"{len(migratable)} migratable VFIO devices, not all with "
                  f"VFIO_MIGRATION_P2P (lacking: {lacking})" if rule_all_p2p
                  else f"{len(migratable)} migratable VFIO devices: QEMU {profile.name} "
                       "migrates at most one")
        on_error = profile.multi_device_on_error
        fails = dev.properties.enable_migration == "on" and (
            on_error is MultiDeviceOnError.ALWAYS
            or (on_error is MultiDeviceOnError.FIRST_ONLY and not self.global_multi))
        if fails:
            out.block(code, dev.name, f"{dev.name}: enable-migration=on but {reason}",
                      source, error=True)
            return _Next.STOP
        if not self.global_multi:
            self.global_multi = True
            out.block(code, None, reason, source)
        return _Next.GO_ON

    def _viommu(self, dev: DeviceConfig) -> _Next:
        """5. vIOMMU: every device up to 10.2 (3c26c80a0a); master only device dirty
        tracking users (0e3c1e2b2b).  With enable-migration=on, a realize error."""
        scenario, profile, out = self.scenario, self.profile, self.out
        if not scenario.vm.viommu:
            return _Next.GO_ON
        tracking_only = profile.viommu_rule is ViommuRule.DEVICE_TRACKING_ONLY
        applies = (profile.viommu_rule is ViommuRule.EVERY_DEVICE
                   or (tracking_only and device_dirty_tracking_enabled(dev, profile)))
        if applies and _mutation_drops_viommu(scenario, dev):
            out.note(f"{dev.name}: vIOMMU blocker dropped (mutation "
                     f"{Mutation.ALLOW_VIOMMU_DEVICE_TRACKING})")
            return _Next.GO_ON
        if not applies:
            out.note(f"{dev.name}: behind a vIOMMU but without device dirty tracking: "
                     "allowed", SRC_VIOMMU_MASTER)
            return _Next.GO_ON
        source = SRC_VIOMMU_MASTER if tracking_only else SRC_VIOMMU_8_1
        why = ("device dirty tracking cannot follow vIOMMU mappings" if tracking_only
               else f"QEMU {profile.name} blocks every VFIO device behind a vIOMMU")
        on = dev.properties.enable_migration == "on"
        out.block(VIOMMU, dev.name, f"{dev.name}: vIOMMU present: {why}", source, error=on)
        return _Next.STOP if on else _Next.GO_ON


def _stop_after(scenario: Scenario, index: int, out: _Collector) -> None:
    """A realize error: QEMU exits, the devices after ``index`` are never realized."""
    rest = [d.name for d in scenario.devices[index + 1:]]
    failed = scenario.devices[index].name
    tail = f"; {', '.join(rest)} never realized" if rest else ""
    out.note(f"{failed} fails to realize, so QEMU does not start{tail}")


def realize_blockers(scenario: Scenario) -> tuple[tuple[Blocker, ...], tuple[str, ...]]:
    """Blockers (and realize errors) of all devices, with the migratable devices' names."""
    out = _Collector()
    migratable: list[DeviceConfig] = []
    _run_realize(scenario, out, migratable)
    return tuple(out.blockers), tuple(d.name for d in migratable)


def _run_realize(scenario: Scenario, out: _Collector, migratable: list[DeviceConfig]) -> None:
    if scenario.profile.enable_migration_property is EnableMigrationProperty.EXPERIMENTAL_BOOL:
        _realize_8_0(scenario, out, migratable)
    else:
        _realize(scenario, out, migratable)


def save_prepare_blockers(scenario: Scenario, migratable: Iterable[str]) -> tuple[Blocker, ...]:
    """vfio_save_prepare() at migration start (8.2+, bf7ef7a2da): postcopy-ram refused.

    migrate_prepare() checks the realize blockers first, so this only runs for an otherwise
    migratable VM; the first VFIO handler's refusal ends the attempt.
    """
    names = list(migratable)
    if not (scenario.migration.postcopy and scenario.profile.refuses_postcopy and names):
        return ()
    return (Blocker(POSTCOPY, names[0],
                    f"{names[0]}: VFIO migration is refused with postcopy-ram",
                    SRC_POSTCOPY, Stage.SAVE_PREPARE, False),)


# --- method -----------------------------------------------------------------------------


def choose_method(scenario: Scenario) -> tuple[Method, frozenset[str]]:
    """The container's method at log_global_start, and the devices that DMA-log.

    vfio_listener_log_global_start(): DMA logging when *every* device of the container has
    device dirty tracking enabled; else container tracking (type1 always; iommufd when a
    hwpt is dirty-capable); else (query time) every page marked dirty.
    """
    profile = scenario.profile
    logging = [d.name for d in scenario.devices if device_dirty_tracking_enabled(d, profile)]
    if len(logging) == len(scenario.devices):
        return Method.DEVICE_DMA_LOGGING, frozenset(logging)
    if logging and Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER in scenario.mutations:
        return Method.DEVICE_DMA_LOGGING, frozenset(logging)
    if scenario.host.iommu == "type1":
        return Method.TYPE1, frozenset()
    if container_dirty_tracking_supported(scenario):
        return Method.IOMMUFD_HW, frozenset()
    return Method.ALL_DIRTY, frozenset()


def groups_pin(devices: Iterable[DeviceConfig]) -> bool:
    """The kernel's pinned scope: every IOMMU-backed group has pinned pages.

    A group counts in ``num_non_pinned_groups`` until its driver calls vfio_pin_pages()
    (vfio_iommu_type1.c); each modelled device is its own group and pins iff its ``pins``
    list is non-empty.
    """
    return all(d.pins for d in devices)


def type1_pinned_scope(scenario: Scenario) -> bool:
    """type1 GET_BITMAP reports only pinned pages: the container is type1 and every
    IOMMU-backed group pins (:func:`groups_pin`).  Mutation
    ``type1_ignores_unpinned_groups`` pretends every group pins.
    """
    if scenario.host.iommu != "type1":
        return False
    if Mutation.TYPE1_IGNORES_UNPINNED_GROUPS in scenario.mutations:
        return True
    return groups_pin(scenario.devices)


def unmap_queries_dirty(scenario: Scenario) -> bool:
    """Whether a vIOMMU unmap during tracking fetches the range's dirty bits.

    Legacy type1: unmap-with-bitmap for container tracking, else unmap then query the
    device logs (or mark dirty) for the translated range — every profile (9e7b0442f2).
    iommufd: no query before master (TODO in iommufd_cdev_unmap), master queries NO_CLEAR
    before unmapping, or unmaps then queries for device logs (f051dbeb91).
    """
    if Mutation.NO_UNMAP_DIRTY_QUERY in scenario.mutations:
        return False
    if scenario.host.iommu == "type1":
        return True
    return scenario.profile.iommufd_unmap_queries_dirty


# --- decision ---------------------------------------------------------------------------


def decide(scenario: Scenario) -> TrackingDecision:
    """QEMU's blockers and dirty-tracking choice for ``scenario`` under its profile."""
    profile = scenario.profile
    out = _Collector()
    migratable: list[DeviceConfig] = []
    _run_realize(scenario, out, migratable)
    migratable_names = tuple(d.name for d in migratable)
    if not out.blockers:
        for blocker in save_prepare_blockers(scenario, migratable_names):
            out.block(blocker.code, blocker.device, blocker.message, blocker.source,
                      blocker.stage, blocker.error)

    method, logging = choose_method(scenario)
    _explain_method(scenario, method, logging, out)
    pinned_scope = type1_pinned_scope(scenario)
    pinned = frozenset(p for d in scenario.devices for p in d.pins)
    if scenario.host.iommu == "type1":
        _explain_type1(scenario, method, pinned_scope, out)
    elif pinned:
        out.note("pins have no effect on iommufd dirty tracking (a type1 notion)")
    queries = unmap_queries_dirty(scenario)
    if scenario.vm.viommu:
        _explain_unmap(scenario, queries, out)
    opt_out = tuple(d.name for d in scenario.devices
                    if not d.properties.x_pre_copy_dirty_page_tracking)
    if opt_out:
        states = "/".join(sorted(profile.precopy_sync_suppressing_states))
        out.note(f"x-pre-copy-dirty-page-tracking=off on {', '.join(opt_out)}: no log_sync "
                 f"while such a device is {states}", SRC_PRECOPY_SYNC)
    applied = tuple(sorted(scenario.mutations))
    if applied:
        out.note(f"mutations on: {', '.join(applied)}")
    return TrackingDecision(
        profile=profile.name,
        method=method,
        blockers=tuple(out.blockers),
        blocked=bool(out.blockers),
        type1_pinned_scope=pinned_scope,
        unmap_queries_dirty=queries,
        notes=tuple(out.notes),
        sources=tuple(out.sources),
        logging_devices=logging,
        migratable_devices=migratable_names,
        pinned_pages=pinned,
        precopy_sync_opt_out=opt_out,
        mutations_applied=applied,
    )


def _explain_method(scenario: Scenario, method: Method, logging: frozenset[str],
                    out: _Collector) -> None:
    names = [d.name for d in scenario.devices]
    lacking = [n for n in names if n not in logging]
    if method is Method.DEVICE_DMA_LOGGING:
        if lacking:
            out.note(f"DMA logging used although {', '.join(lacking)} cannot log (mutation "
                     f"{Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER}): their writes are not "
                     "reported",
                     SRC_METHOD_DEVICE)
        else:
            out.note("every device logs its DMA: device dirty tracking", SRC_METHOD_DEVICE)
        return
    if logging:
        out.note(f"{', '.join(lacking)} cannot use DMA logging, so the whole container "
                 f"falls back; DMA logging of {', '.join(sorted(logging))} is not used",
                 SRC_METHOD_DEVICE)
    if method is Method.TYPE1:
        out.cite(SRC_METHOD_TYPE1)
    elif method is Method.IOMMUFD_HW:
        out.note("iommufd hardware dirty tracking on the container's hwpt", SRC_METHOD_IOMMUFD)
    else:
        reason = ("the host IOMMU has no dirty tracking" if not scenario.host.iommu_dirty_tracking
                  else f"QEMU {scenario.profile.name} does not use iommufd dirty tracking")
        out.note(f"no usable dirty tracking ({reason}): every page is marked dirty at "
                 "every sync", SRC_METHOD_ALL_DIRTY)


def _explain_type1(scenario: Scenario, method: Method, pinned_scope: bool,
                   out: _Collector) -> None:
    if method is not Method.TYPE1:
        return
    out.cite(SRC_TYPE1_SCOPE)
    if not pinned_scope:
        unpinned = [d.name for d in scenario.devices if not d.pins]
        out.note(f"type1 reports every mapped page dirty at every query ({', '.join(unpinned)} "
                 "never pins)")
        return
    if (Mutation.TYPE1_IGNORES_UNPINNED_GROUPS in scenario.mutations
            and not groups_pin(scenario.devices)):
        out.note("type1 reports only pinned pages although a group does not pin "
                 f"(mutation {Mutation.TYPE1_IGNORES_UNPINNED_GROUPS})")
    else:
        out.note("every group pins: type1 reports only pinned pages (they stay dirty)")
    for dev in scenario.devices:
        beyond = sorted(set(dev.dma_pages) - set(dev.pins))
        if beyond:
            out.note(f"{dev.name} writes pages {beyond} it does not pin: type1 pinned scope "
                     "does not report them")


def _explain_unmap(scenario: Scenario, queries: bool, out: _Collector) -> None:
    if Mutation.NO_UNMAP_DIRTY_QUERY in scenario.mutations:
        out.note(f"vIOMMU unmaps drop dirty bits (mutation {Mutation.NO_UNMAP_DIRTY_QUERY})")
    elif scenario.host.iommu == "type1":
        out.cite(SRC_UNMAP_TYPE1)
    elif queries:
        out.cite(SRC_UNMAP_IOMMUFD_MASTER)
    else:
        out.note(f"QEMU {scenario.profile.name}: iommufd vIOMMU unmaps do not fetch dirty "
                 "bits", SRC_UNMAP_IOMMUFD_OLD)
