"""``vfio-migcheck findings``: the QEMU findings, each re-run on every release.

A finding (:mod:`model.findings`) is a shipped spec that shows QEMU losing data or running a
guest wrong.  Which releases it affects is computed here, never written down: the spec is
loaded once per profile (its ``qemu`` replaced by the release; a spec a release cannot run,
e.g. iommufd before 9.0, is "not applicable" with the loader's reason) and explored in
full.  The proposed fix, where behaviour flags express it, is the same spec with
``qemu = { base = <its release>, <flag> = <value> }`` and must pass.

The same runs feed the report's ``findings/index`` page (:func:`findings_page`).
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from checker.explore import explore
from checker.report.doc import Bullets, Code, Details, Page, Para, Rich, Section, Table, code, link
from checker.result import Result
from checker.trace import render_text
from cli.errors import UserError
from model.decision.tracking import decide
from model.findings import QEMU_FINDINGS, Finding
from model.migration.spec import build_spec
from model.profiles import PROFILE_NAMES
from model.scenario import SpecError, scenario_from_dict

AFFECTED = "violated"
PASSES = "passes"
BLOCKED = "blocked"
NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class Run:
    """One run of a finding's spec: on a release, or with the fix."""

    label: str  # the release, or the patch as written in a spec
    outcome: str  # AFFECTED, PASSES, BLOCKED, NOT_APPLICABLE, or "violates <other>"
    detail: str  # the trace length, the blockers or why it cannot run
    result: Result | None = None

    @property
    def affected(self) -> bool:
        return self.outcome == AFFECTED


@dataclass(frozen=True)
class FindingRun:
    finding: Finding
    release: str  # the release the spec names
    prop: str  # the property it violates
    releases: tuple[Run, ...]
    fix: Run | None  # None: no behaviour flag models the fix

    @property
    def own(self) -> Run:
        return next(r for r in self.releases if r.label == self.release)

    @property
    def affected(self) -> tuple[str, ...]:
        return tuple(r.label for r in self.releases if r.affected)

    @property
    def holds(self) -> bool:
        """The finding still shows on its spec, and the fix (if checked) passes."""
        return self.own.affected and (self.fix is None or self.fix.outcome == PASSES)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: cannot read the finding's spec: {exc}") from None


def _run(data: dict[str, Any], path: Path, label: str, prop: str) -> Run:
    try:
        scenario = scenario_from_dict(data, path)
    except SpecError as exc:
        return Run(label, NOT_APPLICABLE, f"{exc.key}: {exc.message}" if exc.key else exc.message)
    decision = decide(scenario)
    if decision.blocked:
        return Run(label, BLOCKED, ", ".join(decision.blocked_by))
    r = explore(build_spec(scenario, decision=decision))
    v = r.violation
    if v is None:
        return Run(label, PASSES, f"{r.stats.distinct:,} states", r)
    outcome = AFFECTED if v.name == prop else f"violates {v.name}"
    return Run(label, outcome, f"trace of {v.length} states", r)


def run_finding(f: Finding, path: Path | None = None) -> FindingRun:
    """Run ``f``'s spec (default: ``specs/<name>.toml`` here) on every release and, where
    flags express it, with the fix."""
    path = Path(f.spec) if path is None else path
    data = _read(path)
    expect = data.get("check", {}).get("expect")
    if not isinstance(expect, dict) or "violation" not in expect:
        raise UserError(f"{path}: a finding's spec must expect a violation")
    prop = str(expect["violation"])
    qemu = data.get("qemu", "master")
    release = str(qemu["base"] if isinstance(qemu, dict) else qemu)
    runs = tuple(_run({**data, "qemu": name}, path, name, prop) for name in PROFILE_NAMES)
    fix = None
    if f.fix_flags is not None:
        patch = {"base": release, **f.fix_flags}
        label = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in patch.items()) + " }"
        fix = _run({**data, "qemu": patch}, path, label, prop)
    return FindingRun(f, release, prop, runs, fix)


def run_findings(names: Iterable[str] = (),
                 paths: Mapping[str, Path] | None = None) -> list[FindingRun]:
    """The findings called ``names`` (default: all), each from ``paths[name]`` if given."""
    wanted = tuple(names)
    paths = paths or {}
    known = [f.name for f in QEMU_FINDINGS]
    for n in wanted:
        if n not in known:
            raise UserError(f'unknown finding "{n}"; allowed: {", ".join(known)}')
    return [run_finding(f, paths.get(f.name)) for f in QEMU_FINDINGS
            if not wanted or f.name in wanted]


def _ranges(releases: tuple[str, ...]) -> str:
    """Affected releases as runs of consecutive profiles: ``10.0 .. master``."""
    if not releases:
        return "none"
    idx = [PROFILE_NAMES.index(r) for r in releases]
    groups: list[list[int]] = []
    for i in idx:
        if groups and i == groups[-1][-1] + 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return ", ".join(PROFILE_NAMES[g[0]] if len(g) == 1
                     else f"{PROFILE_NAMES[g[0]]} .. {PROFILE_NAMES[g[-1]]}" for g in groups)


