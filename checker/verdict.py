"""Does a check's outcome match what the spec's author expects: the one meaning of "matched".

A spec file's ``[check]`` states an :class:`Expectation`: the outcome (``"pass"``,
``"blocked"``, ``{ violation = "NAME" }``, or nothing: any outcome but a violation).
:func:`judge` compares one :class:`~checker.result.Result` with it and gives a
:class:`Verdict`; :func:`exit_code` turns the verdicts of a run into the exit status.

Decisions (the contract of ``check``):

* A run stopped by a limit (or Ctrl-C) never matches; ``check`` exits 3 for it (130 when
  interrupted), not 1: the spec may be right, the run just did not decide.
* ``"blocked"`` is a pass of a spec whose front end says the run was refused before it
  started (for a migration: QEMU's migration blockers); the explorer itself only knows
  ``pass``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.result import Result

# Exit codes of ``check`` (a contract: CI scripts read them).
EXIT_OK = 0  # every outcome matched its expectation
EXIT_MISMATCH = 1  # an unexpected violation, or an expected one that did not happen
EXIT_USAGE = 2  # a usage or spec-file error (one line, never a traceback)
EXIT_LIMIT = 3  # a limit stopped a run before a verdict
EXIT_INTERRUPTED = 130  # Ctrl-C

# Outcomes a verdict can have; "limit" also stands for an interrupted run.
PASS, BLOCKED, VIOLATION, LIMIT = "pass", "blocked", "violation", "limit"
NO_VIOLATION = "no-violation"  # the expectation of a spec without ``expect``


class ExpectError(ValueError):
    """A ``[check]`` value a user got wrong; ``str()`` is one line naming file and key."""


@dataclass(frozen=True)
class Expectation:
    """What a spec's author expects of a check."""

    kind: str  # PASS | BLOCKED | VIOLATION | NO_VIOLATION (no expect given)
    name: str | None = None  # the property expected to be violated (kind VIOLATION)

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
    expectation: Expectation, result: Result, *, name: str, path: Path, blocked: bool = False
) -> Verdict:
    outcome = outcome_of(result, blocked=blocked)
    violated = result.violation.name if result.violation is not None else None
    if outcome == LIMIT:
        why = "interrupted" if result.outcome == "interrupted" else f"stopped by {result.limit}"
        return Verdict(name, path, expectation, result, outcome, False, f"{why} before a verdict")
    if not expectation.outcome_matches(outcome, violated):
        got = f"violation of {violated}" if outcome == VIOLATION else outcome
        return Verdict(name, path, expectation, result, outcome, False,
                       f"expected {expectation}, got {got}")
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
# (A migration scenario's [check] is validated by model.scenario, which may not import this
# module; cli.load turns its plain value into an Expectation.)


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
