"""``vfio-migcheck report``: reviewable reports of the shipped specs (docs/design.md#cli, docs/reports.md).

Writes a static HTML site (``index.html`` and a page per spec) and the same pages as
Markdown (``README.md`` and ``specs/*.md``, readable on a git forge), the state graphs as
SVG, counterexamples as ITF JSON, and ``results.json`` / ``junit.xml`` for CI.  Nothing
written depends on the machine, the time or the run: no timestamps, no wall times, no
absolute paths.  ``--check`` regenerates in memory and compares byte for byte with the
output directory: exit 1 listing the stale files, 0 when everything is fresh.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import click

from checker.explore import Limits
from checker.junit import junit_root
from checker.report.doc import Block, Page, Para, Section, code, link
from checker.report.graphs import draw, explore_graph
from checker.report.pages import SpecEntry, index_page, machine_readable, spec_page
from checker.report.site import OutsideRoot, Site, compare_site, write_site
from checker.result import Outcome, Result
from checker.verdict import Verdict
from cli import report_ch
from cli import report_vfio as vfio
from cli.check import explore_target
from cli.errors import UserError
from cli.findings import findings_page, run_findings
from cli.graph import GRAPH_MAX_STATES, default_quotient
from cli.limits import stopped_by
from cli.load import Target, load_targets
from cli.options import writable_dir
from model.findings import QEMU_FINDINGS

DEFAULT_OUTPUT = Path("reports")
SITE_TITLE = "vfio-migcheck: VFIO live migration, checked"
NAV_TITLES = {"fsm": "Device FSM", "executor": "Executor", "proofs": "z3 tables and proofs"}
ENGINE_GROUP = "Engine validation (TLC reference specs)"
# The index lists the migration scenarios by VMM, then the engine's reference specs.
VMM_GROUPS = {"qemu": "Migration scenarios: QEMU",
              "cloud-hypervisor": "Migration scenarios: cloud-hypervisor"}
GROUP_ORDER = (*VMM_GROUPS.values(), ENGINE_GROUP)


def display_path(path: Path) -> str:
    """A path as reports show it: relative to the working directory, never absolute."""
    try:
        rel = os.path.relpath(path.resolve(), Path.cwd().resolve())
    except ValueError:
        return path.name
    return Path(rel).as_posix() if not rel.startswith("..") else path.name


def _graph_for(t: Target, r: Result, *, max_states: int):
    """The drawing of a spec's reachable graph, or (None, why)."""
    sg = r.graph_data
    if sg is None:
        sg = explore_graph(t.spec, max_states=max_states)
        if sg is None:
            return None, f"more than {max_states:,} reachable states"
    path = [step.row for step in r.violation.trace] if r.violation is not None else []
    g = draw(sg, t.spec.layout, name=t.name, spec=t.spec, quotient=default_quotient(t.spec), path=path)
    return g, None


def _junit_without_times(results: Sequence[Verdict]) -> bytes:
    root = junit_root(results)
    for el in root.iter():
        el.attrib.pop("time", None)
        if el.tag == "testsuite":
            el.attrib.pop("file", None)
    # the suites' file attribute is the path given on the command line; put back the
    # repository-relative form so the bytes do not depend on how the command was called
    for suite, c in zip(root.iter("testsuite"), results, strict=True):
        suite.set("file", display_path(c.path))
    out = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out + b"\n"


def _check_entry(t: Target, *, quiet: bool, max_states: int | None) -> tuple[SpecEntry, Verdict]:
    """Explore one spec (keeping its graph for the drawing), judge it, and make its entry."""
    if not quiet:
        click.echo(f"report: checking {t.name} ({display_path(t.path)})", err=True)
    r = explore_target(t, Limits(states=max_states), keep_graph=True)
    if r.outcome == Outcome.INTERRUPTED:
        raise KeyboardInterrupt
    c = t.judge(r)
    if r.outcome == Outcome.ERROR:
        graph, missing = None, f"the exploration failed: {r.error}"
    else:
        graph, missing = _graph_for(t, r, max_states=GRAPH_MAX_STATES)
    exp = t.expectation
    entry = SpecEntry(
        name=t.name,
        file=display_path(t.path),
        group=ENGINE_GROUP if t.migration is None else VMM_GROUPS[t.migration.vmm],
        description=t.spec.description,
        spec=t.spec,
        result=r,
        outcome=c.outcome,
        expected=exp.short(),
        expected_violation=exp.name if exp.kind == "violation" else None,
        matched=c.matched,
        stopped_by=stopped_by(r),
        graph=graph,
        graph_missing=missing,
    )
    return entry, c


def _machine_readable_section() -> Section:
    return Section(
        "Machine-readable output",
        [
            Para(
                (
                    link("results.json", "results.json"),
                    " (the ",
                    code("check --json"),
                    " shape without wall times), ",
                    link("junit.xml", "junit.xml"),
                    " (one suite per spec, one case per property), and each counterexample as "
                    "ITF JSON under ",
                    code("traces/"),
                    ". Regenerate with ",
                    code("vfio-migcheck report"),
                    "; CI runs ",
                    code("vfio-migcheck report --check"),
                    ".",
                )
            )
        ],
        "machine-readable",
    )


INTRO = (
    "Every shipped spec explored exhaustively: the scenario, its VMM's dirty-tracking choice and "
    "blockers (QEMU's, or cloud-hypervisor's refusals), each property's result, action coverage, "
    "shortest counterexamples and the state graph. Statistics are TLC's (distinct and "
    "generated states, depth); no wall times, so the pages are reproducible."
)


