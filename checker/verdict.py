"""Does a check's outcome match what the spec's author expects: the one meaning of "matched".

A spec file's ``[check]`` states an :class:`Expectation`: the outcome (``"pass"``,
``"blocked"``, ``{ violation = "NAME" }``, or nothing: any outcome but a violation) and,
optionally, :class:`Pins`: the exact size of the exploration (``distinct_states``,
``generated_states``, ``depth``) and, where a violation is expected, the number of states of
its shortest counterexample (``trace_length``), as TLA+ example manifests record TLC's
figures for each spec.  :func:`judge` compares one :class:`~checker.result.Result` with it and gives a
:class:`Verdict`; :func:`exit_code` turns the verdicts of a run into the exit status.

Decisions (the contract of ``check``):

* A run stopped by a limit (or Ctrl-C) never matches, and its pins are not compared (a
  partial exploration says nothing about the sizes); ``check`` exits 3 for it (130 when
  interrupted), not 1: the spec may be right, the run just did not decide.
* ``"blocked"`` is a pass of a spec whose front end says the run was refused before it
  started (the front end knows why: the checker does not); the explorer itself only knows
  ``pass``.
* Pins are compared on every complete run, also one that ended at the expected violation
  (the explorer stops there, in breadth-first order, so the figures at that point are as
  deterministic as a pass's).  A pin that differs makes the verdict fail (exit 1) with a
  one-line reason such as ``expected 650 distinct states, explored 651``: a change of the
  model's semantics shows in ``check`` itself, not only in the test suite.  The outcome is
  judged first: an unexpected outcome is reported as such, not as a pin difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.result import Result

# Exit codes of ``check`` (a contract: CI scripts read them).
EXIT_OK = 0  # every outcome matched its expectation
EXIT_MISMATCH = 1  # an unexpected violation, an expected one that did not happen, a pin differs
EXIT_USAGE = 2  # a usage or spec-file error (one line, never a traceback)
EXIT_LIMIT = 3  # a limit stopped a run before a verdict
EXIT_INTERRUPTED = 130  # Ctrl-C

# Outcomes a verdict can have; "limit" also stands for an interrupted run.
PASS, BLOCKED, VIOLATION, LIMIT = "pass", "blocked", "violation", "limit"
NO_VIOLATION = "no-violation"  # the expectation of a spec without ``expect``

#: The pin keys of ``[check]`` and what each counts (docs/spec-files.md says the same).
PIN_KEYS: dict[str, str] = {
    "distinct_states": "distinct states",
    "generated_states": "generated states",
    "depth": "depth",  # the BFS depth reached (TLC's "depth of the complete state graph")
    "trace_length": "states in the counterexample",
}


class ExpectError(ValueError):
    """A ``[check]`` value a user got wrong; ``str()`` is one line naming file and key."""


@dataclass(frozen=True)
class Pins:
    """The exact figures of a complete exploration, as the spec file states them."""

    distinct_states: int | None = None
    generated_states: int | None = None
    depth: int | None = None
    trace_length: int | None = None  # states in the counterexample (TLC's count)

    def stated(self) -> dict[str, int]:
        return {k: v for k in PIN_KEYS if (v := getattr(self, k)) is not None}

    def differences(self, result: Result) -> list[str]:
        """One phrase per pin the result does not meet, e.g. ``expected 650 distinct states,
        explored 651`` (empty when every stated pin holds)."""
        s = result.stats
        seen = {
            "distinct_states": s.distinct,
            "generated_states": s.generated,
            "depth": s.depth,
            "trace_length": result.violation.length if result.violation is not None else None,
        }
        out = []
        for key, want in self.stated().items():
            got = seen[key]
            if got == want:
                continue
            if key == "trace_length":
                out.append(f"expected a counterexample of {want} states, "
                           + ("found none" if got is None else f"found {got}"))
            elif key == "depth":
                out.append(f"expected depth {want}, explored {got}")
            else:
                out.append(f"expected {want} {PIN_KEYS[key]}, explored {got}")
        return out


@dataclass(frozen=True)
class Expectation:
    """What a spec's author expects of a check: an outcome and, optionally, pins."""

    kind: str  # PASS | BLOCKED | VIOLATION | NO_VIOLATION (no expect given)
    name: str | None = None  # the property expected to be violated (kind VIOLATION)
    pins: Pins = field(default_factory=Pins)

    def as_json(self) -> Any:
        if self.kind == NO_VIOLATION:
            return None
        return {"violation": self.name} if self.kind == VIOLATION else self.kind

    def short(self) -> str:
        if self.kind == NO_VIOLATION:
            return "(no violation)"
        return f"violation: {self.name}" if self.kind == VIOLATION else self.kind

    def __str__(self) -> str:
        return f"violation of {self.name}" if self.kind == VIOLATION else self.kind

    def outcome_matches(self, outcome: str, violated: str | None) -> bool:
        """Whether an outcome (after :func:`outcome_of`) is the expected one."""
        if outcome == LIMIT:
            return False
        if self.kind == NO_VIOLATION:
            return outcome in (PASS, BLOCKED)
        if self.kind == VIOLATION:
            return outcome == VIOLATION and violated == self.name
        return outcome == self.kind


