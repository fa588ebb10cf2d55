"""Check a kernel's step function against the uAPI FSM, for every feature set and pair.

For each feature set the source knows and each ``(current, requested)`` pair with
``current != requested`` (drivers make no call when they are equal), the driver walk
(:meth:`KernelStepFunction.path`) is checked for these properties (names are stable, they
appear in JSON):

``Terminates``
    every call returns and the walk ends (no non-terminating loop, no step that returns
    the current state, no walk that comes back to a state it left).
``DirectArcs``
    every step is a direct arc of that feature set (:func:`model.fsm.uapi.direct_arcs`,
    from the arc list in ``include/uapi/linux/vfio.h``).
``SupportedStatesOnly``
    no step enters a state the feature set lacks (or ERROR, or a number outside the enum).
``ReachesOrRefuses``
    the walk reaches the requested state, or the *first* call fails with -EINVAL so the
    device stays where it was; requests the uAPI forbids (ERROR or an unsupported state
    requested, an unsupported or ERROR current state, STOP_COPY -> PRE_COPY[_P2P]) must be
    refused, every other request must be reached.
``SavingGroupAtEnds``
    the uAPI's rule that saving-group states "cannot be interior" of a path, in the
    maintainers' reading (docs/sources.md#uapi-paths): no *interior arc* (all but the first and the
    last) touches PRE_COPY, PRE_COPY_P2P or STOP_COPY.  Where the strict reading (no
    saving-group state strictly inside the path) differs, an info item says so.
``Shortest``
    the walk is no longer than the shortest path over the direct arcs that obeys the
    interior rule.  Several shortest paths (ties) are information: the header leaves the
    choice to ``vfio_mig_get_next_state()``.

Refusals, ties, strict-reading differences and the comment-versus-code difference in the
required-arc lists are returned as :class:`Info`, separately from violations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from model.fsm.kernel.step import KernelStepFunction, PathResult
from model.fsm.uapi import (
    BLOCKED_REQUESTS,
    FEATURE_SETS,
    SAVING_GROUP,
    Arc,
    DeviceState,
    MigFlag,
    direct_arcs,
    feature_label,
    feature_names,
    required_arcs_comment,
    supported_states,
)

PROPERTIES: tuple[str, ...] = (
    "Terminates",
    "DirectArcs",
    "SupportedStatesOnly",
    "ReachesOrRefuses",
    "SavingGroupAtEnds",
    "Shortest",
)
INFO_KINDS: tuple[str, ...] = (
    "refused", "tie", "strict-interior", "comment-arcs", "coverage", "source-note",
)

StatePath = tuple[DeviceState, ...]


@dataclass(frozen=True)
class Violation:
    property: str
    features: MigFlag
    current: DeviceState
    requested: DeviceState
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "features": feature_names(self.features),
            "current": self.current.name,
            "requested": self.requested.name,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Info:
    kind: str
    features: MigFlag | None
    current: DeviceState | None
    requested: DeviceState | None
    detail: str
    category: str = ""  # for refusals: why the uAPI wants the request refused

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": None if self.features is None else feature_names(self.features),
            "current": None if self.current is None else self.current.name,
            "requested": None if self.requested is None else self.requested.name,
            "category": self.category or None,
            "detail": self.detail,
        }


@dataclass
class AuditReport:
    kernel: str
    feature_sets: tuple[MigFlag, ...]
    violations: list[Violation] = field(default_factory=list)
    info: list[Info] = field(default_factory=list)
    paths: dict[tuple[int, int, int], PathResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "kernel": self.kernel,
            "feature_sets": [feature_names(f) for f in self.feature_sets],
            "violations": [v.to_json() for v in self.violations],
            "info": [i.to_json() for i in self.info],
        }


# ------------------------------------------------------------------ allowed paths (uAPI)
def _arrow(path: StatePath) -> str:
    return " -> ".join(s.name for s in path)


def interior_ok(path: StatePath) -> bool:
    """Maintainers' reading: no interior arc (all but first and last) touches the group."""
    arcs = list(zip(path, path[1:], strict=False))
    return not any(a in SAVING_GROUP or b in SAVING_GROUP for a, b in arcs[1:-1])


def strict_ok(path: StatePath) -> bool:
    """Strict reading: no saving-group state strictly inside the path."""
    return not any(s in SAVING_GROUP for s in path[1:-1])


def _simple_paths(arcs: frozenset[Arc], start: DeviceState) -> Iterator[StatePath]:
    succ: dict[DeviceState, list[DeviceState]] = {}
    for a, b in sorted(arcs):
        succ.setdefault(a, []).append(b)
    stack: list[StatePath] = [(start,)]
    while stack:
        p = stack.pop()
        if len(p) > 1:
            yield p
        for b in succ.get(p[-1], []):
            if b not in p:
                stack.append((*p, b))


