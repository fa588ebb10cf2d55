"""The VFIO live-migration protocol as a spec for the checker (docs/design.md#migration-model).

:func:`build_spec` turns a validated :class:`~model.scenario.Scenario` into a
:class:`~checker.lang.spec.Spec`: a transition system over the source host (QEMU and the
kernel's device FSM), the destination host, the guest and its VFIO devices.

* Variables (:func:`declare_layout`) are named as QEMU and the kernel name them: the
  migration ``status``, each VM's run state, the pre-copy ``round``, per source device the
  kernel's ``kstate``, QEMU's cached ``qstate`` (``VFIOMigration.device_state``), QEMU's
  ``data_fd``; per destination device the same plus ``dst_loaded``/``dst_valid``; per
  guest page the bit sets of :mod:`model.migration.dirty`.
* Actions (:mod:`model.migration.actions`) follow QEMU's flow (docs/sources.md#qemu-save-path,
  #qemu-failure-path, #qemu-load-path; QEMU master hw/vfio/migration.c, migration/migration.c,
  migration/ram.c) and move every device through the kernel's step function for its
  features (:mod:`model.fsm.kernel`),
  one arc per transition, so a patched ``vfio_mig_get_next_state()`` changes the model.
* Which tracking method QEMU uses, and what blocks migration, is decided by
  :func:`model.decision.tracking.decide`; the model only executes that decision.
* Properties (:mod:`model.protocol.props`, shared by every VMM) carry the contract names.

Mutations (``[mutations]`` in a spec) are deliberate bugs: ``no_final_sync``,
``sync_before_devices_stop``, ``skip_p2p_prepare``, ``retry_keeps_cleared_bits``,
``no_recovery_on_cancel`` and ``ignore_log_start_failure`` change QEMU's flow here;
``allow_viommu_device_tracking``,
``no_unmap_dirty_query``, ``type1_ignores_unpinned_groups`` and
``device_logging_for_mixed_container`` change QEMU's decision in :mod:`model.decision.tracking`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from checker.lang.layout import Layout, View
from checker.lang.ops import Term, lookup, where
from checker.lang.spec import Spec, Symmetry
from model.decision.tracking import TrackingDecision, decide
from model.fsm.kernel.builtin import default_kernel
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import STATE_NAMES, DeviceState
from model.migration import config_load, switchover
from model.migration.actions import ActionBuilder, Parts
from model.migration.config import PER_DEVICE, ModelConfig, make_config
from model.migration.dirty import Trackers
from model.migration.multifd import declare_threads
from model.migration.phases import (
    DST_RUN_NAMES,
    KIND,
    PHASE_NAMES,
    REQ_NAMES,
    SRC_RUN_NAMES,
    STATUS_NAMES,
    Control,
    Kind,
    PhasePlan,
    Req,
)
from model.migration.user_pause import USER_PAUSE_NAMES
from model.migration.view import QemuView
from model.protocol import props
from model.protocol.pages import declare_pages, iova_names, page_names
from model.scenario import Scenario

S = DeviceState


def declare_layout(cfg: ModelConfig) -> Layout:
    """The model's variables; only those the scenario needs (no constant fields)."""
    D, P = cfg.devices, cfg.pages
    pages = page_names(P)
    lay = Layout()
    lay.var("status", values=STATUS_NAMES, doc="QEMU MigrationStatus on the source")
    lay.flag("refused", doc="the migrate command was refused by a migration blocker")
    lay.var("src_run", values=SRC_RUN_NAMES, doc="source VM RunState")
    lay.var("dst_run", values=DST_RUN_NAMES, doc="destination VM")
    lay.var("pc", values=PHASE_NAMES, doc="the QEMU hook being run")
    lay.var("cursor", cfg.cursor_bits, doc="device the hook works on")
    lay.var("req", values=REQ_NAMES, doc="stage of the SET ioctl in flight")
    lay.flag("mig_error", doc="migration_file_set_error() was called")
    lay.var("round", max(1, cfg.rounds.bit_length()), doc="pre-copy log_syncs done")
    lay.var("attempt", max(1, (cfg.attempts - 1).bit_length()), doc="migration attempt")
    if cfg.user_pause:
        lay.var("upause", values=USER_PAUSE_NAMES, doc="the user's stop / cont during pre-copy")
    if cfg.scenario.migration.device_faults:
        lay.flag("fault_used", doc="the (single) injected device fault has happened")
    lay.flag("dirty_log", doc="global dirty logging started (log_global_start)")
    lay.var("kstate", values=STATE_NAMES, count=D, array=True, doc="source device: kernel state")
    lay.var("qstate", values=STATE_NAMES, count=D, array=True, doc="source device: QEMU's cached state")
    lay.flag("data_fd", count=D, array=True, doc="source device: QEMU holds a data_fd")
    if cfg.p2p_actions:
        lay.flag("p2p_hit", count=D, array=True, doc="a P2P write reached the device after it stopped")
    lay.var("dst_kstate", values=STATE_NAMES, count=D, array=True, doc="destination device: kernel")
    lay.var("dst_qstate", values=STATE_NAMES, count=D, array=True, doc="destination device: QEMU cache")
    lay.flag("dst_fd", count=D, array=True, doc="destination device: QEMU holds a data_fd")
    lay.flag("dst_loaded", count=D, array=True, doc="destination device: its state was written")
    lay.flag("dst_valid", count=D, array=True, doc="destination device: RESUMING -> STOP validated it")
    declare_threads(lay, cfg)
    config_load.declare(lay, cfg)
    declare_pages(lay, P, bitmap="QEMU's migration bitmap")
    iovas = iova_names(P)
    if cfg.log_start_can_fail:
        lay.flag("dma_logging", doc="the devices log DMA (DMA_LOGGING_START took effect)")
    if cfg.hwpt_flag:
        lay.flag("hwpt_tracking", doc="the dirty-capable hwpt tracks (SET_DIRTY_TRACKING took effect)")
    if cfg.uses_device_logging:
        lay.var("dma_log", flags=iovas, count=D, array=True, doc="device DMA log, by IOVA")
        if cfg.viommu:
            lay.var("log_range", flags=iovas, count=D, array=True, doc="IOVAs given at DMA_LOGGING_START")
    if cfg.uses_iommu_dirty:
        lay.var("iommu_dirty", flags=iovas if cfg.viommu else pages, count=cfg.spaces, array=True,
                doc="iommufd hwpt dirty bits")
    if cfg.viommu:
        lay.var("iova_map", values=("unmapped", *pages), count=D * P, array=True,
                doc="vIOMMU mapping of device d's IOVA i, at index d*pages+i")
    switchover.declare(lay, cfg)
    return lay


