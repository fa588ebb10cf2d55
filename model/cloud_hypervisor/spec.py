"""cloud-hypervisor's VFIO live migration as a spec for the checker.

:func:`build_spec` turns a validated scenario with ``vmm = "cloud-hypervisor"`` into a
:class:`~checker.lang.spec.Spec` whose variables are named as in QEMU's model where they
mean the same (``status``, ``src_run``, ``dst_run``, ``pc``, ``cursor``, ``req``,
``kstate``, ``dst_kstate``, ``dst_loaded``, ``dst_valid``, ``stale``, ``bitmap``,
``kvm_dirty``, ``dma_log``, ``p2p_hit``), plus cloud-hypervisor's own: the device
manager's order on each side (``src_order``, ``dst_order``), whether a device's DMA
logging was started (``log_on``) and P2P hits on the destination (``dst_p2p_hit``).  The
properties are the shared ones (:mod:`model.protocol.props`) read through
:class:`~model.cloud_hypervisor.view.ChView`.
"""

from __future__ import annotations

from typing import Any

from checker.lang.layout import Layout, View
from checker.lang.ops import Term, lookup, where
from checker.lang.spec import Spec
from model.cloud_hypervisor.actions import ChActions
from model.cloud_hypervisor.config import ChConfig, make_config, order_names
from model.cloud_hypervisor.decision import ChDecision, decide
from model.cloud_hypervisor.flow import (
    DST_RUN_NAMES,
    PHASE_NAMES,
    RECOVER,
    REQ_NAMES,
    SRC_RUN_NAMES,
    STATUS_NAMES,
    TARGET,
    Control,
    Plan,
    Req,
)
from model.cloud_hypervisor.view import ChView
from model.fsm.kernel.builtin import default_kernel
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import STATE_NAMES, DeviceState
from model.protocol import props
from model.protocol.pages import declare_pages, page_names
from model.scenario import Scenario


def declare_layout(cfg: ChConfig) -> Layout:
    D = cfg.devices
    pages = page_names(cfg.pages)
    lay = Layout()
    lay.var("status", values=STATUS_NAMES, doc="where the source's migration is")
    lay.flag("refused", doc="start_migration() refused the migration")
    lay.var("src_run", values=SRC_RUN_NAMES, doc="source VM (VmState and its vCPUs)")
    lay.var("dst_run", values=DST_RUN_NAMES, doc="destination VM")
    lay.var("pc", values=PHASE_NAMES, doc="the step of the migration being run")
    lay.var("cursor", cfg.cursor_bits, doc="position in the device order of the step")
    lay.var("req", values=REQ_NAMES, doc="stage of the SET in flight")
    lay.var("round", max(1, cfg.rounds.bit_length()), doc="dirty logs taken in pre-copy")
    if cfg.scenario.migration.device_faults:
        lay.flag("fault_used", doc="the (single) injected device fault has happened")
    if D > 1:
        names = order_names(cfg)
        lay.var("src_order", values=names, doc="source DeviceManager's device order")
        lay.var("dst_order", values=names, doc="destination DeviceManager's device order")
    lay.flag("dirty_log", doc="KVM dirty logging on (MemoryManager::start_dirty_log)")
    lay.var("kstate", values=STATE_NAMES, count=D, array=True, doc="source device: kernel state")
    if cfg.any_logging:
        lay.flag("log_on", count=D, array=True, doc="source device: DMA logging started")
        lay.var("dma_log", flags=pages, count=D, array=True, doc="source device: DMA log")
    if cfg.p2p_actions:
        lay.flag("p2p_hit", count=D, array=True, doc="a P2P write reached the stopped source device")
        lay.flag("dst_p2p_hit", count=D, array=True,
                 doc="a P2P write reached the destination device before it ran")
    lay.var("dst_kstate", values=STATE_NAMES, count=D, array=True, doc="destination device: kernel state")
    lay.flag("dst_loaded", count=D, array=True, doc="destination device: its state was written")
    lay.flag("dst_valid", count=D, array=True, doc="destination device: RESUMING -> STOP validated it")
    declare_pages(lay, cfg.pages, bitmap="pages still to send (the iteration's table)")
    declare_request_goal(lay)
    return lay


def declare_request_goal(lay: Layout) -> None:
    """Show with ``req`` the state the SET in flight walks to (``req_to``), as QEMU's model
    does: the target of the step's request phase (or its recovery state after a failure),
    RUNNING for the VFIO_DEVICE_RESET of ``reset_and_rearm``, ``-`` when idle.  It is a
    function of ``pc`` and ``req`` (flow.TARGET / flow.RECOVER), so the model stores nothing
    for it."""
    def goal(s: View) -> Term:
        out = where(s.req == Req.RESET, int(DeviceState.RUNNING) + 1, 0)
        out = where(s.req == Req.RECOVER, lookup(RECOVER + 1, s.pc), out)  # none (-1) shows "-"
        return where(s.req == Req.TARGET, lookup(TARGET + 1, s.pc), out)

    lay.derive("req_to", goal, values=("-", *STATE_NAMES), after="req",
               doc="the device state the SET in flight walks to")


def initial_states(cfg: ChConfig) -> list[dict[str, Any]]:
    """One state per pair of device orders (source, destination)."""
    D = cfg.devices
    base: dict[str, Any] = {
        "status": "none",
        "src_run": "paused" if cfg.starts_paused else "running",
        "dst_run": "inmigrate",
        "pc": "idle",
        "req": "idle",
        "kstate": [cfg.initial_kstate(d) for d in range(D)],
        "dst_kstate": ["RUNNING"] * D,
        "stale": cfg.all_pages,
    }
    states: list[dict[str, Any]] = []
    pairs = [(a, b) for a in range(len(cfg.orders)) for b in range(len(cfg.orders))] if D > 1 else [(0, 0)]
    for src, dst in pairs:
        state = dict(base)
        if D > 1:
            state["src_order"], state["dst_order"] = src, dst
        for name, value in list(state.items()):
            if isinstance(value, list) and len(value) == 1:
                state[name] = value[0]
        states.append(state)
    return states


def build_spec(scenario: Scenario, *, decision: ChDecision | None = None,
               kernel: KernelStepFunction | None = None) -> Spec:
    """cloud-hypervisor's migration of ``scenario`` as a checkable :class:`Spec`."""
    decision = decision if decision is not None else decide(scenario)
    kernel = kernel if kernel is not None else default_kernel()
    cfg = make_config(scenario, decision, kernel)
    plan = Plan(cfg)
    actions = ChActions(cfg, plan, Control(cfg, plan)).build()
    view = ChView(cfg)
    families = list(dict.fromkeys(a.family for a in actions))
    checks = props.checks(view, props.selected(view, scenario.check.invariants), families)
    return Spec(
        name=scenario.name,
        layout=declare_layout(cfg),
        init=initial_states(cfg),
        actions=actions,
        invariants=checks.invariants,
        action_invariants=checks.action_invariants,
        liveness=checks.liveness,
        witnesses=checks.witnesses,
        end_states=view.end_state,
        description=scenario.description,
    )
