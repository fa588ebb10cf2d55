"""A variant driver's step function against the arcs the kernel's walk hands it.

The uAPI (include/uapi/linux/vfio.h, the arc list above enum vfio_device_mig_state) makes
each driver implement every direct arc its feature set can be given; the kernel's
``vfio_mig_get_next_state()`` picks those arcs.  A walk from every state of the feature
set to every requested state (:meth:`KernelStepFunction.path`) gives the arcs a driver can
be handed, each with a request that reaches it.  A driver that lacks one of them takes its
fallback (``WARN_ON(true); return ERR_PTR(-EINVAL);``) in the middle of a migration.

``missing``: emitted, not handled.  ``extra``: handled by an arm whose condition chose
the pair, never emitted (dead code for this feature set; an arc reached only through the
function's default return is not "extra").  ``unparsed``: arms the reader could not
follow, with the arcs whose handling they leave open; those arcs are neither missing nor
handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model.fsm.driver.arms import Evaluator, Outcome, Walker
from model.fsm.driver.skeleton import parse_body
from model.fsm.driver.source import Constants, StepFunction
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.kernel.unit import Unit
from model.fsm.uapi import Arc, DeviceState, MigFlag, feature_names, supported_states


@dataclass(frozen=True)
class UnparsedArm:
    file: str
    line: int
    reason: str
    arcs: tuple[Arc, ...]

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason,
                "arcs": [[a.name, b.name] for a, b in self.arcs]}


@dataclass
class DriverReport:
    driver: str
    function: str
    line: int
    features: MigFlag
    kernel: str
    handled: list[tuple[DeviceState, DeviceState, int]] = field(default_factory=list)
    # (arc, request that reaches it, line where the driver refuses it)
    missing: list[tuple[Arc, Arc, int]] = field(default_factory=list)
    extra: list[Arc] = field(default_factory=list)
    unparsed: list[UnparsedArm] = field(default_factory=list)
    unknown: list[Arc] = field(default_factory=list)  # emitted arcs left open by unparsed
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1: an emitted arc is missing; 2: an emitted arc could not be decided; else 0."""
        if self.missing:
            return 1
        return 2 if self.unknown else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "driver": self.driver,
            "function": self.function,
            "line": self.line,
            "features": feature_names(self.features),
            "kernel": self.kernel,
            "handled": [[a.name, b.name, line] for a, b, line in self.handled],
            "missing": [{"arc": [a.name, b.name], "via": [c.name, r.name], "line": line}
                        for (a, b), (c, r), line in self.missing],
            "extra": [[a.name, b.name] for a, b in self.extra],
            "unparsed": [u.to_json() for u in self.unparsed],
            "undecided": [[a.name, b.name] for a, b in self.unknown],
            "notes": self.notes,
        }


def emitted_arcs(kernel: KernelStepFunction, flags: MigFlag) -> dict[Arc, Arc]:
    """Every arc the kernel's walk hands a device of this feature set, with the request
    ``(current, requested)`` of the shortest walk that takes it (first in enum order)."""
    best: dict[Arc, tuple[int, Arc]] = {}
    for cur in supported_states(flags):
        for new in DeviceState:
            if cur == new:
                continue
            p = kernel.path(flags, cur, new)
            walk = (cur, *p.steps)
            for a, b in zip(walk, walk[1:], strict=False):
                key = (len(walk), (cur, new))
                if (a, b) not in best or key < best[(a, b)]:
                    best[(a, b)] = key
    return {arc: via for arc, (_, via) in sorted(best.items())}


@dataclass
class DriverArcs:
    """What the step function does with every pair of distinct states."""

    handled: dict[Arc, Outcome] = field(default_factory=dict)
    refused: dict[Arc, Outcome] = field(default_factory=dict)  # where it refuses the rest
    unparsed: dict[tuple[int, str], set[Arc]] = field(default_factory=dict)


def driver_arcs(step: StepFunction, units: list[Unit]) -> DriverArcs:
    toks = step.unit.toks
    body = parse_body(toks, step.definition.start, step.definition.end, step.unit.path)
    walker = Walker(body, Evaluator(step.roles, Constants(step, units)),
                    toks[step.definition.end].line)
    out = DriverArcs()
    for cur in DeviceState:
        for new in DeviceState:
            if cur == new:
                continue
            outs = walker.outcomes((int(cur), int(new)))
            bad = [o for o in outs if o.kind == "unparsed"]
            for o in bad:
                out.unparsed.setdefault((o.line, o.detail), set()).add((cur, new))
            ok = [o for o in outs if o.kind == "handled"]
            if bad:
                continue
            if ok:
                out.handled[(cur, new)] = ok[0]
            else:
                out.refused[(cur, new)] = outs[0]
    return out


def check_driver(step: StepFunction, units: list[Unit], kernel: KernelStepFunction,
                 flags: MigFlag) -> DriverReport:
    emitted = emitted_arcs(kernel, flags)
    arcs = driver_arcs(step, units)
    handled, unparsed = arcs.handled, arcs.unparsed
    open_arcs: set[Arc] = set().union(*unparsed.values()) if unparsed else set()
    rep = DriverReport(step.unit.path, step.name, step.line, flags, kernel.source)
    rep.handled = [(a, b, o.line) for (a, b), o in sorted(handled.items())]
    rep.missing = [(arc, via, arcs.refused[arc].line) for arc, via in emitted.items()
                   if arc not in handled and arc not in open_arcs]
    rep.extra = [arc for arc, o in sorted(handled.items()) if arc not in emitted and o.decided]
    rep.unknown = sorted(a for a in open_arcs if a in emitted)
    rep.unparsed = [UnparsedArm(step.unit.path, line, reason, tuple(sorted(arcs)))
                    for (line, reason), arcs in sorted(unparsed.items())]
    d = step.definition
    rep.notes = step.unit.pre.notes_for(step.unit.toks[d.start - 1].line,
                                        step.unit.toks[d.end].line)
    if step.loop is not None:
        rep.notes.insert(0, f"step function found from the loop at {step.loop.unit.path}:"
                            f"{step.loop.line}; current state: "
                            f"{', '.join(sorted(step.roles.cur)) or '-'}"
                            + (f" (field {step.roles.field})" if step.roles.field else "")
                            + f"; target: {', '.join(sorted(step.roles.new))}")
    return rep
