"""The one loader: a spec file path -> a typed :class:`Target`.

Every command (``check``, ``graph``, ``report``, ``prove``, ``simulate``) and the tests that
load spec files go through :func:`load_target`, which reads and parses each file once:

* an engine-validation example (``example = "TwoPhase"``, :mod:`checker.examples.loader`)
  gives its spec and expectation;
* anything else is a VFIO migration scenario (:mod:`model.scenario`): its VMM's decision is
  taken here, once (QEMU: :func:`model.decision.tracking.decide`, handed to
  :func:`model.migration.spec.build_spec`; cloud-hypervisor:
  :func:`model.cloud_hypervisor.decision.decide`, handed to
  :func:`model.cloud_hypervisor.spec.build_spec`), so what the CLI shows about the
  tracking method and the blockers is the decision the model executes.

The scenario's ``[check]`` holds plain validated values (``expect`` and the pins; ``model/``
may not import ``checker.verdict``); :func:`expectation_of` turns them into the
:class:`~checker.verdict.Expectation` that :func:`~checker.verdict.judge` compares with.
User errors are :class:`~cli.errors.UserError`: one line naming file and key, exit 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checker.examples.loader import ExampleError, load_example
from checker.lang.spec import Spec
from checker.result import Result
from checker.verdict import NO_VIOLATION, Expectation, Pins, Verdict, judge
from cli.errors import UserError
from cli.limits import stopped_by
from model.scenario import PIN_KEYS, Scenario, SpecError, read_toml, scenario_from_dict

# The VMM models are imported where a spec of theirs is built: a run of an example (the
# TLA+ ones) or of QEMU specs only does not load cloud-hypervisor's (start-up time counts
# on small specs).
if TYPE_CHECKING:
    from model.cloud_hypervisor.decision import ChDecision
    from model.decision.tracking import TrackingDecision

DEFAULT_SPECS = Path("specs")


@dataclass(frozen=True)
class Migration:
    """What a VFIO migration scenario adds to its spec: the scenario and its VMM's decision
    (QEMU's blockers and tracking method, or cloud-hypervisor's refusals)."""

    scenario: Scenario
    decision: TrackingDecision | ChDecision

    @property
    def vmm(self) -> str:
        return self.scenario.vmm

    @property
    def tracking_method(self) -> str | None:
        method = self.decision.method
        return method if method is None or isinstance(method, str) else method.value


class BrokenTarget(RuntimeError):
    """Building a spec that passed validation raised: an internal error of this spec only."""


@dataclass(frozen=True)
class Target:
    """One spec file, loaded: what to explore and what its author expects of it.

    A migration scenario's spec is built when it is first needed (so that a spec whose
    model cannot be built fails on its own, after the files were validated); ``error``
    says why a target could not be loaded although its file is valid (an internal error:
    :attr:`spec` raises :class:`BrokenTarget`)."""

    path: Path
    name: str
    expectation: Expectation
    migration: Migration | None = None  # None: an engine-validation example
    example: Spec | None = None  # an engine-validation example's spec
    error: str | None = None

    @cached_property
    def spec(self) -> Spec:
        if self.error is not None:
            raise BrokenTarget(self.error)
        if self.example is not None:
            return self.example
        assert self.migration is not None
        scenario, decision = self.migration.scenario, self.migration.decision
        if scenario.is_cloud_hypervisor:
            from model.cloud_hypervisor import spec as ch_spec
            from model.cloud_hypervisor.decision import ChDecision

            assert isinstance(decision, ChDecision)
            return ch_spec.build_spec(scenario, decision=decision)
        from model.decision.tracking import TrackingDecision
        from model.migration.spec import build_spec

        assert isinstance(decision, TrackingDecision)
        return build_spec(scenario, decision=decision)

    @property
    def facts(self) -> dict[str, object]:
        """What is known of the run before it starts, as ``[check]`` may state it."""
        if self.migration is None:
            return {}
        return {"tracking_method": self.tracking_method, "blocked_by": self.blocked_by}

    @property
    def blocked(self) -> bool:
        """QEMU refuses this migration before it starts (a migration blocker)."""
        return self.migration is not None and self.migration.decision.blocked

    @property
    def blocked_by(self) -> list[str]:
        return [] if self.migration is None else list(self.migration.decision.blocked_by)

    @property
    def tracking_method(self) -> str | None:
        return None if self.migration is None else self.migration.tracking_method

    def judge(self, result: Result, *, pins: Sequence[str] | None = None) -> Verdict:
        """The verdict on ``result``; ``pins``: the pins to compare (None: every one stated),
        for runs whose figures are not an exhaustive exploration's (``check --symmetry``,
        ``--simulate``)."""
        expectation = self.expectation
        if pins is not None:
            kept = {k: v for k, v in expectation.pins.stated().items() if k in pins}
            expectation = dataclasses.replace(expectation, pins=Pins(**kept))
        return judge(expectation, result, name=self.name, path=self.path, blocked=self.blocked,
                     stopped_by=stopped_by(result), facts=self.facts)


def collect_paths(paths: Iterable[str]) -> list[Path]:
    """Spec files as given and, for a directory, every ``*.toml`` below it, sorted
    (default: ``specs/``)."""
    paths = tuple(paths)
    if not paths:
        if not DEFAULT_SPECS.is_dir():
            raise UserError(
                f"no spec given and no {DEFAULT_SPECS}/ directory here; pass SPEC files or directories"
            )
        paths = (str(DEFAULT_SPECS),)
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(path.rglob("*.toml"))
            if not found:
                raise UserError(f"{path}: directory holds no *.toml spec files")
            out.extend(found)
        elif path.exists():
            out.append(path)  # read_toml says what is wrong with anything but a file
        else:
            raise UserError(f"{path}: no such spec file or directory")
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return read_toml(path)
    except SpecError as exc:
        raise UserError(str(exc)) from None


def expectation_of(scenario: Scenario) -> Expectation:
    """The scenario's ``[check]`` (plain, validated values) as an :class:`Expectation`."""
    check = scenario.check
    pins = Pins(**{k: getattr(check, k) for k in PIN_KEYS})
    facts: dict[str, object] = {}
    if check.tracking_method is not None:
        facts["tracking_method"] = check.tracking_method
    if check.blocked_by is not None:
        facts["blocked_by"] = list(check.blocked_by)
    if check.expect is None:
        return Expectation(NO_VIOLATION, pins=pins, facts=facts)
    return Expectation(check.expect.kind, check.expect.invariants, pins, facts, check.expect.several)