def declare_request_goal(lay: Layout, parts: Parts) -> None:
    """Show with ``req`` the state the SET in flight walks to (``req_to``): the target of
    the hook (or its recover state, after a failure) for the device at the cursor on the
    hook's side, RUNNING for a VFIO_DEVICE_RESET, ``-`` when no request is in flight.  It is
    a function of ``pc``, ``cursor``, ``req`` and QEMU's cached state (the request tables of
    :class:`~model.migration.phases.PhasePlan`), so traces show it without the model storing it."""
    cfg, ctl = parts.cfg, parts.ctl

    def goal(s: View) -> Term:
        dst = lookup(KIND, s.pc) == Kind.DST_DEV
        out = where(s.req == Req.RESET, int(S.RUNNING) + 1, 0)
        walking = (s.req == Req.TARGET) | (s.req == Req.RECOVER)
        for d in range(cfg.devices):
            to = where(dst, ctl.goal(s, d, "dst"), ctl.goal(s, d, "src"))
            out = where(walking & (s.cursor == d), to + 1, out)  # no target (-1) shows as "-"
        return out

    lay.derive("req_to", goal, values=("-", *STATE_NAMES), after="req",
               doc="the device state the SET in flight walks to")


# What a device hook reads to decide what it does with a device: its states and file
# descriptors.  The rest of a device's part of a state is what it recorded (DMA logs, P2P
# hits, IOMMU dirty bits, IOVA mappings), read by actions over all devices at once.
DEVICE_CONTROL = frozenset({"kstate", "qstate", "data_fd", "dst_kstate", "dst_qstate", "dst_fd",
                            "dst_loaded", "dst_valid", "save_thread", "load_thread"})