@cache
def allowed_shortest(flags: MigFlag) -> dict[tuple[DeviceState, DeviceState], tuple[StatePath, ...]]:
    """For every pair with a path: all shortest simple paths over the direct arcs of the
    feature set that obey the interior rule (maintainers' reading)."""
    arcs = direct_arcs(flags)
    best: dict[tuple[DeviceState, DeviceState], list[StatePath]] = {}
    for a in supported_states(flags):
        for p in _simple_paths(arcs, a):
            if not interior_ok(p):
                continue
            key = (a, p[-1])
            cur = best.get(key)
            if cur is None or len(p) < len(cur[0]):
                best[key] = [p]
            elif len(p) == len(cur[0]):
                cur.append(p)
    return {k: tuple(sorted(v)) for k, v in best.items()}


@cache
def strict_shortest(flags: MigFlag) -> dict[tuple[DeviceState, DeviceState], int]:
    """Length (arcs) of the shortest path under the strict reading, per pair."""
    out: dict[tuple[DeviceState, DeviceState], int] = {}
    for a in supported_states(flags):
        for p in _simple_paths(direct_arcs(flags), a):
            if strict_ok(p):
                key = (a, p[-1])
                out[key] = min(out.get(key, 99), len(p) - 1)
    return out


def refusal_reason(flags: MigFlag, cur: DeviceState, new: DeviceState) -> tuple[str, str] | None:
    """``(category, reason)`` when the uAPI wants the request refused, else None."""
    label = feature_label(flags)
    sup = supported_states(flags)
    if cur == DeviceState.ERROR:
        return "error-current", "the device is in ERROR; only VFIO_DEVICE_RESET leaves it"
    if cur not in sup:
        return "unsupported-current", f"{cur.name} is not a state of a {label} device"
    if new == DeviceState.ERROR:
        return "error-requested", "ERROR cannot be requested"
    if new not in sup:
        return "unsupported-requested", (f"{new.name} is not a state of a {label} device "
                                         "(optional states cannot be requested if unsupported)")
    if (cur, new) in BLOCKED_REQUESTS:
        return "blocked", f"the uAPI does not permit {cur.name} -> {new.name}"
    return None


# ------------------------------------------------------------------------------ the audit
def audit_report(kernel: KernelStepFunction,
                 progress: Callable[[int, int, str], None] | None = None) -> AuditReport:
    """Run every check; violations and info items, with the walks they were found on.
    ``progress(done, total, feature set)`` is called before each feature set."""
    rep = AuditReport(kernel.source, kernel.flag_sets)
    for note in kernel.notes:
        rep.info.append(Info("source-note", None, None, None, note))
    missing = [f for f in FEATURE_SETS if f not in kernel.flag_sets]
    if missing:
        rep.info.append(Info(
            "coverage", None, None, None,
            ("this source knows the feature sets "
             + ", ".join(feature_label(f) for f in kernel.flag_sets)
             if kernel.flag_sets else "this source knows no complete feature set")
            + "; not checked: " + ", ".join(feature_label(f) for f in missing)))
    for i, flags in enumerate(kernel.flag_sets):
        if progress is not None:
            progress(i, len(kernel.flag_sets), feature_label(flags))
        _audit_feature_set(kernel, flags, rep)
    return rep


def audit(kernel: KernelStepFunction) -> list[Violation]:
    """The violations only (see :func:`audit_report` for the info items)."""
    return audit_report(kernel).violations


def _audit_feature_set(kernel: KernelStepFunction, flags: MigFlag, rep: AuditReport) -> None:
    audit = _FeatureSetAudit(flags, rep)
    for cur in DeviceState:
        for new in DeviceState:
            if cur != new:
                p = kernel.path(flags, cur, new)
                rep.paths[(int(flags), int(cur), int(new))] = p
                audit.walk(cur, new, p)
    audit.comment_arcs()


