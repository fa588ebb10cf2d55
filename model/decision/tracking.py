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
* iommufd (9.1+): each device's IOMMU may or may not have dirty tracking
  (``[[devices]].iommu_dirty_tracking``, default ``[host].iommu_dirty_tracking``); which
  hwpt a device ends up on, and so whether QEMU counts it as IOMMU-dirty-tracked, follows
  iommufd_cdev_autodomains_get() in realize order (:func:`hwpt_dirty_tracking`).
* ``[host].iommu = "iommufd-compat"``: QEMU's legacy (type1) container code on iommufd's
  VFIO compatibility container, which reports no dirty-tracking capability.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from model.contract import (  # contract names: methods and blocker codes
    BACKGROUND_SNAPSHOT,
    BLOCKER_CODES,
    MIGRATION_DISABLED,
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    NO_DIRTY_TRACKING,
    POSTCOPY,
    TYPE1_LARGE_RAM,
    VIOMMU,
    Method,
    Mutation,
)
from model.decision.base import (
    SRC_8_0_REALIZE,
    SRC_BACKGROUND_SNAPSHOT,
    SRC_ENABLE_MIGRATION,
    SRC_LARGE_RAM,
    SRC_MULTI_8_0,
    SRC_MULTI_8_1,
    SRC_MULTI_P2P,
    SRC_NO_DIRTY_8_1,
    SRC_NO_DIRTY_9_1,
    SRC_POSTCOPY,
    SRC_PRECOPY_SYNC,
    SRC_VIOMMU_8_0,
    SRC_VIOMMU_8_1,
    SRC_VIOMMU_MASTER,
    TYPE1_DIRTY_BITMAP_BYTES,
    TYPE1_RAM_LIMIT,
    Blocker,
    Collector,
    Stage,
    TrackingDecision,
    groups_pin,
)
from model.decision.notes import explain_hwpts, explain_method, explain_type1, explain_unmap
from model.profiles import (
    EnableMigrationProperty,
    MultiDeviceOnError,
    MultiDeviceRule,
    Profile,
    ViommuRule,
)
from model.scenario import DeviceConfig, Scenario
from model.units import format_size

__all__ = [  # the decision's types live in model.decision.base; callers import them here
    "BACKGROUND_SNAPSHOT", "BLOCKER_CODES", "MIGRATION_DISABLED", "MULTIPLE_DEVICES",
    "MULTIPLE_DEVICES_WITHOUT_P2P", "NO_DIRTY_TRACKING", "POSTCOPY", "TYPE1_DIRTY_BITMAP_BYTES",
    "TYPE1_LARGE_RAM", "TYPE1_RAM_LIMIT", "VIOMMU", "Blocker", "Method", "Stage",
    "TrackingDecision", "groups_pin",
]


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


def iommu_capable(scenario: Scenario, dev: DeviceConfig) -> bool:
    """The device's IOMMU reports IOMMU_HW_CAP_DIRTY_TRACKING (iommufd only)."""
    cap = dev.iommu_dirty_tracking
    return scenario.host.iommu_dirty_tracking if cap is None else cap


def hwpt_dirty_tracking(scenario: Scenario) -> tuple[bool, ...]:
    """Per device, QEMU's ``vbasedev->iommu_dirty_tracking``: the hwpt it is attached to was
    allocated dirty-capable (hw/vfio/iommufd.c iommufd_cdev_autodomains_get(), 9.1,
    5b1e96e654, read at Q-9.1 and Q-master; docs/sources.md#qemu-iommufd-hwpt).

    Devices attach in realize order.  A device first tries the container's hwpts, newest
    first, and joins the first that takes it: a dirty-capable hwpt refuses a device whose
    IOMMU cannot track dirty pages (-EINVAL: kernel Intel paging_domain_compatible(), AMD
    the same check), a plain hwpt takes any device.  With none, it allocates its own,
    dirty-capable iff its IOMMU can.  So a capable device joins the newest hwpt whatever
    its kind, and the container mixes kinds once a device without the capability follows
    one with it.
    """
    devices = scenario.devices
    if not (scenario.host.iommu == "iommufd" and scenario.profile.iommufd_hw_dirty_tracking):
        return tuple(False for _ in devices)
    newest: bool | None = None  # kind of the newest hwpt: True dirty-capable, False plain
    out: list[bool] = []
    for dev in devices:
        if iommu_capable(scenario, dev):
            newest = True if newest is None else newest
            out.append(newest)
        else:
            newest = False  # joins (or allocates) a plain hwpt, the newest from then on
            out.append(False)
    return tuple(out)


