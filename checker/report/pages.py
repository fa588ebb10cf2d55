"""Assemble the pages of a report: one page per spec and an index.

The front end (``cli/report.py``) fills a :class:`SpecEntry` per spec with the
checker's result and its own sections (what the spec models), and passes blocks for the
index; this module lays them out and adds the generic parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.itf import to_itf
from checker.lang.spec import Spec
from checker.report.doc import (
    Block,
    Image,
    Page,
    Para,
    Rich,
    Section,
    Table,
    badge,
    code,
    inlines,
    link,
    plain,
)
from checker.report.graphs import DrawnGraph, GraphError, legend, render_svg, to_dot
from checker.report.results import json_safe_stats, outcome_badge, results_sections
from checker.report.site import Site
from checker.result import Result


@dataclass
class SpecEntry:
    name: str
    file: str  # as shown: a repository-relative path
    group: str  # index heading the spec is listed under
    description: str
    spec: Spec
    result: Result
    outcome: str  # pass | blocked | violation | limit
    expected: str  # short text
    expected_violation: str | None
    matched: bool
    stopped_by: str | None = None  # the front end's words for the limit that stopped the run
    summary: Mapping[str, Rich] = field(default_factory=dict)  # extra index columns
    blocks: list[Block] = field(default_factory=list)  # front-end sections, before the results
    graph: DrawnGraph | None = None
    graph_missing: str | None = None  # why there is no graph

    @property
    def page(self) -> str:
        return f"specs/{self.name}"


def _graph_section(site: Site, e: SpecEntry) -> Section:
    if e.graph is None:
        return Section(
            "State graph", [Para(f"Not available: {e.graph_missing or 'no graph'}.", "note")], "graph"
        )
    g = e.graph
    blocks: list[Block] = []
    try:
        svg = render_svg(to_dot(g))
    except GraphError as exc:
        blocks.append(Para(f"Not available: {exc}.", "note"))
    else:
        src = site.add_asset(f"img/{e.name}-graph.svg", svg)
        alt = f"state graph of {e.name}" + (" (quotient)" if g.quotient is not None else "")
        blocks.append(Image(src, alt, legend(g)))
    for note in g.notes:
        blocks.append(Para(note, "note"))
    title = "State graph (quotient)" if g.quotient is not None else "State graph"
    return Section(title, blocks, "graph")


def spec_page(site: Site, e: SpecEntry) -> Page:
    page = Page(e.page, e.name)
    page.intro = e.description or None
    head: list[list[Rich]] = [
        ["spec file", code(e.file)],
        ["outcome", outcome_badge(e.outcome, e.result.violation.name if e.result.violation else None)],
        ["expected", e.expected],
        ["matches the expectation", badge("yes", "ok") if e.matched else badge("NO", "bad")],
    ]
    v = e.result.violation
    if v is not None and v.trace:
        doc = to_itf(v, e.result.layout, spec_name=e.name)
        path = site.add_asset(f"traces/{e.name}.itf.json", json.dumps(doc, indent=1, sort_keys=False) + "\n")
        head.append(["counterexample (ITF)", link(path.rsplit("/", 1)[1], path)])
    page.blocks.append(Table((), head))
    page.blocks.extend(e.blocks)
    page.blocks.extend(results_sections(e.spec, e.result, e.expected_violation, stopped_by=e.stopped_by))
    page.blocks.append(_graph_section(site, e))
    return page


def summary_table(entries: Sequence[SpecEntry], extra_columns: Sequence[str]) -> Table:
    """One row per spec: outcome, whether it matched the expectation, statistics."""
    rows: list[list[Rich]] = []
    kinds: list[str] = []
    for e in entries:
        s = e.result.stats
        outcome: Rich = outcome_badge(e.outcome, e.result.violation.name if e.result.violation else None)
        if not e.matched:
            outcome = (*inlines(outcome), f" (expected {e.expected})")
        row: list[Rich] = [
            link(e.name, f"@{e.page}"),
            outcome,
            badge("yes", "ok") if e.matched else badge("NO", "bad"),
            f"{s.distinct:,}",
            f"{s.generated:,}",
            str(s.depth),
        ]
        row.extend(e.summary.get(c, "") for c in extra_columns)
        rows.append(row)
        kinds.append("" if e.matched else "bad")
    # Columns of short values do not wrap (names, badges, method names).
    short = {c for c in range(len(rows[0]) if rows else 0) if all(len(plain(r[c])) <= 40 for r in rows)}
    return Table(
        ["spec", "outcome", "as expected", "distinct", "generated", "depth", *extra_columns],
        rows,
        numeric=frozenset({3, 4, 5}),
        row_kinds=kinds,
        nowrap=frozenset(short | {0}),
    )


def index_page(
    site: Site,
    entries: Sequence[SpecEntry],
    *,
    title: str,
    intro: Rich | None,
    before: Sequence[Block] = (),
    after: Sequence[Block] = (),
    extra_columns: Sequence[str] = (),
) -> Page:
    page = Page("index", title, intro=intro)
    page.blocks.extend(before)
    n_bad = sum(not e.matched for e in entries)
    verdict: Rich = (
        badge(f"all {len(entries)} specs match their expectations", "ok")
        if n_bad == 0
        else badge(f"{n_bad} of {len(entries)} specs do not match their expectations", "bad")
    )
    groups: dict[str, list[SpecEntry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    results: list[Block] = [Para(verdict)]
    for group, members in groups.items():
        cols = [c for c in extra_columns if any(e.summary.get(c) for e in members)]
        results.append(Section(group, [summary_table(members, cols)]))
    page.blocks.append(Section("Results", results, "results"))
    page.blocks.extend(after)
    return page


def machine_readable(entries: Sequence[SpecEntry], extra: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``results.json``: the ``check --json`` shape without wall times (so it is stable)."""
    out = []
    for e in entries:
        r = e.result
        v = r.violation
        d: dict[str, Any] = {
            "spec": e.name,
            "file": e.file,
            "outcome": e.outcome,
            "expected": {"violation": e.expected_violation} if e.expected_violation else e.expected,
            "matched": e.matched,
            "violated": v.name if v else None,
            "stats": json_safe_stats(r),
            "properties": dict(sorted(r.properties.items())),
            "coverage": dict(r.family_coverage),
            "never_fired": r.never_fired,
        }
        d.update(extra.get(e.name, {}))
        out.append(d)
    return {"version": 1, "note": "generated by vfio-migcheck report; no wall times", "results": out}