def device_symmetry(cfg: ModelConfig, lay: Layout) -> Symmetry | None:
    """Which devices are interchangeable (for ``check --symmetry``), and where each device's
    part of a state lives.

    Devices are interchangeable when everything the model knows of them is the same but the
    name: their scenario entry, migration flags, the IOVAs they write, whether QEMU asks
    them for DMA logs, their pre-copy opt-out and P2P.  A device's part of a state is its
    element of every per-device variable (and, behind a vIOMMU, its IOMMU dirty bits and its
    block of IOVA mappings).

    QEMU runs a device hook on the devices in index order (``cursor``), so the devices are
    interchangeable only while no device hook is under way: in single-unit phases, with no
    SET in flight.  Swapping two devices between hooks changes which of them the next hook
    reaches first; the phases' abstraction (:mod:`model.migration.phases`, "QEMU as one
    sequential program") already relies on the order among devices within a hook not
    mattering to the properties, which is what makes the swap sound.
    """
    def signature(d: int) -> tuple[object, ...]:
        dev = dataclasses.replace(cfg.scenario.devices[d], name="")
        return (dev, cfg.flags[d], cfg.dma_iovas[d], cfg.logs[d], cfg.precopy_opt_out[d], cfg.p2p_dma[d])

    groups: dict[tuple[object, ...], list[int]] = {}
    for d in range(cfg.devices):
        groups.setdefault(signature(d), []).append(d)
    names = {f.name for f in lay.fields}
    elements = [n for n in sorted(PER_DEVICE) if n in names]
    if cfg.uses_iommu_dirty and cfg.spaces == cfg.devices:
        elements.append("iommu_dirty")

    def between_hooks(s: View) -> Term:
        return (lookup(KIND, s.pc) == Kind.SINGLE) & (s.req == Req.IDLE)

    return Symmetry(
        groups=tuple(tuple(g) for g in groups.values()),
        elements=tuple(elements),
        fixed=tuple(n for n in elements if n in DEVICE_CONTROL),
        blocks={"iova_map": cfg.pages} if "iova_map" in names else {},
        when=between_hooks,
    )


def initial_state(cfg: ModelConfig) -> dict[str, Any]:
    D, P = cfg.devices, cfg.pages
    init: dict[str, Any] = {
        "status": "none",
        "src_run": "running",
        "dst_run": "inmigrate",
        "pc": "idle",
        "req": "idle",
        "kstate": ["RUNNING"] * D,  # vfio_migration_init: QEMU caches RUNNING
        "qstate": ["RUNNING"] * D,
        "dst_kstate": ["RUNNING"] * D,
        "dst_qstate": ["RUNNING"] * D,
        "stale": cfg.all_pages,  # the destination holds nothing yet
    }
    if cfg.paused:
        # A user's stop before the migration: vfio_vmstate_change(running=false, PAUSED)
        # with QEMU caching RUNNING asks for STOP (no pre-copy session to keep).
        init["src_run"] = "paused"
        init["kstate"] = init["qstate"] = ["STOP"] * D
    if cfg.viommu:
        # The guest starts with each IOVA a device uses mapped to the page of the same
        # number; it may unmap and remap them at will.
        m = [0] * (D * P)
        for d in range(D):
            for i in cfg.dma_iovas[d]:
                m[d * P + i] = i + 1
        init["iova_map"] = m
    # A variable with one element is a plain field: give it a scalar.
    for name, value in list(init.items()):
        if isinstance(value, list) and len(value) == 1:
            init[name] = value[0]
    return init


def applicable(cfg: ModelConfig) -> tuple[str, ...]:
    """The properties that mean something for this scenario ("all that apply")."""
    return props.applicable(QemuView(cfg, Trackers(cfg)))


def build_spec(
    scenario: Scenario,
    *,
    decision: TrackingDecision | None = None,
    kernel: KernelStepFunction | None = None,
) -> Spec:
    """The migration protocol of ``scenario`` as a checkable :class:`Spec`.

    ``decision`` is QEMU's dirty-tracking decision for ``scenario``; a front end that shows
    it (the tracking method, the blockers) passes the one it computed, so the spec executes
    exactly what is shown.  Left out, it is computed here.
    """
    decision = decision if decision is not None else decide(scenario)
    kernel = kernel if kernel is not None else default_kernel()
    cfg = make_config(scenario, decision, kernel)
    plan = PhasePlan(cfg)
    parts = Parts(cfg, plan, Control(cfg, plan), Trackers(cfg))
    layout = declare_layout(cfg)
    declare_request_goal(layout, parts)
    actions = ActionBuilder(parts).build()

    # The properties are the shared ones (model.protocol.props), read through QEMU's view.
    view = QemuView(cfg, parts.trk)
    families = list(dict.fromkeys(a.family for a in actions))
    checks = props.checks(view, props.selected(view, scenario.check.invariants), families)
    return Spec(
        name=scenario.name,
        layout=layout,
        init=[initial_state(cfg)],
        actions=actions,
        invariants=checks.invariants,
        action_invariants=checks.action_invariants,
        liveness=checks.liveness,
        witnesses=checks.witnesses,
        end_states=view.end_state,
        symmetry=device_symmetry(cfg, layout),
        description=scenario.description,
    )
