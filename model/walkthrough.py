"""A reviewer's walk-through of QEMU's dirty-page tracking documentation, as data.

QEMU's ``docs/devel/migration/vfio.rst`` (read at qemu/qemu 3228d311ab) describes dirty
page tracking for VFIO devices in two sections, "System memory dirty pages tracking" and
"System memory dirty pages tracking when vIOMMU is enabled".  Each :class:`Statement`
below is one statement of those sections, paraphrased (with at most a short phrase of the
document quoted), together with

* the model rules that encode it (real references to functions of this package, so a
  rename breaks loudly instead of leaving a stale pointer);
* the properties that check it and the mutations that show what breaks without it;
* a predicate choosing the scenarios that exercise it (so the report lists the shipped
  specs that check it, whatever they are called);
* where the code of some QEMU version differs from, or adds to, the document, each with
  its source (QEMU file/function and commit; see docs/sources.md#qemu-vfio-rst and #qemu-tracking-decision);
* optionally, how each QEMU profile of :mod:`model.profiles` behaves on the point.

The report (``vfio-migcheck report``) renders this on its index page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model.contract import Mutation, Property
from model.decision.tracking import (
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    NO_DIRTY_TRACKING,
    VIOMMU,
    Method,
    TrackingDecision,
    choose_method,
    container_dirty_tracking_supported,
    device_dirty_tracking_enabled,
    realize_blockers,
    type1_pinned_scope,
    unmap_queries_dirty,
)
from model.migration.actions import ActionBuilder
from model.migration.config import ModelConfig
from model.migration.dirty import Trackers, span
from model.migration.phases import PhasePlan
from model.profiles import PROFILES, MultiDeviceRule, Profile, ViommuRule
from model.scenario import Scenario

DOCUMENT = "docs/devel/migration/vfio.rst"
DOCUMENT_VERSION = "qemu/qemu 3228d311ab"
SECTION_DIRTY = "System memory dirty pages tracking"
SECTION_VIOMMU = "System memory dirty pages tracking when vIOMMU is enabled"


@dataclass(frozen=True)
class Rule:
    """A model rule: a function, method, class or property of ``model/``."""

    target: Any
    what: str

    @property
    def function(self) -> Any:
        return self.target.fget if isinstance(self.target, property) else self.target

    @property
    def file(self) -> str:
        """Repository-relative path of the defining module (``model/decision/tracking.py``)."""
        return self.function.__module__.replace(".", "/") + ".py"

    @property
    def qualname(self) -> str:
        return self.function.__qualname__

    @property
    def display(self) -> str:
        """``Trackers.sync()`` for a function or method, ``PhasePlan`` for a class."""
        return self.qualname if isinstance(self.function, type) else f"{self.qualname}()"


@dataclass(frozen=True)
class Divergence:
    """Where the code differs from the document, or says more than it."""

    versions: str  # e.g. "9.1+", "8.0-10.2", "master"
    text: str
    source: str  # QEMU/kernel file and function, commit


Selector = Callable[[Scenario, TrackingDecision], bool]


@dataclass(frozen=True)
class Statement:
    id: str
    section: str
    says: str  # paraphrase
    phrase: str  # a short phrase of the document, quoted verbatim
    rules: tuple[Rule, ...]
    properties: tuple[str, ...]
    selects: Selector
    selects_what: str  # which scenarios exercise the statement, in words
    mutations: tuple[str, ...] = ()
    divergences: tuple[Divergence, ...] = ()
    per_profile: Callable[[Profile], str] | None = None
    per_profile_what: str = ""


# --- selectors ------------------------------------------------------------------------


def _migrates(s: Scenario, d: TrackingDecision) -> bool:
    return not d.blocked


def _method(*methods: Method) -> Selector:
    return lambda s, d: not d.blocked and d.method in methods


def _blocked_by(*codes: str) -> Selector:
    return lambda s, d: any(c in d.blocked_by for c in codes)


def _with_mutation(*names: str) -> Selector:
    return lambda s, d: any(m in s.mutations for m in names)


def _any(*selectors: Selector) -> Selector:
    return lambda s, d: any(f(s, d) for f in selectors)


def _multi_device(s: Scenario, d: TrackingDecision) -> bool:
    return len(s.devices) > 1 and not d.blocked


def _opt_out(s: Scenario, d: TrackingDecision) -> bool:
    return bool(d.precopy_sync_opt_out)


def _viommu_migrates(s: Scenario, d: TrackingDecision) -> bool:
    return s.vm.viommu and not d.blocked


def _viommu_any(s: Scenario, d: TrackingDecision) -> bool:
    return s.vm.viommu


def _some_device_logs(s: Scenario, d: TrackingDecision) -> bool:
    return any(dev.dma_logging for dev in s.devices)


# --- per-profile behaviour ------------------------------------------------------------


def _profile_device_tracking(p: Profile) -> str:
    base = "every device of the container must DMA-log"
    if p.has_device_dirty_page_tracking_property:
        return base + "; x-device-dirty-page-tracking=off opts a device out"
    return base


def _profile_iommu(p: Profile) -> str:
    if p.iommufd_hw_dirty_tracking:
        return "type1: all mapped (or pinned) pages; iommufd: hardware dirty bits"
    return "type1 only: all mapped (or pinned) pages"


def _profile_no_tracking(p: Profile) -> str:
    if not p.auto_requires_dirty_tracking:
        return "migrates; QEMU marks every page dirty"
    needs = "DMA logging or iommufd dirty tracking" if p.auto_accepts_iommu_dirty_tracking else "DMA logging"
    fallback = (
        "with enable-migration=on: every page dirty at each sync"
        if not p.all_dirty_unreachable
        else "with enable-migration=on: log_sync not run at all (tracking never 'started')"
    )
    return f"auto: blocked without {needs}; {fallback}"


def _profile_opt_out(p: Profile) -> str:
    states = ", ".join(sorted(p.precopy_sync_suppressing_states))
    return f"no log_sync while the device is {states}"


def _profile_unmap(p: Profile) -> str:
    iommufd = (
        "iommufd: NO_CLEAR query before unmap"
        if p.iommufd_unmap_queries_dirty
        else ("iommufd: no query" if p.has_iommufd_backend else "no iommufd backend")
    )
    return f"type1: unmap returns the bitmap; {iommufd}"


def _profile_viommu(p: Profile) -> str:
    return {
        ViommuRule.GLOBAL: "any vIOMMU blocks migration (global blocker)",
        ViommuRule.EVERY_DEVICE: "every VFIO device behind a vIOMMU is blocked",
        ViommuRule.DEVICE_TRACKING_ONLY: "only devices that would use DMA logging are blocked",
    }[p.viommu_rule]


def _profile_multi(p: Profile) -> str:
    if p.multi_device_rule is MultiDeviceRule.ALL_P2P:
        return "several devices allowed if all have P2P"
    return "at most one migratable device"


# --- the statements ---------------------------------------------------------------------

STATEMENTS: tuple[Statement, ...] = (
    Statement(
        id="log-global",
        section=SECTION_DIRTY,
        says="Memory-listener callbacks log_global_start and log_global_stop tell VFIO's "
        "dirty tracking to start and to stop.",
        phrase="start and stop dirty page tracking",
        rules=(
            Rule(ActionBuilder._start, "MigrateStart: every page dirty, then log_global_start"),
            Rule(
                Trackers.log_start,
                "what starting means per method (DMA logging START, type1 START, iommufd SET_DIRTY_TRACKING)",
            ),
            Rule(Trackers.log_stop, "LogGlobalStop, on completion and on failure/cancel"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.SOURCE_RECOVERS),
        selects=_migrates,
        selects_what="every scenario that is not blocked",
        mutations=(Mutation.RETRY_KEEPS_CLEARED_BITS,),
        divergences=(
            Divergence(
                "8.0+",
                "A failure to start (or stop, or sync) tracking fails the migration instead "
                "of only printing an error.",
                "hw/vfio/common.c vfio_listener_log_global_start(), 236e0a45f5 (8.0)",
            ),
            Divergence(
                "10.0+",
                "Whether log_sync and unmap queries run is decided by internal 'tracking "
                "started' flags, not by the migration status.",
                "vfio_container_dirty_tracking_is_started(), d77e85dbd7 / 0ae05e087f (10.0)",
            ),
        ),
    ),
    Statement(
        id="log-sync",
        section=SECTION_DIRTY,
        says="The log_sync callback fetches the dirty bitmap and marks the guest pages "
        "the device wrote by DMA as dirty.",
        phrase="marks system memory pages which were DMA-ed",
        rules=(
            Rule(Trackers.sync, "migration_bitmap_sync: KVM's log, then VFIO's report"),
            Rule(Trackers.vfio_report, "what VFIO reports, per method"),
            Rule(Trackers.sync_needed, "vfio_log_sync_needed(): when VFIO's part runs"),
        ),
        properties=(Property.DIRTY_TRACKING_SOUND, Property.NO_PAGE_LOST),
        selects=_migrates,
        selects_what="every scenario that is not blocked",
        divergences=(
            Divergence(
                "all",
                "Only DMA logging and iommufd report the pages actually written. type1 "
                "reports every mapped page (or, when every group pins, the pinned pages), "
                "written or not, and the no-method fallback marks every page.",
                "kernel vfio_iommu_type1.c update_user_bitmap(); QEMU vfio_container_query_dirty_bitmap()",
            ),
            Divergence(
                "8.0+",
                "A failed query fails the migration (the stream error is set) rather than "
                "continuing with a bitmap that may miss pages.",
                "vfio_listener_log_sync() -> migration_file_set_error(), 236e0a45f5",
            ),
        ),
    ),
    Statement(
        id="per-container",
        section=SECTION_DIRTY,
        says="The dirty bitmap is fetched per container.",
        phrase="queried per container",
        rules=(
            Rule(choose_method, "one method for the whole container"),
            Rule(Trackers.vfio_report, "device reports OR'ed into one container bitmap"),
        ),
        properties=(Property.NO_PAGE_LOST,),
        selects=_multi_device,
        selects_what="scenarios with several devices that migrate",
        mutations=(Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER,),
        divergences=(
            Divergence(
                "all",
                "With device tracking the container's query is one DMA_LOGGING_REPORT per "
                "device, merged into one bitmap; the model puts every device in one "
                "container.",
                "vfio_container_devices_query_dirty_bitmap() (master hw/vfio/container.c)",
            ),
        ),
    ),
    Statement(
        id="device-tracking",
        section=SECTION_DIRTY,
        says="Method 1, device dirty tracking: the device logs and reports its own DMA "
        "writes; usable only if the device can track them.",
        phrase="the device is responsible to log and report its DMAs",
        rules=(
            Rule(device_dirty_tracking_enabled, "a device's DMA logging is usable"),
            Rule(choose_method, "DMA logging only if every device of the container has it"),
            Rule(Trackers.dma_write, "a DMA write sets the device's log bit"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND),
        selects=_any(_method(Method.DEVICE_DMA_LOGGING), _some_device_logs),
        selects_what="scenarios where some device supports DMA logging",
        mutations=(Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER,),
        divergences=(
            Divergence(
                "8.0+",
                "The container uses device tracking only when every one of its devices "
                "supports it; one device without it moves the whole container to IOMMU "
                "tracking (the others' logs are not asked).",
                "vfio_container_devices_dirty_tracking_is_supported() "
                "(8.0 vfio_devices_all_device_dirty_tracking, 5255bbf4ec)",
            ),
            Divergence(
                "9.1+",
                "The undocumented property x-device-dirty-page-tracking=off disables it per device.",
                "-device vfio-pci,x-device-dirty-page-tracking, 30b9167785 (9.1)",
            ),
        ),
        per_profile=_profile_device_tracking,
        per_profile_what="when the container uses device DMA logging",
    ),
    Statement(
        id="dma-logging-uapi",
        section=SECTION_DIRTY,
        says="Discovering, starting, stopping and reading the device's log use the DMA logging uAPI.",
        phrase="done using the DMA logging uAPI",
        rules=(
            Rule(Trackers.log_start, "DMA_LOGGING_START: fresh log over the ranges mapped now"),
            Rule(span, "START's ranges, fixed when logging starts"),
            Rule(Trackers.sync, "DMA_LOGGING_REPORT reads and clears the mapped IOVAs"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND),
        selects=_method(Method.DEVICE_DMA_LOGGING),
        selects_what="scenarios that migrate with device DMA logging",
        divergences=(
            Divergence(
                "8.0+",
                "QEMU computes START's IOVA ranges once, from the container's mappings at "
                "that moment (at most three ranges); later mappings are not logged.",
                "vfio_dirty_tracking_init() (hw/vfio/listener.c in master)",
            ),
        ),
    ),
    Statement(
        id="iommu-module",
        section=SECTION_DIRTY,
        says="Method 2, the VFIO IOMMU module: the IOMMU has no dirty tracking, so every "
        "page stays dirty, or only the pinned pages if the driver pins.",
        phrase="there is currently no IOMMU support for dirty page tracking",
        rules=(
            Rule(type1_pinned_scope, "type1 reports only pinned pages iff every group pins"),
            Rule(TrackingDecision.type1_reported_pages, "what one type1 query reports"),
            Rule(container_dirty_tracking_supported, "type1 always; iommufd with dirty-capable hwpt"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND),
        selects=_method(Method.TYPE1, Method.IOMMUFD_HW),
        selects_what="scenarios that migrate with type1 or iommufd tracking",
        mutations=(Mutation.TYPE1_IGNORES_UNPINNED_GROUPS,),
        divergences=(
            Divergence(
                "9.1+",
                "Dated for iommufd: QEMU uses the IOMMU's hardware dirty bits "
                "(IOMMU_HWPT_GET_DIRTY_BITMAP, Linux 6.7) when the host IOMMU has them; the "
                "statement holds for the type1 backend only.",
                "hw/vfio/iommufd.c, dddfd8d667 / 52ce88229c / 7c30710bd9 (9.1)",
            ),
            Divergence(
                "all",
                "type1's pinned scope needs every IOMMU-backed group to pin; one group that "
                "never pins makes every mapped page dirty again.",
                "kernel vfio_iommu_type1.c num_non_pinned_groups, update_user_bitmap()",
            ),
        ),
        per_profile=_profile_iommu,
        per_profile_what="what container (IOMMU) tracking reports",
    ),
    Statement(
        id="no-method",
        section=SECTION_DIRTY,
        says="With neither method, QEMU itself marks every page dirty, permanently.",
        phrase="all pages are perpetually marked dirty by QEMU",
        rules=(
            Rule(choose_method, "Method.ALL_DIRTY when no container tracking exists"),
            Rule(ModelConfig.all_dirty_reports, "whether the fallback still marks pages"),
            Rule(realize_blockers, "the no-dirty-tracking blocker under enable-migration=auto"),
        ),
        properties=(Property.NO_PAGE_LOST,),
        selects=_any(_method(Method.ALL_DIRTY), _blocked_by(NO_DIRTY_TRACKING)),
        selects_what="scenarios without a usable method (migrating or blocked)",
        divergences=(
            Divergence(
                "8.1+",
                "Under the default enable-migration=auto such a device is not migrated at "
                "all: QEMU installs a blocker; only enable-migration=on migrates it.",
                "vfio_migration_realize(), 8bbcb64a71 (8.1); IOMMU tracking accepted, f48b472450 (9.1)",
            ),
            Divergence(
                "10.0+",
                "The all-dirty branch is no longer reached: log_sync runs only once tracking "
                "'started', which a container without dirty support never sets, so such a "
                "device's writes are reported by nobody (the model's reading of the code).",
                "vfio_container_dirty_tracking_is_started(), 0ae05e087f (10.0); "
                "model/migration/config.py ModelConfig.all_dirty_reports",
            ),
            Divergence(
                "all",
                "With the type1 backend the container always has 'support', so the fallback "
                "is type1's all-mapped-pages report rather than QEMU's.",
                "vfio_get_iommu_info_migration() (type1 capability)",
            ),
        ),
        per_profile=_profile_no_tracking,
        per_profile_what="a device with no usable dirty tracking",
    ),
    Statement(
        id="both-phases",
        section=SECTION_DIRTY,
        says="By default pages are tracked during pre-copy and during stop-and-copy, so a "
        "dirty page may be copied in both phases.",
        phrase="tracked during pre-copy as well as stop-and-copy phase",
        rules=(
            Rule(ActionBuilder._ram, "LogSync in pre-copy rounds, FinalSync after devices stop"),
            Rule(PhasePlan, "the final sync comes after the VM-stop callbacks"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND),
        selects=_any(_migrates, _with_mutation(Mutation.NO_FINAL_SYNC, Mutation.SYNC_BEFORE_DEVICES_STOP)),
        selects_what="every scenario that is not blocked",
        mutations=(Mutation.NO_FINAL_SYNC, Mutation.SYNC_BEFORE_DEVICES_STOP),
        divergences=(
            Divergence(
                "all",
                "The stop-and-copy sync is RAM's last-stage bitmap sync in ram_save_complete, "
                "after the VM-state handlers stopped the devices; a sync before that point "
                "would miss DMA still in flight.",
                "migration/ram.c ram_save_complete() -> migration_bitmap_sync_precopy(true)",
            ),
        ),
    ),
    Statement(
        id="pre-copy-opt-out",
        section=SECTION_DIRTY,
        says="A per-device option turns off dirty-bitmap queries during pre-copy; all dirty "
        "pages are then copied in stop-and-copy.",
        phrase="per device opt-out option",
        rules=(Rule(Trackers.sync_needed, "an opted-out device suppresses the container's log_sync"),),
        properties=(Property.NO_PAGE_LOST,),
        selects=_opt_out,
        selects_what="scenarios with x-pre-copy-dirty-page-tracking=off",
        divergences=(
            Divergence(
                "5.2+",
                "The property is x-pre-copy-dirty-page-tracking (the document drops 'x-'); it "
                "suppresses the log_sync of the whole container while such a device runs or "
                "pre-copies, not only that device's query.",
                "vfio_log_sync_needed() (vfio_devices_all_dirty_tracking() before 10.0), bb0990d174",
            ),
        ),
        per_profile=_profile_opt_out,
        per_profile_what="while a device opted out",
    ),
    Statement(
        id="viommu-unmap",
        section=SECTION_VIOMMU,
        says="With a vIOMMU an IOVA range may be unmapped during pre-copy; the unmap "
        "returns the range's dirty pages and QEMU marks the guest pages dirty.",
        phrase="the unmap ioctl returns any dirty pages in that range",
        rules=(
            Rule(unmap_queries_dirty, "whether an unmap fetches dirty bits, per backend/profile"),
            Rule(Trackers.unmap, "fetch (or not) the range's bits, then drop the mapping"),
            Rule(ActionBuilder._viommu, "IommuMap / IommuUnmap guest actions"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND),
        selects=_viommu_migrates,
        selects_what="scenarios with a vIOMMU that migrate",
        mutations=(Mutation.NO_UNMAP_DIRTY_QUERY,),
        divergences=(
            Divergence(
                "all",
                "True of type1 (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP). With device logging or "
                "no method QEMU unmaps first and then queries (or marks dirty) the translated "
                "range.",
                "vfio_legacy_dma_unmap_one() (master); unmap with bitmap since 9e7b0442f2 / 9a04fe0957",
            ),
            Divergence(
                "9.1-10.2 / master",
                "iommufd did not query before unmapping until master, which reads the bits "
                "with GET_DIRTY_BITMAP_NO_CLEAR first (hidden in releases by the vIOMMU "
                "blocker).",
                "hw/vfio/iommufd.c iommufd_cdev_unmap(), 31ec4aadd0 / f051dbeb91 / e98a1c7049",
            ),
        ),
        per_profile=_profile_unmap,
        per_profile_what="a vIOMMU unmap while tracking",
    ),
    Statement(
        id="viommu-replay",
        section=SECTION_VIOMMU,
        says="During stop-and-copy an IOMMU notifier replays the mapped ranges and the "
        "dirty bitmap is fetched for them.",
        phrase="an IOMMU notifier is used to get a callback for mapped pages",
        rules=(
            Rule(Trackers.translate, "reports go through the mappings of the moment"),
            Rule(Trackers.vfio_report, "only currently mapped IOVAs are queried"),
        ),
        properties=(Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND),
        selects=_viommu_migrates,
        selects_what="scenarios with a vIOMMU that migrate",
        divergences=(
            Divergence(
                "all",
                "The replay runs at every log_sync of an IOMMU section, pre-copy included, not "
                "only in stop-and-copy.",
                "vfio_sync_iommu_dirty_bitmap() / vfio_iommu_map_dirty_notify()",
            ),
        ),
    ),
    Statement(
        id="viommu-blocker",
        section=SECTION_VIOMMU,
        says="Device dirty tracking together with a vIOMMU blocks live migration.",
        phrase="live migration will be blocked",
        rules=(Rule(realize_blockers, "the vIOMMU blocker, per profile"),),
        properties=(Property.NO_DEVICE_TRACKING_WITH_VIOMMU, Property.NO_PAGE_LOST),
        selects=_any(_viommu_any, _blocked_by(VIOMMU), _with_mutation(Mutation.ALLOW_VIOMMU_DEVICE_TRACKING)),
        selects_what="scenarios with a vIOMMU (blocked or not)",
        mutations=(Mutation.ALLOW_VIOMMU_DEVICE_TRACKING,),
        divergences=(
            Divergence(
                "8.0",
                "Any vIOMMU blocked migration of every VFIO device (one global blocker).",
                "hw/vfio/common.c vfio_block_giommu_migration(), e46883204c",
            ),
            Divergence(
                "8.1-10.2",
                "Every VFIO device behind a vIOMMU is blocked, whatever its tracking method; "
                "the sentence describes master only.",
                "vfio_migration_realize() vfio_viommu_preset(), 3c26c80a0a (8.1)",
            ),
            Divergence(
                "master",
                "Only devices that would use device dirty tracking are blocked, matching the document.",
                "vfio_migration_realize(), 0e3c1e2b2b",
            ),
        ),
        per_profile=_profile_viommu,
        per_profile_what="a VFIO device behind a vIOMMU",
    ),
)

# Statements outside the two tracking sections that the checked properties also cover.
EXTRA_STATEMENTS: tuple[Statement, ...] = (
    Statement(
        id="p2p-multi-device",
        section="VFIO device migration (introduction)",
        says="Several devices migrate only if all support P2P; all P2P devices are quiesced "
        "before any is stopped.",
        phrase="first transitioned to the P2P quiescent state",
        rules=(
            Rule(PhasePlan, "VM_STOP_PREPARE (P2P quiescing) before VM_STOP"),
            Rule(realize_blockers, "the multiple-devices blocker"),
        ),
        properties=(Property.P2P_QUIESCED_BEFORE_STOP, Property.LEGAL_DEVICE_ARCS),
        selects=_any(_multi_device, _blocked_by(MULTIPLE_DEVICES, MULTIPLE_DEVICES_WITHOUT_P2P)),
        selects_what="scenarios with several devices",
        mutations=(Mutation.SKIP_P2P_PREPARE,),
        divergences=(
            Divergence(
                "8.0-8.1",
                "At most one migratable VFIO device; the P2P prepare callbacks arrived in 8.2.",
                "vfio_block_multiple_devices_migration() 29d81b71aa; 94f775e428 / 5c7a4b6035 (8.2)",
            ),
        ),
        per_profile=_profile_multi,
        per_profile_what="several VFIO devices",
    ),
)


def all_statements() -> tuple[Statement, ...]:
    return STATEMENTS + EXTRA_STATEMENTS


def profiles() -> tuple[Profile, ...]:
    """The QEMU profiles in release order (for per-profile rows)."""
    return tuple(PROFILES.values())