@dataclass
class Verdict:
    """One spec's result judged against its expectation (general: names no domain)."""

    name: str
    path: Path
    expectation: Expectation
    result: Result
    outcome: str  # PASS | BLOCKED | VIOLATION | LIMIT
    matched: bool
    reason: str | None = None  # one line: why it did not match (None when it did)


def outcome_of(result: Result, *, blocked: bool = False) -> str:
    """The explorer's outcome as a verdict names it: an interrupted run counts as stopped by
    a limit; a pass of a spec refused before it started is ``blocked``."""
    if result.outcome == "interrupted":
        return LIMIT
    if result.outcome == PASS and blocked:
        return BLOCKED
    return str(result.outcome)


def judge(
    expectation: Expectation,
    result: Result,
    *,
    name: str,
    path: Path,
    blocked: bool = False,
    stopped_by: str | None = None,
) -> Verdict:
    """``stopped_by``: the front end's words for the limit that stopped the run (it names
    its own options); without them the bare :class:`~checker.result.Limit` is named."""
    outcome = outcome_of(result, blocked=blocked)
    violated = result.violation.name if result.violation is not None else None
    if outcome == LIMIT:
        why = "interrupted" if result.outcome == "interrupted" else f"stopped by {stopped_by or result.limit}"
        return Verdict(name, path, expectation, result, outcome, False, f"{why} before a verdict")
    if not expectation.outcome_matches(outcome, violated):
        got = f"violation of {violated}" if outcome == VIOLATION else outcome
        return Verdict(name, path, expectation, result, outcome, False,
                       f"expected {expectation}, got {got}")
    differences = expectation.pins.differences(result)
    if differences:
        return Verdict(name, path, expectation, result, outcome, False, "; ".join(differences))
    return Verdict(name, path, expectation, result, outcome, True)


def exit_code(verdicts: Sequence[Verdict], interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if any(v.outcome != LIMIT and not v.matched for v in verdicts):
        return EXIT_MISMATCH
    if any(v.outcome == LIMIT for v in verdicts):
        return EXIT_LIMIT
    return EXIT_OK


# --- reading [check] of an engine-validation example ---------------------------------------
# (Other spec files validate their own [check], in their own words, and the front end turns
# the plain values into an Expectation: cli.load does so for the model's scenarios.)


def parse_expect(path: Path, value: Any, allowed_names: Sequence[str] | None = None) -> Expectation:
    """An example's ``check.expect`` (``"pass"``, ``"blocked"`` or ``{ violation = NAME }``)."""
    where = f"{path}: check.expect"
    if isinstance(value, str):
        if value not in (PASS, BLOCKED):
            raise ExpectError(
                f'{where}: {value!r} is not allowed; use "pass", "blocked" or {{ violation = "NAME" }}'
            )
        return Expectation(value)
    if isinstance(value, dict) and set(value) == {"violation"} and isinstance(value["violation"], str):
        name = value["violation"]
        if allowed_names is not None and name not in allowed_names:
            raise ExpectError(f"{where}: unknown property {name!r}; allowed: {', '.join(allowed_names)}")
        return Expectation(VIOLATION, name)
    raise ExpectError(f'{where}: must be "pass", "blocked" or {{ violation = "NAME" }}, got {value!r}')


def parse_pins(path: Path, table: Mapping[str, Any], expectation: Expectation) -> Expectation:
    """``expectation`` with the pins of an example's ``[check]`` (other keys are the caller's)."""
    values: dict[str, int] = {}
    for key in PIN_KEYS:
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExpectError(f"{path}: check.{key}: must be an integer >= 1, got {value!r}")
        values[key] = value
    if "trace_length" in values and expectation.kind != VIOLATION:
        raise ExpectError(f"{path}: check.trace_length: only an expected violation has a "
                          f"counterexample (expect is {expectation.short()!r})")
    return Expectation(expectation.kind, expectation.name, Pins(**values))
