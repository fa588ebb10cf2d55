"""The contract names of the migration model: its properties and its mutations.

Spec files (``[check].invariants``, ``[check].expect``, ``[mutations]``), the JSON output
and users' scripts rely on these names (docs/design.md#properties and #mutations mark them as contract), so
they are defined here once.  Code names them through the enums, never as string
literals: a mistyped member is an ``AttributeError`` when the module is imported, not a
rule that silently never fires.  Both enums are ``StrEnum``, so a member *is* its
spec-file name (it compares, hashes, formats and serialises as that string).

Also here: QEMU's dirty-tracking methods and the migration blockers' reason codes, as the
JSON output and ``[check].tracking_method`` / ``[check].blocked_by`` name them
(docs/design.md#json), and the page size, the one unit the spec files (``[vm].ram``), QEMU's decision (the
type1 bitmap limit) and the concrete executor must agree on.
"""

from __future__ import annotations

from enum import StrEnum

#: Host and guest base page (x86: 4 KiB); also the page_size QEMU asks DMA logging for.
PAGE_SIZE = 4096


class PropertyKind(StrEnum):
    """How the checker reads a property."""

    INVARIANT = "invariant"  # a predicate on every reachable state
    ACTION_INVARIANT = "action-invariant"  # a predicate on every transition
    LIVENESS = "liveness"  # every behaviour (under its fairness) eventually ...
    WITNESS = "witness"  # some reachable state shows it (no vacuous pass)

    @property
    def is_safety(self) -> bool:
        """A state or transition predicate (what induction can prove)."""
        return self in (PropertyKind.INVARIANT, PropertyKind.ACTION_INVARIANT)


class Property(StrEnum):
    """The properties a migration spec may check, in the order the contract lists them."""

    kind: PropertyKind

    def __new__(cls, name: str, kind: PropertyKind) -> Property:
        member = str.__new__(cls, name)
        member._value_ = name
        member.kind = kind
        return member

    TYPE_OK = ("TypeOK", PropertyKind.INVARIANT)
    NO_PAGE_LOST = ("NoPageLost", PropertyKind.INVARIANT)
    DIRTY_TRACKING_SOUND = ("DirtyTrackingSound", PropertyKind.INVARIANT)
    NO_DEVICE_TRACKING_WITH_VIOMMU = ("NoDeviceTrackingWithViommu", PropertyKind.INVARIANT)
    LEGAL_DEVICE_ARCS = ("LegalDeviceArcs", PropertyKind.ACTION_INVARIANT)
    P2P_QUIESCED_BEFORE_STOP = ("P2PQuiescedBeforeStop", PropertyKind.INVARIANT)
    SOURCE_RECOVERS = ("SourceRecovers", PropertyKind.INVARIANT)
    DESTINATION_STARTS_LOADED = ("DestinationStartsLoaded", PropertyKind.INVARIANT)
    NO_SPLIT_BRAIN = ("NoSplitBrain", PropertyKind.INVARIANT)
    VCPUS_STOPPED_FOR_STOP_COPY = ("VcpusStoppedForStopCopy", PropertyKind.INVARIANT)
    CONFIG_LOAD_AFTER_INTERRUPT_CONTROLLER = ("ConfigLoadAfterInterruptController",
                                              PropertyKind.INVARIANT)
    MIGRATION_ENDS = ("MigrationEnds", PropertyKind.LIVENESS)
    MIGRATION_CAN_COMPLETE = ("MigrationCanComplete", PropertyKind.WITNESS)

    @property
    def is_safety(self) -> bool:
        """A state or transition predicate (what induction can prove)."""
        return self.kind.is_safety


#: Every property name, in contract order.
PROPERTY_NAMES: tuple[str, ...] = tuple(p.value for p in Property)
#: Property name -> kind ("invariant", "action-invariant", "liveness", "witness").
PROPERTY_KINDS: dict[str, PropertyKind] = {p.value: p.kind for p in Property}
#: The state invariants, in contract order.
INVARIANTS: tuple[Property, ...] = tuple(p for p in Property
                                         if p.kind is PropertyKind.INVARIANT)


