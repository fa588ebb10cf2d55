"""Spec files for the engine-validation examples (``example = "TwoPhase"``).

These let ``vfio-migcheck check`` run the TLC reference specs like any other spec file::

    example = "TwoPhase"        # "TCommit" | "TwoPhase"
    rms = 3                     # number of resource managers, 1..10
    broken = "commit-too-early" # optional deliberately wrong variant
    [check]
    expect = { violation = "TCConsistent" }
    distinct_states = 110       # optional pins (checker.verdict.Pins)
    trace_length = 4
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from checker.examples.transaction_commit import tcommit, two_phase
from checker.lang.spec import Spec, name_problem, text_problem
from checker.verdict import PIN_KEYS, Expectation, ExpectError, parse_expect, parse_pins

EXAMPLES = ("TCommit", "TwoPhase")
BROKEN = ("commit-too-early", "no-abort-message", "lost-commit")
TOP_KEYS = ("example", "name", "description", "rms", "broken", "check")


class ExampleError(ValueError):
    """A mistake in an example file: ``str()`` is one line naming the file and the key."""


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
    check_keys = tuple(f"check.{k}" for k in ("expect", *PIN_KEYS))
    for key in check:
        if f"check.{key}" not in check_keys:
            raise _unknown(path, f"check.{key}", check_keys)
    names = list(spec.invariants) + list(spec.liveness) + ["Deadlock"]
    try:
        expect = parse_pins(path, check, parse_expect(path, check.get("expect", "pass"), names))
    except ExpectError as exc:
        raise ExampleError(str(exc)) from None
    spec.name = _name(path, data)
    if "description" in data:
        description = data["description"]
        problem = "is not a string" if not isinstance(description, str) else text_problem(description)
        if problem is not None:
            raise ExampleError(f"{path}: description: {problem}")
        spec.description = description
    return spec, expect, spec.name


def _name(path: Path, data: dict[str, Any]) -> str:
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        raise ExampleError(f"{path}: name: must be a string, got {name!r}")
    problem = name_problem(name)
    if problem is not None:
        given = "name" in data
        what = f"{name!r}" if given else f"not given, and the file name {name!r}"
        raise ExampleError(f"{path}: name: {what} {problem}")
    return name