def iommu_dirty_tracking(scenario: Scenario) -> bool:
    """Some device's iommufd hwpt was allocated dirty-capable (9.1, dddfd8d667)."""
    return any(hwpt_dirty_tracking(scenario))


def container_dirty_tracking_supported(scenario: Scenario) -> bool:
    """``container->dirty_pages_supported``.

    type1: the VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION capability, which every type1 kernel
    the profiles run on reports (vfio_get_iommu_info_migration); iommufd's compatibility
    container does not report it.  iommufd: set when a device allocates a dirty-capable
    hwpt (hw/vfio/iommufd.c, 9.1).
    """
    return scenario.host.iommu == "type1" or iommu_dirty_tracking(scenario)


# --- blockers ---------------------------------------------------------------------------


def _realize_8_0(scenario: Scenario, out: Collector, migratable: list[DeviceConfig]) -> None:
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


def _realize(scenario: Scenario, out: Collector, migratable: list[DeviceConfig]) -> None:
    """QEMU 8.1+: vfio_migration_realize() for each device in order, stopping at an error."""
    _Realizer(scenario, out, migratable).run()


class _Realizer:
    """vfio_migration_realize() of 8.1+, one device after the other, as its checks run:
    1. enable-migration=off, 2. vfio_migration_init(), 3. a usable dirty-tracking method,
    4. more than one migratable device, 5. a vIOMMU."""

    def __init__(self, scenario: Scenario, out: Collector,
                 migratable: list[DeviceConfig]) -> None:
        self.scenario = scenario
        self.profile = scenario.profile
        self.out = out
        self.migratable = migratable  # devices holding a migration object, in realize order
        self.hwpt_dirty = dict(zip((d.name for d in scenario.devices),
                                   hwpt_dirty_tracking(scenario), strict=True))
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
        if device_dt or (profile.auto_accepts_iommu_dirty_tracking and self.hwpt_dirty[dev.name]):
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
        limit = self._dirty_bitmap_limit(dev)
        if limit is not None and scenario.vm.ram > limit:
            what_limit = (f"type1's unmap_bitmap limit {format_size(limit)}" if limit
                          else "the limit of an iommufd container, which sets neither "
                               "max_dirty_bitmap_size nor dirty_pgsizes (so 0)")
            out.block(TYPE1_LARGE_RAM, dev.name,
                      f"{dev.name}: guest RAM {format_size(scenario.vm.ram)} exceeds "
                      f"{what_limit}", SRC_LARGE_RAM, error=True)
            return _Next.STOP
        out.note(f"{dev.name}: no {what}; enable-migration=on only warns, so migration "
                 "relies on container tracking or marks every page dirty", source)
        return _Next.GO_ON

    def _dirty_bitmap_limit(self, dev: DeviceConfig) -> int | None:
        """vfio_dirty_tracking_exceed_limit() (master, 46c7633114 / e3c659fee0): the guest RAM
        a container with dirty-tracking support can report, None when the check does not
        apply (before master, or a container without support).  type1: 8 TiB.  iommufd: its
        container supports dirty tracking once a dirty-capable hwpt exists (so far in
        realize order) but fills in neither size the formula reads, which makes the limit 0
        [inference from the code]."""
        scenario = self.scenario
        if not self.profile.type1_large_ram_blocker:
            return None
        if scenario.host.iommu == "type1":
            return TYPE1_RAM_LIMIT
        names = [d.name for d in scenario.devices]
        upto = names[:names.index(dev.name) + 1]
        if scenario.host.iommu == "iommufd" and any(self.hwpt_dirty[n] for n in upto):
            return 0
        return None

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


def _stop_after(scenario: Scenario, index: int, out: Collector) -> None:
    """A realize error: QEMU exits, the devices after ``index`` are never realized."""
    rest = [d.name for d in scenario.devices[index + 1:]]
    failed = scenario.devices[index].name
    tail = f"; {', '.join(rest)} never realized" if rest else ""
    out.note(f"{failed} fails to realize, so QEMU does not start{tail}")


