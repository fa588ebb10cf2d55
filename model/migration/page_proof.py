"""The per-page reduction: what makes a proof about one page a proof for guests of any size.

The migration model (:mod:`model.migration.spec`) is explored with a few pages; the concrete
executor runs real sizes but only some behaviours.  This module states the pieces of an
inductive proof, checked by z3, that covers **every behaviour of a guest with any number
of pages**.  The proof driver (``vfio-migcheck prove``, ``cli/prove.py``)
feeds them to ``checker.smt``; nothing here searches or solves.

Variables
=========

The model's variables split in two (:data:`PAGE_VARIABLES`):

* *page variables*: bit sets with one bit per guest page or per IOVA slot -- ``stale``
  (ground truth), ``bitmap`` (QEMU's migration bitmap), ``kvm_dirty``, ``dma_log`` (per
  device), ``iommu_dirty`` (per IOVA space), and with a vIOMMU ``log_range`` and
  ``iova_map`` (per device and IOVA slot);
* *control variables*: everything else (migration status, run states, QEMU's phase and
  cursor, the SET in flight, the kernel's and QEMU's device states, data_fd, attempt,
  round, ...).

Why one page suffices
=====================

Every action of the model treats the pages alike.  ``prove`` checks this premise with z3
on every run, action by action and for every state (not only the reachable ones): two
states with the same control and the same page-0 bits but arbitrary page-1 bits agree on
the guard, on page 0's next bits and on the next control, save the exception in 2.

1. The effect on page ``p``'s bits is a function of the control variables, of page
   ``p``'s own bits and of the page's *class* (which devices write it, which pin it):
   the trackers' operations are whole-bitmap operations (OR, AND-NOT with masks computed
   from control variables and constants) that act on each bit independently -- log_sync
   folds KVM's log and the method's report into the bitmap and clears what it read,
   log_global_start/stop clear trackers, a write sets the bits of the page it writes,
   SendPage clears the bits of the page it sends.
2. The control variables' next values and the guards read page bits only in two ways:
   an action on a page ``q`` (SendPage, CpuWrite, DmaWrite, IommuMap/Unmap) reads ``q``'s
   bits, and ``ram_save_complete`` leaves ``send_rest`` when the *whole* bitmap is empty
   (``Control.has_work``).  That last test is the only place where control depends on
   other pages' contents.

Hence the proof is done on a *per-page instance* (:func:`per_page_scenario`): page 0 is
the page under proof, page 1 stands for **the rest of the guest**, with the same class.
The inductive invariant (:func:`page_invariants`) constrains the control variables and
page 0 only; page 1's bits are unconstrained, so every query holds whatever the rest of
the guest contains.  Take a guest with any number of pages, a page ``p`` and a step of its
model.  If the step is an action on another page that leaves the control unchanged, page
``p``'s part of the state does not change (a stutter for ``p``).  Otherwise the step is
matched by the same action of the per-page instance, in the state whose control is the
guest's, whose page 0 is ``p`` and whose page 1 is chosen so that "the bitmap is empty"
has the same value as in the guest (possible because page 1 is of ``p``'s class: whenever
a report sets every page of the class, it also sets ``p``; otherwise page 1's bits can be
chosen clear or set).  So every step of the big guest preserves "the invariant holds of
page ``p``" for each ``p`` -- it is inductive for every guest size.  The control
invariant is over control variables only and is matched the same way.

Where the argument is weaker: with a vIOMMU, the trackers are indexed by IOVA slot and
``iova_map`` links slots to pages; a slot's dirty bit written while it mapped one page can
be reported against another page after a remap, and DMA logging's range (``log_range``)
is the span of the slots mapped at log_global_start, which couples slots.  The instance
then has two IOVA slots per device (each mapping page 0, page 1 or nothing), so it covers
a slot mapping the page under proof, another slot aliasing it and a slot mapping the
rest; the proof is per (page, IOVA slot) class rather than strictly per page.

The inductive invariant
=======================

``Control``: the control variables hold a combination the protocol reaches.  The control
state does not depend on the number of pages (above), so the driver computes this set by
exhaustive search of the small per-page instance; z3 then checks that the whole invariant
is inductive, so the set need not be trusted.  The page conjuncts (for page 0), each a
fact of QEMU's design:

* ``DirtyTrackingSound`` (the model's, restricted to page 0): while migrating with no
  error pending, a stale page is in the migration bitmap, in KVM's log, or in what VFIO's
  log_sync would report.
* ``FinalSyncCaught``: from the point where RAM's save_complete sends the remaining pages
  until completion, a stale page is in the migration bitmap -- the final sync ran after
  the vCPUs and the devices stopped, so no tracker holds a write the bitmap lacks.
* ``RestSent``: after ram_save_complete, the bitmap is empty (it sends until it is).
* ``CompletedFresh``: once the migration completed, no page is stale.
* ``NoPageLost`` (restricted to page 0): implied by the above when the destination runs.

The spec's other (control-level) invariants and its action invariant ``LegalDeviceArcs``
are proved along with it, so every mutation (docs/design.md#mutations) breaks the proof at the property
it is meant to break.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import z3

from checker.lang.layout import View
from checker.lang.ops import Term, bit, implies, is_symbolic, isin
from checker.lang.spec import Spec
from model.contract import PROPERTY_KINDS, Property
from model.decision.tracking import TrackingDecision, decide
from model.fsm.kernel.builtin import default_kernel
from model.migration.config import make_config
from model.migration.phases import Phase, Status
from model.migration.spec import applicable, build_spec
from model.scenario import CheckConfig, Scenario

#: Variables with one bit per guest page or IOVA slot; the rest is control.
PAGE_VARIABLES = frozenset({"stale", "bitmap", "kvm_dirty", "dma_log", "iommu_dirty",
                            "log_range", "iova_map"})

#: The page under proof and the page standing for the rest of the guest.
PAGE, REST = 0, 1

#: Properties about pages, and the per-page strengthening that proves them.
PAGE_PROPERTIES = (Property.NO_PAGE_LOST, Property.DIRTY_TRACKING_SOUND)
STRENGTHENING = ("FinalSyncCaught", "RestSent", "CompletedFresh")

#: The one control decision that reads the whole bitmap: ram_save_complete leaves
#: send_rest when no page is left in it (Control.has_work).
BITMAP_EMPTY_TEST_PHASES = (Phase.SEND_REST,)

# ram_save_complete sends the rest (SEND_REST) and the device hooks after it run with the
# vCPUs and devices stopped, until migration_completion sets COMPLETED (with multifd the
# save threads' join among them); with the return path the destination's load and vm_start
# come before COMPLETE (docs/sources.md#qemu-return-path; in the default order they run
# after COMPLETED, where these conjuncts say nothing).
_DST_BEFORE_SHUT = (Phase.LOAD_STATE, Phase.LOAD_THREADS_WAIT, Phase.DST_START_PREPARE, Phase.DST_START,
                    Phase.DST_RESUME)
_AFTER_SEND_REST = (Phase.SAVE_COMPLETE, Phase.SAVE_THREADS_JOIN, Phase.SAVE_COMPLETE_STOP,
                    *_DST_BEFORE_SHUT, Phase.COMPLETE)
_FROM_SEND_REST = (Phase.SEND_REST, *_AFTER_SEND_REST)

Pred = Callable[[Any], Term]


@dataclass(frozen=True)
class PageClass:
    """What distinguishes one page from another in a scenario: which devices write it
    (its IOVA, under a vIOMMU) and which pin it."""

    writers: tuple[str, ...]
    pinners: tuple[str, ...]
    pages: tuple[int, ...]  # the scenario's pages of this class

    def describe(self) -> str:
        w = ", ".join(self.writers) or "no device"
        p = f"; pinned by {', '.join(self.pinners)}" if self.pinners else ""
        return f"written by {w}{p}"


def page_classes(scenario: Scenario) -> list[PageClass]:
    """The scenario's pages grouped by class (a guest of any size: any number of pages of
    each class)."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
    for p in range(scenario.vm.pages):
        writers = tuple(d.name for d in scenario.devices if p in d.dma_pages)
        pinners = tuple(d.name for d in scenario.devices if p in d.pins)
        groups.setdefault((writers, pinners), []).append(p)
    return [PageClass(w, pn, tuple(ps)) for (w, pn), ps in groups.items()]