def _fix_text(fr: FindingRun) -> str:
    if fr.fix is None:
        return "not checked (no behaviour flag models it)"
    return f"qemu = {fr.fix.label}: {fr.fix.outcome} ({fr.fix.detail})"


def as_json(fr: FindingRun) -> dict[str, Any]:
    own = fr.own
    v = own.result.violation if own.result is not None else None
    return {
        "name": fr.finding.name,
        "title": fr.finding.title,
        "spec": fr.finding.spec,
        "property": fr.prop,
        "release": fr.release,
        "affected_releases": list(fr.affected),
        "releases": {r.label: {"outcome": r.outcome, "detail": r.detail} for r in fr.releases},
        "trace_length": None if v is None else v.length,
        "fix": None if fr.fix is None else {"qemu": fr.fix.label, "outcome": fr.fix.outcome},
        "holds": fr.holds,
    }


@click.command("findings")
@click.argument("names", nargs=-1)
@click.option("--json", "json_out", metavar="FILE|-", help="Write the findings as JSON.")
@click.option("--trace", is_flag=True, help="Print each finding's shortest counterexample.")
def findings(names: tuple[str, ...], json_out: str | None, trace: bool) -> None:
    """Re-run QEMU's findings on every release (run from the repository: specs/).

    Exit 0 when every finding still shows on its spec and every checked fix passes, else 1.
    """
    runs = run_findings(names)
    if json_out == "-":
        click.echo(json.dumps([as_json(fr) for fr in runs], indent=2))
    else:
        for fr in runs:
            own = fr.own
            click.echo(f"{fr.finding.name}: {fr.finding.title}")
            click.echo(f"  spec {fr.finding.spec} ({fr.release}): {own.outcome} {fr.prop}, "
                       f"{own.detail}")
            click.echo(f"  affected releases: {_ranges(fr.affected)}")
            for r in fr.releases:
                if not r.affected:
                    click.echo(f"    {r.label}: {r.outcome} ({r.detail})")
            click.echo(f"  fix: {_fix_text(fr)}")
            if trace and own.result is not None and own.result.violation is not None:
                click.echo(render_text(own.result.violation, own.result.layout))
        if json_out is not None:
            Path(json_out).write_text(json.dumps([as_json(fr) for fr in runs], indent=2) + "\n")
    sys.exit(0 if all(fr.holds for fr in runs) else 1)


# --- the report's page ----------------------------------------------------------------


def _section(fr: FindingRun) -> Section:
    f, own = fr.finding, fr.own
    rows = [[r.label, r.outcome, r.detail] for r in fr.releases]
    kinds = ["bad" if r.affected else "" for r in fr.releases]
    blocks: list[Any] = [
        Para(("Spec ", link(f.spec, f"@specs/{f.name}"), f" ({fr.release}) violates ",
              code(fr.prop), f"; affected releases (each run in full): {_ranges(fr.affected)}.")),
        Table(["release", "result", "detail"], rows, row_kinds=kinds),
        Para(("Configuration: ", f.configuration, ".")),
        Section("Code path", [Bullets(list(f.path))], f"{f.name}-path"),
        Para(("Checked: ", f.checked, "."), kind="note"),
        Para(("Proposed fix: ", f.fix, ". Checked as a profile override: ", _fix_text(fr), ".")),
    ]
    if own.result is not None and own.result.violation is not None:
        v = own.result.violation
        blocks.append(Details(f"Shortest counterexample ({v.length} states)",
                              [Code(render_text(v, own.result.layout))]))
    return Section(f.title, blocks, f.name)


def findings_page(runs: list[FindingRun]) -> Page:
    page = Page("findings/index", "QEMU findings")
    page.intro = ("Behaviours the model shows QEMU losing data or running a guest wrong. "
                  "Each finding's spec is run on every release profile (its ",
                  code("qemu"), " replaced; a release that cannot run the configuration is "
                  "not applicable), and the proposed fix, where behaviour flags express it, "
                  "runs as ", code("qemu = { base = ..., <flag> = ... }"),
                  ". Re-run in a terminal with ", code("vfio-migcheck findings"), ".")
    summary: list[list[Rich]] = [[link(fr.finding.name, f"#{fr.finding.name}"), code(fr.prop),
                _ranges(fr.affected),
                "-" if fr.own.result is None or fr.own.result.violation is None
                else str(fr.own.result.violation.length),
                "not checked" if fr.fix is None else fr.fix.outcome] for fr in runs]
    page.blocks.append(Table(["finding", "property", "affected releases", "trace", "fix"],
                             summary, numeric=frozenset({3})))
    page.blocks += [_section(fr) for fr in runs]
    return page
