"""JUnit XML: one ``testsuite`` per spec, one ``testcase`` per property.

A property's test case fails when its result differs from the spec's expectation: an
unexpected violation, or an expected violation that did not happen; the ``outcome`` case
fails when the verdict does (with its one-line reason, e.g. a pinned state count that
differs).  Properties that were
not checked (the run stopped at an earlier violation or a limit) are ``skipped``.
The shape follows the common JUnit schema (testsuites/testsuite/testcase with
failure/skipped/system-out) that CI systems read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from checker.trace import render_text
from checker.verdict import Verdict


def _outcome_case(case: ET.Element, c: Verdict) -> int:
    """The spec's overall expectation (outcome and pins) as its own case, so that blocked,
    limit and pin differences show up too.  Returns the number of failures (0 or 1)."""
    s = c.result.stats
    if not c.matched:
        reason = c.reason or f"expected {c.expectation}, got {c.outcome}"
        ET.SubElement(case, "failure", message=reason).text = reason
    out = ET.SubElement(case, "system-out")
    out.text = f"outcome={c.outcome} distinct={s.distinct} generated={s.generated} depth={s.depth}"
    return 0 if c.matched else 1


def _property_case(case: ET.Element, c: Verdict, name: str, status: str) -> tuple[int, int]:
    """One property: failed when violated unexpectedly or held against the expectation.
    Returns (failures, skipped)."""
    r, exp = c.result, c.expectation
    expected_violation = exp.kind == "violation" and name in exp.names
    violated = status == "violated"
    if status == "unchecked" and not expected_violation:
        ET.SubElement(case, "skipped", message="not checked: the run stopped earlier")
        return 0, 1
    if violated == expected_violation:
        return 0, 0
    msg = f"{name} violated" if violated else f"{name} was expected to be violated but held"
    f = ET.SubElement(case, "failure", message=msg)
    v = r.violation_of(name)
    if violated and v is not None:
        f.text = render_text(v, r.layout)
    return 1, 0


def _suite(root: ET.Element, c: Verdict) -> tuple[int, int]:
    r = c.result
    suite = ET.SubElement(root, "testsuite", name=c.name, file=str(c.path))
    cases = dict(r.properties)
    for v in r.violations:
        cases.setdefault(v.name, "violated")
    exp = c.expectation
    for name in exp.names:
        cases.setdefault(name, "unchecked")
    n_fail = n_skip = 0
    for name, status in [("outcome", "outcome")] + sorted(cases.items()):
        case = ET.SubElement(suite, "testcase", classname=c.name, name=name, time=f"{r.stats.seconds:.3f}")
        if name == "outcome":
            n_fail += _outcome_case(case, c)
            continue
        failed, skipped = _property_case(case, c, name, status)
        n_fail += failed
        n_skip += skipped
    n_cases = len(cases) + 1
    suite.set("tests", str(n_cases))
    suite.set("failures", str(n_fail))
    suite.set("errors", "1" if c.outcome == "error" else "0")
    suite.set("skipped", str(n_skip))
    suite.set("time", f"{r.stats.seconds:.3f}")
    return n_cases, n_fail


def junit_tree(results: Sequence[Verdict]) -> ET.ElementTree:
    return ET.ElementTree(junit_root(results))


def junit_root(results: Sequence[Verdict]) -> ET.Element:
    """The ``testsuites`` element: one suite per verdict."""
    root = ET.Element("testsuites", name="vfio-migcheck")
    total = failures = 0
    for c in results:
        n_cases, n_fail = _suite(root, c)
        total += n_cases
        failures += n_fail
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    # (the common schema has no "skipped" on <testsuites>; it is counted per testsuite)
    ET.indent(root)
    return root


def write_junit(path: Path, results: Sequence[Verdict]) -> None:
    junit_tree(results).write(path, encoding="utf-8", xml_declaration=True)