def per_page_scenario(scenario: Scenario, cls: PageClass) -> tuple[Scenario, TrackingDecision]:
    """The per-page instance for ``cls``: two pages of that class (the page under proof and
    the rest of the guest), every property checked, and QEMU's decision for the *whole*
    scenario (it does not depend on the page count; only the pinned page set is
    renumbered)."""
    pages = (PAGE, REST)
    devices = tuple(
        dataclasses.replace(d, dma_pages=pages if d.name in cls.writers else (),
                            pins=pages if d.name in cls.pinners else ())
        for d in scenario.devices
    )
    small = dataclasses.replace(
        scenario,
        vm=dataclasses.replace(scenario.vm, pages=len(pages)),
        devices=devices,
        check=CheckConfig(invariants=None, expect=scenario.check.expect),
    )
    decision = decide(scenario)
    decision = dataclasses.replace(
        decision, pinned_pages=frozenset(pages) if cls.pinners else frozenset())
    return small, decision


def selected_properties(scenario: Scenario, small: Scenario, decision: TrackingDecision
                        ) -> tuple[str, ...]:
    """The safety properties the scenario asks for (all that apply by default)."""
    wanted = scenario.check.invariants
    if wanted is None:
        cfg = make_config(small, decision, default_kernel())
        wanted = applicable(cfg)
    return tuple(n for n in wanted if PROPERTY_KINDS[n].is_safety)