class _VfioPages:
    """The VFIO parts of the site: per migration spec its scenario and decision sections,
    then the device-FSM, executor and proof pages and the index's walk-through."""

    def __init__(self) -> None:
        self.specs: list[vfio.VfioSpec] = []
        self.extra_json: dict[str, dict[str, object]] = {}
        self.pages: dict[str, Page | None] = {}

    def add(self, t: Target, entry: SpecEntry) -> None:
        if t.migration is None:
            return
        scenario, decision = t.migration.scenario, t.migration.decision  # decided once, in cli.load
        if scenario.is_cloud_hypervisor:
            entry.blocks = [report_ch.scenario_section(scenario, decision),
                            report_ch.decision_section(decision)]
            entry.summary = report_ch.summary_columns(scenario, decision)
            self.extra_json[t.name] = {
                "tracking_method": t.migration.tracking_method,
                "blocked_by": list(decision.blocked_by),
                "vmm": scenario.vmm,
                "cloud_hypervisor": scenario.cloud_hypervisor,
            }
            return
        entry.blocks = [vfio.scenario_section(scenario), vfio.tracking_section(scenario, decision)]
        entry.summary = vfio.summary_columns(scenario, decision)
        self.specs.append(vfio.VfioSpec(scenario, decision, entry))
        self.extra_json[t.name] = {
            "tracking_method": t.migration.tracking_method,
            "blocked_by": list(decision.blocked_by),
            "qemu": scenario.qemu,
        }

    def add_pages(self, site: Site) -> None:
        self.pages = {"fsm": vfio.fsm_page(site)}
        if self.specs:
            self.pages["executor"] = vfio.executor_page(site, self.specs)
            self.pages["proofs"] = vfio.proofs_page()
            site.nav.append(("Walk-through", "@index#walkthrough"))
        for p in self.pages.values():
            if p is not None:
                site.pages.append(p)
                site.nav.append((NAV_TITLES.get(p.path, p.title), f"@{p.path}"))

    def index_blocks(self, site: Site) -> list[Block]:
        after: list[Block] = []
        if self.specs:
            after.append(vfio.walkthrough_section(self.specs))
        after += vfio.index_extra(site, self.specs, self.pages)
        return after

    @property
    def columns(self) -> tuple[str, ...]:
        # every VMM's columns; the index shows in each group those its specs fill
        qemu_profile, *rest = vfio.SUMMARY_COLUMNS
        return tuple(dict.fromkeys([qemu_profile, *report_ch.SUMMARY_COLUMNS, *rest]))


def _add_findings(site: Site, targets: Sequence[Target]) -> None:
    """The QEMU findings page, when the findings' specs are among those reported (their
    affected releases are computed by running each spec on every profile)."""
    shown = {t.name: t.path for t in targets}
    names = [f.name for f in QEMU_FINDINGS if f.name in shown]
    if not names:
        return
    site.pages.append(findings_page(run_findings(names, shown)))
    site.nav.append(("Findings", "@findings/index"))


def build_site(paths: tuple[str, ...], *, quiet: bool, max_states: int | None) -> tuple[Site, list[Verdict]]:
    targets = load_targets(paths)
    site = Site(SITE_TITLE)
    pages = _VfioPages()
    entries: list[SpecEntry] = []
    checked: list[Verdict] = []
    for t in targets:
        entry, c = _check_entry(t, quiet=quiet, max_states=max_states)
        checked.append(c)
        pages.add(t, entry)
        entries.append(entry)
    # Migration scenarios first, QEMU's then cloud-hypervisor's, then the engine's specs.
    entries.sort(key=lambda e: (GROUP_ORDER.index(e.group), e.file))
    for e in entries:
        site.pages.append(spec_page(site, e))
    pages.add_pages(site)
    _add_findings(site, targets)
    site.add_asset("results.json", json.dumps(machine_readable(entries, pages.extra_json), indent=1) + "\n")
    site.add_asset("junit.xml", _junit_without_times(checked))
    after = [*pages.index_blocks(site), _machine_readable_section()]
    index = index_page(
        site, entries, title=SITE_TITLE, intro=INTRO, before=[], after=after, extra_columns=pages.columns
    )
    site.pages.insert(0, index)
    return site, checked


@click.command("report")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="Directory for the site.",
)
@click.option("--check", "check_only", is_flag=True, help="Do not write; exit 1 if OUTPUT is stale.")
@click.option("--max-states", type=click.IntRange(min=1), help="Stop a spec after this many distinct states.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def report(
    paths: tuple[str, ...], output: Path, check_only: bool, max_states: int | None, quiet: bool
) -> None:
    """Write HTML and Markdown reports for SPEC files or directories (default: specs/)."""
    if not check_only:
        writable_dir(output, "--output")
    site, checked = build_site(paths, quiet=quiet, max_states=max_states)
    files = site.files()
    mismatched = [c.name for c in checked if not c.matched]
    if mismatched:
        click.echo(f"warning: {len(mismatched)} spec(s) do not match their expectations: "
                   f"{', '.join(mismatched)}", err=True)
    if check_only:
        st = compare_site(files, output)
        if st.stale:
            click.echo(f"{output}: stale; regenerate with `vfio-migcheck report -o {output}`:")
            for line in st.lines():
                click.echo(f"  {line}")
            sys.exit(1)
        click.echo(f"{output}: up to date ({len(files)} files).")
        return
    try:
        removed = write_site(files, output)
    except OutsideRoot as exc:
        raise UserError(f"--output {output}: {exc}") from None
    except OSError as exc:
        raise UserError(f"--output {output}: cannot write: {exc.strerror or exc}") from None
    for rel in removed:
        click.echo(f"removed {output / rel}", err=True)
    click.echo(f"wrote {len(files)} files to {output}/ (open {output / 'index.html'})")