class _FeatureSetAudit:
    """The checks of one feature set, one walk at a time; ``used`` collects the direct
    arcs the walks from supported states take (for the comment-arcs notes)."""

    def __init__(self, flags: MigFlag, rep: AuditReport) -> None:
        self.flags, self.rep = flags, rep
        self.label = feature_label(flags)
        self.arcs = direct_arcs(flags)
        self.sup = set(supported_states(flags))
        self.shortest = allowed_shortest(flags)
        self.strict = strict_shortest(flags)
        self.used: set[Arc] = set()

    def violation(self, prop: str, cur: DeviceState, new: DeviceState, detail: str) -> None:
        self.rep.violations.append(Violation(prop, self.flags, cur, new, detail))

    def info(self, kind: str, cur: DeviceState, new: DeviceState, detail: str,
             category: str = "") -> None:
        self.rep.info.append(Info(kind, self.flags, cur, new, detail, category))

    def walk(self, cur: DeviceState, new: DeviceState, p: PathResult) -> None:
        walk = (cur, *p.steps)
        legal = self.steps(cur, new, walk)
        if p.result in ("loop", "stuck", "cycle"):
            self.violation("Terminates", cur, new, p.detail)
        elif p.result == "undefined":
            self.violation("SupportedStatesOnly", cur, new, p.detail)
        elif p.result == "error":
            self.violation("ReachesOrRefuses", cur, new,
                           f"returns an errno other than -EINVAL: {p.detail}")
        elif p.refused:
            self.refused(cur, new, walk, p)
        else:
            self.reached(cur, new, walk, legal)

    def steps(self, cur: DeviceState, new: DeviceState, walk: StatePath) -> bool:
        """Check each step of the walk; True when all are direct arcs between states of
        the feature set."""
        legal = True
        for a, b in zip(walk, walk[1:], strict=False):
            if b not in self.sup:
                legal = False
                self.violation("SupportedStatesOnly", cur, new,
                               f"step {a.name} -> {b.name} enters {b.name}, which a "
                               f"{self.label} device does not have" if b != DeviceState.ERROR
                               else f"step {a.name} -> {b.name} enters ERROR as a successful "
                               "step")
            if (a, b) not in self.arcs:
                legal = False
                self.violation("DirectArcs", cur, new, f"step {a.name} -> {b.name} is not a "
                               f"direct arc of a {self.label} device (walk: {_arrow(walk)})")
            elif cur in self.sup:
                self.used.add((a, b))
        return legal

    def refused(self, cur: DeviceState, new: DeviceState, walk: StatePath,
                p: PathResult) -> None:
        must_refuse = refusal_reason(self.flags, cur, new)
        if p.steps:
            self.violation("ReachesOrRefuses", cur, new,
                           f"refused only after moving the device: it is left in "
                           f"{p.final.name}, not in {cur.name} ({_arrow(walk)}; {p.detail})")
        elif must_refuse is not None:
            self.info("refused", cur, new, f"{must_refuse[1]}: {p.detail}", must_refuse[0])
        else:
            alts = self.shortest.get((cur, new), ())
            self.violation("ReachesOrRefuses", cur, new,
                           f"refused although the uAPI allows {cur.name} -> {new.name}"
                           + (f" (e.g. {_arrow(alts[0])})" if alts else "")
                           + f": {p.detail}")

    def reached(self, cur: DeviceState, new: DeviceState, walk: StatePath,
                legal: bool) -> None:
        must_refuse = refusal_reason(self.flags, cur, new)
        if must_refuse is not None:
            self.violation("ReachesOrRefuses", cur, new, f"reached ({_arrow(walk)}) although "
                           f"it must be refused: {must_refuse[1]}")
            return
        if not interior_ok(walk):
            bad = [f"{a.name} -> {b.name}" for a, b in list(zip(walk, walk[1:],
                                                                strict=False))[1:-1]
                   if a in SAVING_GROUP or b in SAVING_GROUP]
            self.violation("SavingGroupAtEnds", cur, new,
                           f"{_arrow(walk)} has interior arc(s) touching the saving group: "
                           + ", ".join(bad))
        elif not strict_ok(walk):
            self.strict_note(cur, new, walk)
        if legal:
            self.length(cur, new, walk)

    def strict_note(self, cur: DeviceState, new: DeviceState, walk: StatePath) -> None:
        inner = [s.name for s in walk[1:-1] if s in SAVING_GROUP]
        n_strict = self.strict.get((cur, new))
        self.info("strict-interior", cur, new,
                  f"{_arrow(walk)} passes through {', '.join(inner)} inside the path: "
                  "allowed in the maintainers' reading (no interior arc touches the saving "
                  "group); the strict reading would reject it"
                  + (f" and needs {n_strict} steps" if n_strict is not None else
                     " and has no path at all"))

    def length(self, cur: DeviceState, new: DeviceState, walk: StatePath) -> None:
        alts = self.shortest.get((cur, new), ())
        if not alts:
            return
        n, m = len(walk) - 1, len(alts[0]) - 1
        if n > m:
            self.violation("Shortest", cur, new, f"{_arrow(walk)} takes {n} steps; the "
                           f"shortest allowed path takes {m}: "
                           + "; ".join(_arrow(a) for a in alts))
        elif n == m and len(alts) > 1:
            others = [a for a in alts if a != walk]
            self.info("tie", cur, new, f"the kernel takes {_arrow(walk)}; equally short: "
                      + "; ".join(_arrow(a) for a in others))

    def comment_arcs(self) -> None:
        required = required_arcs_comment(self.flags)
        extra, unused = self.used - required, required - self.used
        if extra:
            self.rep.info.append(Info(
                "comment-arcs", self.flags, None, None,
                f"a {self.label} device is asked for {_arcs(extra)}, which the comment above "
                "vfio_mig_get_next_state() does not list for this feature set"))
        if unused:
            self.rep.info.append(Info(
                "comment-arcs", self.flags, None, None,
                f"the comment above vfio_mig_get_next_state() requires {_arcs(unused)} of a "
                f"{self.label} device, but no walk uses it"))


def _arcs(arcs: set[Arc] | frozenset[Arc]) -> str:
    return ", ".join(f"{a.name} -> {b.name}" for a, b in sorted(arcs))