class OnePage:
    """A view of a state in which ``stale`` holds page 0 only: the model's whole-guest
    properties, read through it, become the properties of page 0."""

    def __init__(self, s: Any) -> None:
        self._s = s

    def __getitem__(self, key: str) -> Any:
        v = self._s[key]
        return v & (1 << PAGE) if key == "stale" else v

    def __getattr__(self, name: str) -> Any:
        if name == "stale":
            return self["stale"]
        return getattr(self._s, name)

    def __len__(self) -> int:
        return len(self._s)


@dataclass
class Obligation:
    """What the driver proves for one page class."""

    page_class: PageClass
    scenario: Scenario  # the per-page instance
    spec: Spec  # its spec (all properties)
    properties: tuple[str, ...]  # the spec's safety properties to prove
    control_keys: tuple[str, ...]  # layout keys of the control variables

    @property
    def proves_pages(self) -> bool:
        return any(p in self.properties for p in PAGE_PROPERTIES)

    @property
    def separation_checkable(self) -> bool:
        """Whether "page 1 does not influence page 0" is a per-bit statement: without a
        vIOMMU every page variable is a bit set over pages; with one, IOVA slots (and
        ``iova_map``) link pages and the premise holds per (page, IOVA slot) instead."""
        return not self.scenario.vm.viommu

    def on_rest(self, label: str) -> bool:
        """Whether an action works on the rest-of-guest page (or its IOVA slot)."""
        return f"p{REST}" in label or f"iova={REST}" in label


def obligation(scenario: Scenario, cls: PageClass) -> Obligation:
    small, decision = per_page_scenario(scenario, cls)
    spec = build_spec(small, decision=decision)
    props = selected_properties(scenario, small, decision)
    control = tuple(s.key for s in spec.layout.slots if s.field.name not in PAGE_VARIABLES)
    return Obligation(cls, small, spec, props, control)


def page_invariants(ob: Obligation) -> dict[str, Pred]:
    """The page conjuncts of the inductive invariant (page 0), by name; empty when the
    scenario does not ask for a page property."""
    if not ob.proves_pages:
        return {}
    model = ob.spec.invariants

    def migrating_ok(s: Any) -> Term:
        return (s.status == Status.DEVICE) & (s.mig_error == 0)

    def final_sync_caught(s: Any) -> Term:
        # ram_save_complete: migration_bitmap_sync_precopy(last_stage) ran after the
        # VM-state callbacks stopped every device (vm_stop -> vfio_vmstate_change), and
        # the vCPUs are stopped: every stale page is in the bitmap from here on.
        return implies(isin(s.pc, _FROM_SEND_REST) & migrating_ok(s),
                       ~bit(s.stale, PAGE) | bit(s.bitmap, PAGE))

    def rest_sent(s: Any) -> Term:
        # ram_save_complete sends every page left in the bitmap before returning.
        return implies(isin(s.pc, _AFTER_SEND_REST) & migrating_ok(s), ~bit(s.bitmap, PAGE))

    def completed_fresh(s: Any) -> Term:
        # migration_completion sets COMPLETED after save_complete: every page was sent.
        return implies(s.status == Status.COMPLETED, ~bit(s.stale, PAGE))

    return {
        Property.DIRTY_TRACKING_SOUND: lambda s: model[Property.DIRTY_TRACKING_SOUND](cast(View, OnePage(s))),
        "FinalSyncCaught": final_sync_caught,
        "RestSent": rest_sent,
        "CompletedFresh": completed_fresh,
        Property.NO_PAGE_LOST: lambda s: model[Property.NO_PAGE_LOST](cast(View, OnePage(s))),
    }


