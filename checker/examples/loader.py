"""Spec files for the engine-validation examples (``example = "TwoPhase"``).

These let ``vfio-migcheck check`` run the TLC reference specs like any other spec file::

    example = "TwoPhase"        # "TCommit" | "TwoPhase"
    rms = 3                     # number of resource managers, 1..10
    broken = "commit-too-early" # optional deliberately wrong variant
    [check]
    expect = { violation = "TCConsistent" }
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.examples.transaction_commit import tcommit, two_phase
from checker.lang.spec import Spec

EXAMPLES = ("TCommit", "TwoPhase")
BROKEN = ("commit-too-early", "no-abort-message", "lost-commit")
TOP_KEYS = ("example", "name", "description", "rms", "broken", "check")


class ExampleError(ValueError):
    pass


@dataclass(frozen=True)
class Expectation:
    kind: str  # "pass" | "blocked" | "violation" | "no-violation" (no expect given)
    name: str | None = None

    def as_json(self) -> Any:
        if self.kind == "no-violation":
            return None
        return {"violation": self.name} if self.kind == "violation" else self.kind

    def short(self) -> str:
        if self.kind == "no-violation":
            return "(no violation)"
        return f"violation: {self.name}" if self.kind == "violation" else self.kind

    def __str__(self) -> str:
        return f"violation of {self.name}" if self.kind == "violation" else self.kind


def parse_expect(path: Path, value: Any, allowed_names: list[str] | None = None) -> Expectation:
    where = f"{path}: check.expect"
    if isinstance(value, str):
        if value not in ("pass", "blocked"):
            raise ExampleError(
                f'{where}: {value!r} is not allowed; use "pass", "blocked" or {{ violation = "NAME" }}'
            )
        return Expectation(value)
    if isinstance(value, dict) and set(value) == {"violation"} and isinstance(value["violation"], str):
        name = value["violation"]
        if allowed_names is not None and name not in allowed_names:
            raise ExampleError(f"{where}: unknown property {name!r}; allowed: {', '.join(allowed_names)}")
        return Expectation("violation", name)
    raise ExampleError(f'{where}: must be "pass", "blocked" or {{ violation = "NAME" }}, got {value!r}')


def _unknown(path: Path, key: str, allowed: tuple[str, ...]) -> ExampleError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ExampleError(f"{path}: {key}: unknown key{hint}; allowed: {', '.join(allowed)}")


def load_example(path: Path, data: dict[str, Any]) -> tuple[Spec, Expectation, str]:
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(path, key, TOP_KEYS)
    kind = data["example"]
    if kind not in EXAMPLES:
        raise ExampleError(f"{path}: example: {kind!r} is not known; allowed: {', '.join(EXAMPLES)}")
    rms = data.get("rms", 3)
    if not isinstance(rms, int) or isinstance(rms, bool) or not 1 <= rms <= 10:
        raise ExampleError(f"{path}: rms: must be an integer in 1..10, got {rms!r}")
    broken = data.get("broken")
    if broken is not None:
        if kind != "TwoPhase" or broken not in BROKEN:
            raise ExampleError(
                f"{path}: broken: {broken!r} is not allowed; TwoPhase allows {', '.join(BROKEN)}"
            )
    spec = tcommit(rms) if kind == "TCommit" else two_phase(rms, broken)
    check = data.get("check", {})
    if not isinstance(check, dict):
        raise ExampleError(f"{path}: check: must be a table")
    for key in check:
        if key != "expect":
            raise _unknown(path, f"check.{key}", ("check.expect",))
    names = list(spec.invariants) + list(spec.liveness) + ["Deadlock"]
    expect = parse_expect(path, check.get("expect", "pass"), names)
    spec.name = data.get("name", path.stem)
    if "description" in data:
        spec.description = str(data["description"])
    return spec, expect, spec.name
