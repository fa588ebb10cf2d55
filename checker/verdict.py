"""Does a check's outcome match what the spec's author expects: the one meaning of "matched".

A spec file's ``[check]`` states an :class:`Expectation`: the outcome (``"pass"``,
``"blocked"``, ``{ violation = "NAME" }``, ``{ violations = ["A", "B"] }``, or nothing: any
outcome but a violation), optionally *facts* the front end knows about the run before it
starts (for a migration spec: QEMU's tracking method and the blockers it installs) and
:class:`Pins`: the exact size of the exploration (``distinct_states``,
``generated_states``, ``depth``) and the number of states of each expected
counterexample (``trace_length``), as TLA+ example manifests record TLC's figures for
each spec.  :func:`judge` compares one :class:`~checker.result.Result` with it and gives a
:class:`Verdict`; :func:`exit_code` turns the verdicts of a run into the exit status.

Decisions (the contract of ``check``):

* The explorer reports every violated property.  ``{ violation = "A" }`` matches when A is
  among them; ``{ violations = ["A", "B"] }`` when both are (others may be violated too).
* Facts are compared first, before the outcome: they do not depend on the exploration, so
  a differing fact is a mismatch even when a limit stopped the run.
* A run stopped by a limit (or Ctrl-C) compares no pins (a partial exploration says
  nothing about the sizes).  It has a verdict only when what it found already decides
  one: a violation the spec does not expect (a mismatch), or every expected violation of
  a spec that pins nothing; otherwise its outcome is ``limit`` and ``check`` exits 3 (130
  when interrupted), not 1: the spec may be right, the run just did not decide.
* A run that raised (``error``) never matches; ``check`` exits 4 for it.
* ``"blocked"`` is a pass of a spec whose front end says the run was refused before it
  started (the front end knows why: the checker does not); the explorer itself only knows
  ``pass``.
* Pins are compared on every complete run.  A pin that differs makes the verdict fail
  (exit 1) with a one-line reason such as ``expected 650 distinct states, explored 651``:
  a change of the model's semantics shows in ``check`` itself, not only in the test
  suite.  The outcome is judged before the pins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.result import Outcome, Result

# Exit codes of every command (a contract: CI scripts read them).
EXIT_OK = 0  # every outcome matched its expectation
EXIT_MISMATCH = 1  # an unexpected violation, an expected one that did not happen, a pin differs
EXIT_USAGE = 2  # a usage or spec-file error (one line, never a traceback)
EXIT_LIMIT = 3  # a limit stopped a run before a verdict (or a solver could not decide)
EXIT_INTERNAL = 4  # an internal error: a bug in the tool, not in the spec
EXIT_INTERRUPTED = 130  # Ctrl-C

# Outcomes a verdict can have; "limit" also stands for an interrupted run.
PASS, BLOCKED, VIOLATION, LIMIT, ERROR = "pass", "blocked", "violation", "limit", "error"
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


TraceLengths = int | Mapping[str, int]


@dataclass(frozen=True)
class Pins:
    """The exact figures of a complete exploration, as the spec file states them.

    ``trace_length``: the states of the expected violation's counterexample, or (several
    expected) a table ``{property: states}``."""

    distinct_states: int | None = None
    generated_states: int | None = None
    depth: int | None = None
    trace_length: TraceLengths | None = None

    def stated(self) -> dict[str, Any]:
        return {k: v for k in PIN_KEYS if (v := getattr(self, k)) is not None}

    def differences(self, result: Result, expected: Sequence[str] = ()) -> list[str]:
        """One phrase per pin the result does not meet, e.g. ``expected 650 distinct states,
        explored 651`` (empty when every stated pin holds); ``expected``: the properties
        the spec expects violated (an integer ``trace_length`` is the first one's)."""
        s = result.stats
        seen = {"distinct_states": s.distinct, "generated_states": s.generated, "depth": s.depth}
        out = []
        for key, want in self.stated().items():
            if key == "trace_length":
                out += _trace_differences(result, want, expected)
                continue
            got = seen[key]
            if got == want:
                continue
            if key == "depth":
                out.append(f"expected depth {want}, explored {got}")
            else:
                out.append(f"expected {want} {PIN_KEYS[key]}, explored {got}")
        return out


def _trace_differences(result: Result, want: TraceLengths, expected: Sequence[str]) -> list[str]:
    lengths = dict(want) if isinstance(want, Mapping) else {expected[0] if expected else "": want}
    out = []
    several = len(lengths) > 1 or isinstance(want, Mapping)
    for name, n in lengths.items():
        v = result.violation_of(name) if name else result.violation
        got = None if v is None else v.length
        if got == n:
            continue
        of = f" of {name}" if several else ""
        found = "found none" if got is None else f"found {got}"
        out.append(f"expected a counterexample{of} of {n} states, {found}")
    return out


@dataclass(frozen=True)
class Expectation:
    """What a spec's author expects of a check: an outcome, facts about the run, pins."""

    kind: str  # PASS | BLOCKED | VIOLATION | NO_VIOLATION (no expect given)
    names: tuple[str, ...] = ()  # the properties expected to be violated (kind VIOLATION)
    pins: Pins = field(default_factory=Pins)
    facts: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"tracking_method": "type1"}
    several: bool = False  # written as { violations = [...] }

    @property
    def name(self) -> str | None:
        """The (first) property expected to be violated."""
        return self.names[0] if self.names else None

    def as_json(self) -> Any:
        if self.kind == NO_VIOLATION:
            return None
        if self.kind == VIOLATION:
            return {"violations": list(self.names)} if self.several else {"violation": self.name}
        return self.kind

    def short(self) -> str:
        if self.kind == NO_VIOLATION:
            return "(no violation)"
        if self.kind == VIOLATION:
            return ("violations: " if self.several else "violation: ") + ", ".join(self.names)
        return self.kind

    def __str__(self) -> str:
        if self.kind == VIOLATION:
            return "violation of " + " and ".join(self.names)
        return self.kind

    def outcome_matches(self, outcome: str, violated: Collection[str]) -> bool:
        """Whether an outcome (after :func:`outcome_of`) and the violated properties are
        the expected ones."""
        if outcome in (LIMIT, ERROR):
            return False
        if self.kind == NO_VIOLATION:
            return outcome in (PASS, BLOCKED)
        if self.kind == VIOLATION:
            return outcome == VIOLATION and set(self.names) <= set(violated)
        return outcome == self.kind