def control_invariants(ob: Obligation) -> dict[str, Pred]:
    """The spec's control-level state invariants the scenario asks for."""
    return {n: p for n, p in ob.spec.invariants.items()
            if n in ob.properties and n not in PAGE_PROPERTIES}


def reached_control(ob: Obligation, control_rows: Sequence[Sequence[int]]) -> Pred:
    """``Control``: the control variables hold one of ``control_rows`` (values in the order
    of ``ob.control_keys``), the combinations the protocol reaches.

    The control variables are packed into one number (each in its layout width) and
    compared with the packed rows: one equality per row, on numpy columns and z3 terms
    alike."""
    keys = ob.control_keys
    widths = [ob.spec.layout.slot(k).field.bits for k in keys]
    shifts = [sum(widths[:i]) for i in range(len(widths))]
    total = sum(widths)
    packed_rows = sorted({sum(int(v) << sh for v, sh in zip(row, shifts, strict=True))
                          for row in control_rows})

    def control(s: Any) -> Term:
        cols = [s[k] for k in keys]
        if any(is_symbolic(c) for c in cols):
            parts = [z3.Extract(w - 1, 0, c) for c, w in zip(cols, widths, strict=True)]
            packed = z3.Concat(*reversed(parts)) if len(parts) > 1 else parts[0]
            return z3.Or([packed == z3.BitVecVal(v, total) for v in packed_rows])
        if total > 64:
            # Wider than a uint64 (e.g. aarch64's config-load flags on two multifd
            # devices): pack into Python ints instead.
            wide = sum(np.asarray(c).astype(object) << sh for c, sh in zip(cols, shifts, strict=True))
            return np.isin(wide, np.asarray(packed_rows, dtype=object))
        packed_np = sum(np.asarray(c, dtype=np.uint64) << np.uint64(sh)
                        for c, sh in zip(cols, shifts, strict=True))
        return np.isin(packed_np, np.asarray(packed_rows, dtype=np.uint64))

    return control


def expected_group(name: str | None) -> tuple[str, ...]:
    """The conjuncts whose failure refutes ``name``: a page property is refuted by any of
    the page conjuncts (the strengthening is part of its proof)."""
    if name is None:
        return ()
    if name in PAGE_PROPERTIES:
        return (*PAGE_PROPERTIES, *STRENGTHENING)
    return (name,)


def describe_invariant(ob: Obligation) -> Mapping[str, str]:
    """One line per conjunct, for reports."""
    out = {"Control": "the control variables hold a combination the protocol reaches "
                      "(computed on the per-page instance; checked inductive by z3)"}
    if ob.proves_pages:
        out.update({
            Property.DIRTY_TRACKING_SOUND: "migrating, no error pending: a stale page is in the "
                                  "bitmap, KVM's log or VFIO's next report",
            "FinalSyncCaught": "from send_rest to completion: a stale page is in the bitmap",
            "RestSent": "after send_rest: the page is not in the bitmap",
            "CompletedFresh": "completed: the page is not stale",
            Property.NO_PAGE_LOST: "the destination runs: the page is not stale",
        })
    for n in control_invariants(ob):
        out[n] = "the spec's invariant"
    if Property.LEGAL_DEVICE_ARCS in ob.properties:
        out[Property.LEGAL_DEVICE_ARCS] = "the spec's action invariant, on every step"
    return out