class Mutation(StrEnum):
    """A deliberate, known kind of bug a spec may switch on (``[mutations]``), to show why
    a rule exists and that the checker catches its absence.  ``violates``: the property a
    shipped spec shows it breaking (``specs/mutation-*.toml``)."""

    description: str
    violates: Property

    def __new__(cls, name: str, description: str, violates: Property) -> Mutation:
        member = str.__new__(cls, name)
        member._value_ = name
        member.description = description
        member.violates = violates
        return member

    NO_FINAL_SYNC = ("no_final_sync", "skip the dirty sync after devices stop",
                     Property.NO_PAGE_LOST)
    SYNC_BEFORE_DEVICES_STOP = ("sync_before_devices_stop",
                                "do the final sync while devices can still DMA",
                                Property.NO_PAGE_LOST)
    ALLOW_VIOMMU_DEVICE_TRACKING = (
        "allow_viommu_device_tracking",
        "drop the vIOMMU blocker for devices using device dirty tracking",
        Property.NO_PAGE_LOST)
    NO_UNMAP_DIRTY_QUERY = ("no_unmap_dirty_query",
                            "a vIOMMU unmap does not fetch dirty bits first",
                            Property.NO_PAGE_LOST)
    TYPE1_IGNORES_UNPINNED_GROUPS = (
        "type1_ignores_unpinned_groups",
        "type1 reports only pinned pages although a group does not pin",
        Property.NO_PAGE_LOST)
    DEVICE_LOGGING_FOR_MIXED_CONTAINER = (
        "device_logging_for_mixed_container",
        "use DMA logging although a device in the container lacks it",
        Property.NO_PAGE_LOST)
    SKIP_P2P_PREPARE = ("skip_p2p_prepare",
                        "stop devices without first quiescing P2P on all of them",
                        Property.P2P_QUIESCED_BEFORE_STOP)
    RETRY_KEEPS_CLEARED_BITS = (
        "retry_keeps_cleared_bits",
        "a new attempt after a failed one does not mark all pages dirty again",
        Property.NO_PAGE_LOST)
    NO_RECOVERY_ON_CANCEL = ("no_recovery_on_cancel", "cancel leaves devices where they are",
                             Property.SOURCE_RECOVERS)
    VCPUS_RUN_IN_STOP_COPY = ("vcpus_run_in_stop_copy",
                              "the switchover does not pause the vCPUs: the guest writes during "
                              "stop-and-copy", Property.VCPUS_STOPPED_FOR_STOP_COPY)
    NO_WAIT_FOR_LOAD_THREADS = (
        "no_wait_for_load_threads",
        "the destination starts the VM without waiting for the multifd load threads",
        Property.DESTINATION_STARTS_LOADED)
    IGNORE_LOG_START_FAILURE = (
        "ignore_log_start_failure",
        "a failed DMA_LOGGING_START (or IOMMU_HWPT_SET_DIRTY_TRACKING) is rolled back but not "
        "reported: the migration goes on with nothing tracking device writes",
        Property.NO_PAGE_LOST)


#: Every mutation name (the keys ``[mutations]`` accepts), in contract order.
MUTATION_NAMES: tuple[str, ...] = tuple(m.value for m in Mutation)
#: Name -> mutation, for looking up a spec-file key.
MUTATIONS: dict[str, Mutation] = {m.value: m for m in Mutation}


class Method(StrEnum):
    """How the container's dirty pages reach QEMU's migration bitmap at log_sync."""

    # VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT on every device: the IOVAs each device wrote
    # since the last report, read and cleared.
    DEVICE_DMA_LOGGING = "device-dma-logging"
    # VFIO_IOMMU_DIRTY_PAGES GET_BITMAP: every mapped page dirty unless every IOMMU-backed
    # group pins, then only the pinned pages (which stay dirty forever).
    TYPE1 = "type1"
    # IOMMU_HWPT_GET_DIRTY_BITMAP: the pages the IOMMU saw written, cleared on read.
    IOMMUFD_HW = "iommufd-hw"
    # No usable method: QEMU marks every page of the section dirty at every sync.
    ALL_DIRTY = "all-dirty"


# Reason codes (stable: they appear in the JSON "blocked_by" list).
MIGRATION_DISABLED = "migration-disabled"
NO_DIRTY_TRACKING = "no-dirty-tracking"
MULTIPLE_DEVICES = "multiple-devices"
MULTIPLE_DEVICES_WITHOUT_P2P = "multiple-devices-without-p2p"
VIOMMU = "viommu"
TYPE1_LARGE_RAM = "type1-large-ram"
POSTCOPY = "postcopy"
BACKGROUND_SNAPSHOT = "background-snapshot"
BLOCKER_CODES: tuple[str, ...] = (
    MIGRATION_DISABLED,
    NO_DIRTY_TRACKING,
    MULTIPLE_DEVICES,
    MULTIPLE_DEVICES_WITHOUT_P2P,
    VIOMMU,
    TYPE1_LARGE_RAM,
    POSTCOPY,
    BACKGROUND_SNAPSHOT,
)