def load_target(path: Path) -> Target:
    """An engine-validation example or a VFIO migration scenario, read and parsed once."""
    data = _read_toml(path)
    if "example" in data:
        try:
            spec, expectation, name = load_example(path, data)
        except ExampleError as exc:
            raise UserError(str(exc)) from None
        return Target(path, name, expectation, example=spec)
    try:
        scenario = scenario_from_dict(data, path)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    try:
        decision: TrackingDecision | ChDecision
        if scenario.is_cloud_hypervisor:
            from model.cloud_hypervisor import decision as ch_decision

            decision = ch_decision.decide(scenario)
        else:
            from model.decision.tracking import decide

            decision = decide(scenario)
    except Exception as exc:  # noqa: BLE001 - a bug in the model, reported for this spec only
        return Target(path, scenario.name, expectation_of(scenario), error=f"{type(exc).__name__}: {exc}")
    return Target(path, scenario.name, expectation_of(scenario), Migration(scenario, decision))


def load_targets(paths: Iterable[str]) -> list[Target]:
    """Every spec file under ``paths`` (see :func:`collect_paths`), each validated before any
    is run; two files may not share a name."""
    targets = [load_target(p) for p in collect_paths(paths)]
    names = [t.name for t in targets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"two spec files share the name {dup[0]!r}; names must be unique")
    return targets


def load_migration(path: Path, command: str) -> Migration:
    """A VFIO migration scenario for a command that needs one (``prove``, ``simulate``)."""
    target = load_target(path)
    if target.error is not None:
        raise BrokenTarget(f"{path}: {target.error}")
    if target.migration is None:
        raise not_a_scenario(path, command)
    return target.migration


def not_a_scenario(path: Path, command: str) -> UserError:
    return UserError(f"{path}: an engine-validation example, not a VFIO migration scenario; "
                     f"{command} needs a scenario (see docs/spec-files.md)")