@dataclass
class Verdict:
    """One spec's result judged against its expectation (general: names no domain)."""

    name: str
    path: Path
    expectation: Expectation
    result: Result
    outcome: str  # PASS | BLOCKED | VIOLATION | LIMIT | ERROR
    matched: bool
    reason: str | None = None  # one line: why it did not match (None when it did)


def outcome_of(result: Result, *, blocked: bool = False) -> str:
    """The explorer's outcome as a verdict names it: an interrupted run counts as stopped by
    a limit; a pass of a spec refused before it started is ``blocked``."""
    if result.outcome == Outcome.INTERRUPTED:
        return LIMIT
    if result.outcome == PASS and blocked:
        return BLOCKED
    return str(result.outcome)


def _fact_differences(expectation: Expectation, facts: Mapping[str, Any]) -> list[str]:
    """A list fact compares as a set (order and repeats do not matter)."""
    out = []
    for key, want in expectation.facts.items():
        got = facts.get(key)
        if isinstance(want, list | tuple):
            got_list = sorted(set(got or ()))
            if sorted(set(want)) != got_list:
                out.append(f"expected {key} [{', '.join(want)}], got [{', '.join(got_list)}]")
        elif want != got:
            out.append(f"expected {key} {want}, got {got}")
    return out


def _got(outcome: str, violated: Sequence[str]) -> str:
    return "violation of " + ", ".join(violated) if outcome == VIOLATION else outcome


def judge(
    expectation: Expectation,
    result: Result,
    *,
    name: str,
    path: Path,
    blocked: bool = False,
    stopped_by: str | None = None,
    facts: Mapping[str, Any] | None = None,
) -> Verdict:
    """``stopped_by``: the front end's words for the limit that stopped the run (it names
    its own options); without them the bare :class:`~checker.result.Limit` is named.
    ``facts``: what the front end knows of the run, compared with ``expectation.facts``."""

    def verdict(outcome: str, reason: str | None = None) -> Verdict:
        return Verdict(name, path, expectation, result, outcome, reason is None, reason)

    outcome = outcome_of(result, blocked=blocked)
    violated = [v.name for v in result.violations]
    if outcome == ERROR:
        return verdict(ERROR, f"internal error: {result.error}")
    differences = _fact_differences(expectation, facts or {})
    if differences:
        return verdict(VIOLATION if violated else outcome, "; ".join(differences))
    if result.limit is not None or result.outcome in (Outcome.LIMIT, Outcome.INTERRUPTED):
        return _judge_stopped(expectation, result, violated, stopped_by, verdict)
    if not expectation.outcome_matches(outcome, violated):
        return verdict(outcome, f"expected {expectation}, got {_got(outcome, violated)}")
    differences = expectation.pins.differences(result, expectation.names)
    if differences:
        return verdict(outcome, "; ".join(differences))
    return verdict(outcome)