def realize_blockers(scenario: Scenario) -> tuple[tuple[Blocker, ...], tuple[str, ...]]:
    """Blockers (and realize errors) of all devices, with the migratable devices' names."""
    out = Collector()
    migratable: list[DeviceConfig] = []
    _run_realize(scenario, out, migratable)
    return tuple(out.blockers), tuple(d.name for d in migratable)


def _run_realize(scenario: Scenario, out: Collector, migratable: list[DeviceConfig]) -> None:
    if scenario.profile.enable_migration_property is EnableMigrationProperty.EXPERIMENTAL_BOOL:
        _realize_8_0(scenario, out, migratable)
    else:
        _realize(scenario, out, migratable)


def save_prepare_blockers(scenario: Scenario, migratable: Iterable[str]) -> tuple[Blocker, ...]:
    """vfio_save_prepare() at migration start (8.2+): postcopy-ram refused (bf7ef7a2da),
    else a background snapshot refused (615379764a), in that order.

    migrate_prepare() checks the realize blockers first, so this only runs for an otherwise
    migratable VM; the first VFIO handler's refusal ends the attempt.
    """
    names = list(migratable)
    profile, mig = scenario.profile, scenario.migration
    if not names:
        return ()
    if mig.postcopy and profile.refuses_postcopy:
        return (Blocker(POSTCOPY, names[0],
                        f"{names[0]}: VFIO migration is refused with postcopy-ram",
                        SRC_POSTCOPY, Stage.SAVE_PREPARE, False),)
    if mig.background_snapshot and profile.refuses_background_snapshot:
        return (Blocker(BACKGROUND_SNAPSHOT, names[0],
                        f"{names[0]}: VFIO migration is refused with a background snapshot",
                        SRC_BACKGROUND_SNAPSHOT, Stage.SAVE_PREPARE, False),)
    return ()


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
    # iommufd-compat: the legacy code on a container without dirty support.
    if container_dirty_tracking_supported(scenario):
        return Method.IOMMUFD_HW, frozenset()
    return Method.ALL_DIRTY, frozenset()


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

    Legacy type1 (and the legacy code on iommufd's compat container): unmap-with-bitmap
    for container tracking, else unmap then query the device logs (or mark dirty) for the
    translated range — every profile (9e7b0442f2).
    iommufd: no query before master (TODO in iommufd_cdev_unmap), master queries NO_CLEAR
    before unmapping, or unmaps then queries for device logs (f051dbeb91).
    """
    if Mutation.NO_UNMAP_DIRTY_QUERY in scenario.mutations:
        return False
    if scenario.host.iommu != "iommufd":
        return True
    return scenario.profile.iommufd_unmap_queries_dirty


# --- decision ---------------------------------------------------------------------------


def decide(scenario: Scenario) -> TrackingDecision:
    """QEMU's blockers and dirty-tracking choice for ``scenario`` under its profile."""
    profile = scenario.profile
    out = Collector()
    migratable: list[DeviceConfig] = []
    _run_realize(scenario, out, migratable)
    migratable_names = tuple(d.name for d in migratable)
    if not out.blockers:
        for blocker in save_prepare_blockers(scenario, migratable_names):
            out.block(blocker.code, blocker.device, blocker.message, blocker.source,
                      blocker.stage, blocker.error)

    method, logging = choose_method(scenario)
    hwpts = hwpt_dirty_tracking(scenario)
    explain_method(scenario, method, logging, out)
    explain_hwpts(scenario, hwpts, out)
    pinned_scope = type1_pinned_scope(scenario)
    pinned = frozenset(p for d in scenario.devices for p in d.pins)
    if scenario.host.iommu == "type1":
        explain_type1(scenario, method, pinned_scope, out)
    elif pinned:
        out.note("pins have no effect on iommufd dirty tracking (a type1 notion)")
    queries = unmap_queries_dirty(scenario)
    if scenario.vm.viommu:
        explain_unmap(scenario, queries, out)
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
        hwpt_dirty=hwpts,
    )