def _judge_stopped(expectation: Expectation, result: Result, violated: list[str], stopped_by: str | None,
                   verdict: Callable[..., Verdict]) -> Verdict:
    """A run a limit or Ctrl-C stopped: a verdict only when what it found decides one."""
    interrupted = result.outcome == Outcome.INTERRUPTED
    why = "interrupted" if interrupted else f"stopped by {stopped_by or result.limit}"
    if not interrupted and violated and expectation.kind != VIOLATION:
        return verdict(VIOLATION, f"expected {expectation}, got {_got(VIOLATION, violated)} "
                                  f"({why} before the search ended)")
    if (not interrupted and expectation.outcome_matches(VIOLATION if violated else LIMIT, violated)
            and not expectation.pins.stated()):
        return verdict(VIOLATION)
    found = f" (found: {', '.join(violated)})" if violated else ""
    return verdict(LIMIT, f"{why} before a verdict{found}")


def exit_code(verdicts: Sequence[Verdict], interrupted: bool) -> int:
    """130 interrupted; 4 a run raised; 1 a mismatch; 3 a run undecided (a limit); 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if any(v.outcome == ERROR for v in verdicts):
        return EXIT_INTERNAL
    if any(v.outcome != LIMIT and not v.matched for v in verdicts):
        return EXIT_MISMATCH
    if any(v.outcome == LIMIT for v in verdicts):
        return EXIT_LIMIT
    return EXIT_OK


# --- reading [check] of an engine-validation example ---------------------------------------
# (Other spec files validate their own [check], in their own words, and the front end turns
# the plain values into an Expectation: cli.load does so for the model's scenarios.)

_EXPECT_FORM = '"pass", "blocked", { violation = "NAME" } or { violations = ["NAME", ...] }'


def parse_expect(path: Path, value: Any, allowed_names: Sequence[str] | None = None) -> Expectation:
    """An example's ``check.expect``: ``"pass"``, ``"blocked"``, ``{ violation = NAME }`` or
    ``{ violations = [NAME, ...] }``."""
    where = f"{path}: check.expect"
    if isinstance(value, str):
        if value not in (PASS, BLOCKED):
            raise ExpectError(f"{where}: {value!r} is not allowed; use {_EXPECT_FORM}")
        return Expectation(value)
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("violation", "violations"):
        several = "violations" in value
        names = value["violations"] if several else [value["violation"]]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ExpectError(f"{where}: violations: must be a non-empty array of property names")
        for n in names:
            if allowed_names is not None and n not in allowed_names:
                raise ExpectError(f"{where}: unknown property {n!r}; allowed: {', '.join(allowed_names)}")
        if len(set(names)) != len(names):
            raise ExpectError(f"{where}: violations: a property is listed twice")
        return Expectation(VIOLATION, tuple(names), several=several)
    raise ExpectError(f"{where}: must be {_EXPECT_FORM}, got {value!r}")


def parse_pins(path: Path, table: Mapping[str, Any], expectation: Expectation) -> Expectation:
    """``expectation`` with the pins of an example's ``[check]`` (other keys are the caller's)."""
    values: dict[str, Any] = {}
    for key in PIN_KEYS:
        if key not in table:
            continue
        value = table[key]
        if key == "trace_length" and isinstance(value, dict):
            values[key] = _trace_table(path, value, expectation)
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 62:
            raise ExpectError(f"{path}: check.{key}: must be an integer >= 1, got {value!r}")
        values[key] = value
    if "trace_length" in values and expectation.kind != VIOLATION:
        raise ExpectError(f"{path}: check.trace_length: only an expected violation has a "
                          f"counterexample (expect is {expectation.short()!r})")
    if isinstance(values.get("trace_length"), int) and len(expectation.names) > 1:
        raise ExpectError(f"{path}: check.trace_length: several violations are expected; give "
                          "a table { NAME = states, ... }")
    return Expectation(expectation.kind, expectation.names, Pins(**values), expectation.facts,
                       expectation.several)


def _trace_table(path: Path, value: Mapping[str, Any], expectation: Expectation) -> dict[str, int]:
    for name, n in value.items():
        if name not in expectation.names:
            raise ExpectError(f"{path}: check.trace_length: {name!r} is not an expected violation")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1 << 62:
            raise ExpectError(f"{path}: check.trace_length.{name}: must be an integer >= 1, got {n!r}")
    return dict(value)
