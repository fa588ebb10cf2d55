"""``vfio-migcheck report`` / ``graph``: deterministic output, staleness check, well-formed
pages, counterexample tables, quotient graphs, and the machine-readable formats (JUnit XML
against the common JUnit schema, ITF traces against the ITF format)."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.explore import explore
from checker.itf import to_itf
from checker.report.doc import Page, Para, Table, mark
from checker.report.graphs import draw, explore_graph, full_graph, quotient_graph, render_svg, to_dot
from checker.report.render import to_html, to_markdown
from checker.report.results import row_values, trace_table
from cli.load import load_target
from cli.main import main

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / "specs" / "engine"

SCENARIOS = {
    "vf-pass.toml": """\
description = "One VF with DMA logging."
[vm]
pages = 1
[[devices]]
name = "vf0"
dma_logging = true
[check]
expect = "pass"
""",
    "vf-nofinal.toml": """\
description = "One VF, the final sync skipped."
[vm]
pages = 1
[[devices]]
name = "vf0"
dma_logging = true
[check]
expect = { violation = "NoPageLost" }
[mutations]
no_final_sync = true
""",
    "vf-blocked.toml": """\
description = "A VF without dirty tracking under enable-migration=auto."
[vm]
pages = 1
[[devices]]
name = "vf0"
[check]
expect = "blocked"
""",
}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory) -> Path:
    """A small spec directory: three migration scenarios and two engine specs."""
    root = tmp_path_factory.mktemp("site")
    specs = root / "specs"
    specs.mkdir()
    for name, text in SCENARIOS.items():
        (specs / name).write_text(text)
    for name in ("tcommit-3.toml", "twophase-broken-liveness.toml", "twophase-broken-invariant.toml"):
        shutil.copy(ENGINE / name, specs / name)
    return root


@pytest.fixture(scope="module")
def site(spec_dir: Path) -> Path:
    """The report of ``spec_dir``, written once for the tests that only read it."""
    import os

    old = Path.cwd()
    os.chdir(spec_dir)
    try:
        r = run("report", "specs", "-o", "out", "-q")
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    return spec_dir / "out"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- the site


def test_second_run_gives_the_same_bytes(spec_dir: Path, site: Path, monkeypatch):
    from cli.report import build_site

    monkeypatch.chdir(spec_dir)
    again, _ = build_site(("specs",), quiet=True, max_states=None)
    assert again.files() == tree(site)


def test_check_lists_stale_missing_and_extra_files(tmp_path: Path, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("tcommit-3.toml", "twophase-broken-invariant.toml"):
        shutil.copy(ENGINE / name, specs / name)
    monkeypatch.chdir(tmp_path)
    r = run("report", "specs", "-o", "out", "-q")
    assert r.exit_code == 0, r.output
    fresh = tree(tmp_path / "out")
    r = run("report", "specs", "-o", "out", "--check", "-q")
    assert r.exit_code == 0, r.output
    assert "up to date" in r.output
    work = tmp_path / "out"
    (work / "specs" / "tcommit-3.md").write_text("edited by hand\n")
    (work / "specs" / "twophase-broken-invariant.html").unlink()
    (work / "img" / "old-graph.svg").write_text("<svg/>")
    r = run("report", "specs", "-o", "out", "--check", "-q")
    assert r.exit_code == 1
    assert "changed: specs/tcommit-3.md" in r.output
    assert "missing: specs/twophase-broken-invariant.html" in r.output
    assert "not generated any more: img/old-graph.svg" in r.output
    # Writing repairs it and removes the file that is no longer generated.
    r = run("report", "specs", "-o", "out", "-q")
    assert r.exit_code == 0
    assert not (work / "img" / "old-graph.svg").exists()
    assert tree(work) == fresh


def test_report_errors_are_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("report", "nosuch.toml")
    assert r.exit_code == 2 and "no such spec file" in r.output and "Traceback" not in r.output
    r = run("report")
    assert r.exit_code == 2 and "specs/" in r.output


def test_expected_files_exist(site: Path):
    files = set(tree(site))
    for name in ("vf-pass", "vf-nofinal", "vf-blocked", "tcommit-3", "twophase-broken-liveness"):
        assert f"specs/{name}.html" in files and f"specs/{name}.md" in files
    assert {"index.html", "README.md", "style.css", "results.json", "junit.xml"} <= files
    assert "traces/vf-nofinal.itf.json" in files and "traces/twophase-broken-liveness.itf.json" in files
    assert "img/tcommit-3-graph.svg" in files and "img/vf-pass-graph.svg" in files
    assert any(f.startswith("img/fsm-") for f in files)


def test_nothing_depends_on_the_machine_or_the_clock(site: Path, spec_dir: Path):
    stamp = re.compile(r"\b20\d\d-\d\d-\d\d[T ]\d\d:\d\d|\bseconds\b|\d+\.\d+ ?s\b")
    for rel, data in tree(site).items():
        if rel.endswith(".png"):
            continue
        text = data.decode()
        assert str(spec_dir) not in text and str(REPO) not in text, rel
        assert "/tmp/" not in text and "/root/" not in text, rel
        assert not stamp.search(text), (rel, stamp.search(text))
        assert "graphviz version" not in text, rel
    doc = json.loads((site / "results.json").read_text())
    assert all("seconds" not in r["stats"] for r in doc["results"])


class _Html(HTMLParser):
    VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("img", "link") and (a.get("src") or a.get("href")):
            self.srcs.append(a.get("src") or a.get("href"))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def parse_html(path: Path) -> _Html:
    p = _Html()
    p.feed(path.read_text())
    p.close()
    assert not p.errors, (path, p.errors[:3])
    assert not p.stack, (path, p.stack)
    return p


def test_html_pages_are_well_formed_and_their_links_resolve(site: Path):
    pages = {p: parse_html(p) for p in site.rglob("*.html")}
    for page, parsed in pages.items():
        assert len(parsed.ids) == len(set(parsed.ids)), (page, "duplicate ids")
        for ref in parsed.hrefs + parsed.srcs:
            parts = urlsplit(ref)
            if parts.scheme:
                assert parts.scheme == "https", ref
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), (page, ref)
            assert site.resolve() in target.parents, (page, ref)
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in pages[target].ids, (page, ref)


def test_markdown_links_resolve(site: Path):
    link = re.compile(r"\]\(([^)\s]+)\)")
    for page in site.rglob("*.md"):
        for ref in link.findall(page.read_text()):
            if "://" in ref:
                continue
            path, _, anchor = ref.partition("#")
            target = page.parent / path if path else page
            assert target.is_file(), (page, ref)
            if anchor and target.suffix == ".md":
                assert f'<a id="{anchor}"></a>' in target.read_text(), (page, ref)
    readme = (site / "README.md").read_text()
    assert "](specs/vf-nofinal.md)" in readme


def test_spec_pages_show_scenario_decision_results_and_counterexample(site: Path):
    html = (site / "specs" / "vf-nofinal.html").read_text()
    for needle in ("Scenario", "Dirty tracking and blockers", "device-dma-logging", "no_final_sync",
                   "Statistics", "Properties", "Action coverage", "Counterexample: NoPageLost",
                   "<mark>", "vf-nofinal.itf.json", "never fired"):
        assert needle in html, needle
    assert "stopped early" in html  # a safety violation ends the exploration
    lasso = (site / "specs" / "twophase-broken-liveness.html").read_text()
    assert "stopped early" not in lasso and 'class="loop"' in lasso and "stutters forever" in lasso
    blocked = (site / "specs" / "vf-blocked.html").read_text()
    assert "no-dirty-tracking" in blocked and "vfio_migration_realize()" in blocked
    assert "Wall" not in html and "seconds" not in html
    index = (site / "index.html").read_text()
    assert "Reviewer&#x27;s walk-through of vfio.rst" in index
    assert "x-pre-copy-dirty-page-tracking" in index and "0e3c1e2b2b" in index


def test_junit_in_the_report_has_no_times(site: Path):
    root = ET.parse(site / "junit.xml").getroot()
    assert all("time" not in el.attrib for el in root.iter())
    validate_junit(root)


# ------------------------------------------------------------------- counterexample table


@pytest.fixture(scope="module")
def twophase_violation():
    t = load_target(ENGINE / "twophase-broken-invariant.toml")
    r = explore(t.spec)
    assert r.violation is not None
    return r


def test_trace_table_marks_exactly_the_changed_values(twophase_violation):
    r = twophase_violation
    v = r.violation
    blocks = trace_table(v, r.layout)
    table = next(b for b in blocks if isinstance(b, Table))
    keys = table.header[2:]
    values = [row_values(r.layout, s.row) for s in v.trace]
    # the variables the property reads come first (shaded), then only variables that change
    # somewhere; the rest are listed once
    assert v.reads and tuple(keys[: len(v.reads)]) == v.reads
    assert table.marked == frozenset(range(2, 2 + len(v.reads)))
    for k in keys[len(v.reads):]:
        assert len({vals[k] for vals in values}) > 1
    assert len(table.rows) == v.length
    for i, row in enumerate(table.rows):
        for k, cell in zip(keys, row[2:], strict=True):
            changed = i > 0 and values[i - 1][k] != values[i][k]
            assert (cell == mark(values[i][k])) == changed, (i, k)
            assert (cell if isinstance(cell, str) else cell.text) == values[i][k]
    assert table.row_kinds[-1] == "bad"


def test_markdown_and_html_render_a_highlight():
    page = Page("specs/x", "x", [Table(["a", "b"], [["1", mark("2|3")]]), Para("a_b *c*")])
    md = to_markdown(page, [("Index", "@index")])
    assert "| 1 | **2\\|3** |" in md and "a\\_b \\*c\\*" in md and "[Index](../README.md)" in md
    html = to_html(page, [("Index", "@index")], "t")
    assert "<mark>2|3</mark>" in html and 'href="../index.html"' in html and 'href="../style.css"' in html


# ------------------------------------------------------------------------------ graphs


@pytest.fixture(scope="module")
def twophase_graph():
    t = load_target(ENGINE / "twophase-3.toml")
    return t, explore_graph(t.spec, max_states=10_000)


def test_explore_graph_matches_the_checker(twophase_graph):
    t, sg = twophase_graph
    assert len(sg.rows) == 288  # TLC's figure for TwoPhase with 3 RMs
    assert len(sg.src) == 1146 - 1  # generated states minus the initial one


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_quotient_preserves_states_and_transitions(twophase_graph, data):
    t, sg = twophase_graph
    keys = data.draw(st.lists(st.sampled_from([s.key for s in t.spec.layout.slots]), unique=True, max_size=4))
    g = quotient_graph(sg, t.spec.layout, keys, name=t.name)
    assert sum(n.states for n in g.nodes) == len(sg.rows)
    drawn = sum(c for e in g.edges for _, c in e.actions)
    assert drawn + sum(n.internal for n in g.nodes) == len(sg.src)
    # nodes are exactly the distinct values of the keys
    cols = np.stack([t.spec.layout.column(sg.rows, k) for k in keys], axis=1) if keys else np.zeros((1, 0))
    assert len(g.nodes) == len({tuple(r) for r in cols.tolist()})
    assert all(e.src != e.dst for e in g.edges)
    assert [n.id for n in g.nodes] == list(range(len(g.nodes)))
    assert any(n.init for n in g.nodes)


def test_small_graphs_are_drawn_in_full_and_large_ones_coarsened(twophase_graph):
    t, sg = twophase_graph
    tc = load_target(ENGINE / "tcommit-3.toml")
    small = draw(explore_graph(tc.spec, max_states=1000), tc.spec.layout, name="tc", quotient=["rmState[0]"])
    assert small.quotient is None and len(small.nodes) == 34
    big = draw(sg, t.spec.layout, name="tp", quotient=[s.key for s in t.spec.layout.slots], max_nodes=10)
    assert big.quotient is not None and len(big.nodes) <= 10 and big.notes


def test_violating_states_are_marked(twophase_violation):
    t = load_target(ENGINE / "twophase-broken-invariant.toml")
    sg = explore_graph(t.spec, max_states=10_000)
    g = full_graph(sg, t.spec.layout, name="x", spec=t.spec) if len(sg.rows) < 200 else None
    g = g or quotient_graph(sg, t.spec.layout, ["tmState"], name="x", spec=t.spec)
    assert sum(n.bad for n in g.nodes) > 0


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_svg_is_byte_stable(twophase_graph):
    t, sg = twophase_graph
    g = draw(sg, t.spec.layout, name=t.name, quotient=["tmState", "rmState[0]"])
    dot = to_dot(g)
    a, b = render_svg(dot), render_svg(dot)
    assert a == b and a.lstrip().startswith("<?xml") and "<svg" in a
    assert "Generated by graphviz" not in a


def test_graph_command_formats(tmp_path: Path):
    spec = str(ENGINE / "tcommit-3.toml")
    r = run("graph", spec, "--format", "json", "-o", str(tmp_path / "g.json"))
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["states"] == 34 and doc["transitions"] == 93 and doc["quotient"] is None
    assert len(doc["nodes"]) == 34
    r = run("graph", spec, "--format", "json", "--quotient", "rmState[0]", "--full-max", "0")
    doc = json.loads(r.stdout)
    assert doc["quotient"] == ["rmState[0]"] and sum(n["states"] for n in doc["nodes"]) == 34
    r = run("graph", spec, "--format", "dot")
    assert r.exit_code == 0 and r.stdout.startswith('digraph "tcommit-3" {')
    r = run("graph", spec, "--quotient", "nosuch")
    assert r.exit_code == 2 and "no variable 'nosuch'" in r.output and "Traceback" not in r.output
    r = run("graph", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2


def test_graph_refuses_a_drawing_above_max_nodes_without_force(tmp_path: Path):
    spec = str(ENGINE / "twophase-3.toml")  # 288 states
    out = tmp_path / "g.dot"
    r = run("graph", spec, "--full", "--max-nodes", "100", "--format", "dot", "-o", str(out))
    assert r.exit_code == 3 and not out.exists()
    assert "288 nodes, more than --max-nodes 100; draw the quotient graph instead" in r.stderr
    assert "--force" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("graph", spec, "--full", "--max-nodes", "100", "--force", "--format", "dot", "-o", str(out))
    assert r.exit_code == 0 and out.read_text().count("label=") > 288
    # the quotient of the same graph is small: drawn as usual
    assert run("graph", spec, "--max-nodes", "100", "--format", "dot", "-o", str(out)).exit_code == 0
    r = run("graph", spec, "--quotient", "rmState[0],rmState[1],rmState[2],tmState", "--quotient-nodes",
            "1000", "--max-nodes", "20", "--format", "dot")
    assert r.exit_code == 3 and "coarsen it" in r.stderr


def test_the_counterexample_path_is_marked_on_the_graph():
    t = load_target(ENGINE / "twophase-broken-invariant.toml")
    v = explore(t.spec).violation
    sg = explore_graph(t.spec, max_states=10_000)
    path = [s.row for s in v.trace]
    for quotient, full_max in ((["tmState"], 0), (["tmState"], 10_000)):
        g = draw(sg, t.spec.layout, name="x", spec=t.spec, quotient=quotient, full_max=full_max, path=path)
        assert len(g.path) == v.length
        on = {n.id: n.steps for n in g.nodes if n.steps}
        assert sorted(i for steps in on.values() for i in steps) == list(range(1, v.length + 1))
        taken = {(a, b) for a, b in zip(g.path, g.path[1:], strict=False) if a != b}
        assert {(e.src, e.dst) for e in g.edges if e.on_path} == taken and taken
        dot = to_dot(g)
        assert dot.count("penwidth=2.5") == len(taken) and "counterexample: " in dot
        assert g.as_json()["counterexample_path"] == g.path


# ------------------------------------------------------------------- JUnit XML schema
# A structural check equivalent to the common JUnit schema that Jenkins' xUnit plugin
# ships as junit-10.xsd (MIT, jenkinsci/xunit-plugin, types/model/xsd/junit-10.xsd): which
# elements may appear where, which attributes are required or allowed, the time format.

_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")
_SCHEMA = {
    "testsuites": ({"name", "time", "tests", "failures", "errors"}, set(), {"testsuite"}),
    "testsuite": (
        {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
         "package", "file", "log", "url"},
        {"name", "tests", "failures", "errors"},
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
    ),
    "testcase": (
        {"name", "time", "classname", "group"},
        {"name"},
        {"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError",
         "system-out", "system-err"},
    ),
    "failure": ({"type", "message"}, set(), set()),
    "error": ({"type", "message"}, set(), set()),
    "skipped": ({"type", "message"}, set(), set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, {"name", "value"}, set()),
}


def validate_junit(root: ET.Element) -> None:
    assert root.tag == "testsuites"

    def visit(el: ET.Element) -> None:
        allowed, required, children = _SCHEMA[el.tag]
        extra = set(el.attrib) - allowed
        assert not extra, f"<{el.tag}> has attributes the schema does not allow: {sorted(extra)}"
        missing = required - set(el.attrib)
        assert not missing, f"<{el.tag}> lacks required attributes {sorted(missing)}"
        if el.tag in ("testsuites", "testsuite") and "time" in el.attrib:
            assert _TIME.fullmatch(el.attrib["time"]), el.attrib["time"]
        for child in el:
            assert child.tag in children, f"<{child.tag}> inside <{el.tag}>"
            visit(child)

    visit(root)
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(len(c.findall("failure")) for c in cases)
        assert int(suite.get("errors")) == sum(len(c.findall("error")) for c in cases)
        if "skipped" in suite.attrib:
            assert int(suite.get("skipped")) == sum(len(c.findall("skipped")) for c in cases)


def test_check_junit_output_follows_the_junit_schema(tmp_path: Path):
    out = tmp_path / "junit.xml"
    r = run("check", str(ENGINE), "--quiet", "--junit", str(out))
    assert r.exit_code == 0, r.output
    root = ET.parse(out).getroot()
    validate_junit(root)
    assert len(root.findall("testsuite")) == 5


def test_junit_check_catches_a_bad_document():
    bad = ET.fromstring('<testsuites><testsuite name="a" tests="1" failures="0">'
                        '<testcase name="x"><oops/></testcase></testsuite></testsuites>')
    with pytest.raises(AssertionError):
        validate_junit(bad)


# -------------------------------------------------------------------------- ITF traces
# ITF (Apalache ADR-015): a trace object with "vars" (variable names) and "states" (one
# object per state holding every variable; "#meta" allowed), optional "#meta", "params",
# "loop"; values are booleans, strings, arrays (sequences), {"#bigint": "<digits>"},
# {"#tup": [...]}, {"#set": [...]}, {"#map": [[k, v], ...]}, {"#unserializable": "..."}
# or records (objects whose keys do not start with '#').

_BIGINT = re.compile(r"-?[0-9]+")


def itf_value_ok(v) -> bool:
    if isinstance(v, bool | str):
        return True
    if isinstance(v, list):
        return all(itf_value_ok(x) for x in v)
    if isinstance(v, dict):
        if set(v) == {"#bigint"}:
            return isinstance(v["#bigint"], str) and bool(_BIGINT.fullmatch(v["#bigint"]))
        if set(v) in ({"#tup"}, {"#set"}):
            (items,) = v.values()
            return isinstance(items, list) and all(itf_value_ok(x) for x in items)
        if set(v) == {"#map"}:
            return all(isinstance(p, list) and len(p) == 2 and all(map(itf_value_ok, p)) for p in v["#map"])
        if set(v) == {"#unserializable"}:
            return isinstance(v["#unserializable"], str)
        return all(not k.startswith("#") and itf_value_ok(x) for k, x in v.items())
    return False  # JSON numbers are not ITF integers


def validate_itf(doc: dict) -> None:
    assert set(doc) <= {"#meta", "params", "vars", "states", "loop"}
    assert isinstance(doc["vars"], list) and all(isinstance(x, str) for x in doc["vars"])
    assert isinstance(doc["states"], list) and doc["states"]
    for st_ in doc["states"]:
        assert set(st_) - {"#meta"} == set(doc["vars"])
        assert all(itf_value_ok(st_[k]) for k in doc["vars"])
        if "#meta" in st_:
            assert isinstance(st_["#meta"], dict)
    if "loop" in doc:
        assert isinstance(doc["loop"], int) and 0 <= doc["loop"] < len(doc["states"])


def test_itf_traces_have_the_required_fields(twophase_violation, site: Path):
    r = twophase_violation
    doc = to_itf(r.violation, r.layout, spec_name="twophase-broken-invariant")
    validate_itf(doc)
    assert doc["#meta"]["format"] == "ITF"
    assert [s["#meta"]["index"] for s in doc["states"]] == list(range(r.violation.length))
    for path in (site / "traces").glob("*.itf.json"):
        validate_itf(json.loads(path.read_text()))
    lasso = json.loads((site / "traces" / "twophase-broken-liveness.itf.json").read_text())
    assert "loop" in lasso


def test_check_itf_output_validates():
    r = run("check", str(ENGINE / "twophase-broken-invariant.toml"), "--json", "-", "--trace-format", "itf")
    doc = json.loads(r.stdout)
    validate_itf(doc["results"][0]["itf"])


def test_itf_check_rejects_json_numbers():
    with pytest.raises(AssertionError):
        validate_itf({"vars": ["x"], "states": [{"x": 1}]})


# ------------------------------------------------------------------------ walk-through


def test_walkthrough_rules_point_at_model_code():
    from model import walkthrough as wt
    from model.contract import MUTATIONS, PROPERTY_NAMES

    seen = set()
    for s in wt.all_statements():
        assert s.id not in seen
        seen.add(s.id)
        assert len(s.phrase.split()) <= 12, s.id  # quote at most a short phrase
        assert s.rules and set(s.properties) <= set(PROPERTY_NAMES), s.id
        assert set(s.mutations) <= set(MUTATIONS), s.id
        for rule in s.rules:
            assert (REPO / rule.file).is_file(), rule.file
            assert rule.file.startswith("model/")
        for d in s.divergences:
            assert d.source and d.text and d.versions
    assert {s.section for s in wt.STATEMENTS} == {wt.SECTION_DIRTY, wt.SECTION_VIOMMU}


def test_walkthrough_statements_are_exercised_by_shipped_specs():
    """Every statement is checked by some spec in specs/, and every mutation it names is
    switched on in one (so the walk-through never says "no shipped spec")."""
    from model import walkthrough as wt

    files = sorted((REPO / "specs").glob("*.toml"))
    if not files:
        pytest.skip("no migration specs shipped yet")
    migrations = [m for m in (load_target(f).migration for f in files) if m is not None]
    loaded = [(m.scenario, m.decision) for m in migrations]
    for st_ in wt.all_statements():
        assert any(st_.selects(s, d) for s, d in loaded), st_.id
        for m in st_.mutations:
            assert any(m in s.mutations for s, _ in loaded), (st_.id, m)


# ------------------------------------------------------------------- committed reports/


def test_committed_reports_are_fresh(monkeypatch):
    """``reports/`` in git is what ``vfio-migcheck report`` generates from ``specs/``
    (the same check CI runs as ``vfio-migcheck report --check``)."""
    if not (REPO / "reports" / "index.html").is_file():
        pytest.skip("reports/ has not been generated in this tree")
    monkeypatch.chdir(REPO)
    r = run("report", "--check", "-q")
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------- each spec file read once


@pytest.mark.parametrize(
    "args",
    [
        ("check", "specs", "-q"),
        ("report", "specs", "-o", "out", "-q"),
        ("graph", "specs/vf-nofinal.toml", "--format", "json"),
        ("prove", "specs/vf-blocked.toml"),
        ("simulate", "specs/vf-pass.toml", "--guest-size", "64MiB", "--no-progress"),
    ],
    ids=lambda a: a[0],
)
def test_each_spec_file_is_read_once_per_command(spec_dir: Path, tmp_path: Path, monkeypatch, args):
    """cli.load reads and parses every spec file once; no command reads one again (the
    report no longer re-reads a scenario to decide it, nor to cache the executor run)."""
    import builtins
    import collections

    work = tmp_path / "w"
    shutil.copytree(spec_dir / "specs", work / "specs")
    monkeypatch.chdir(work)
    reads: collections.Counter[str] = collections.Counter()
    real_open, real_path_open = builtins.open, Path.open

    def note(file: object) -> None:
        if str(file).endswith(".toml"):
            reads[Path(str(file)).name] += 1

    def counting_open(file, *a, **k):
        note(file)
        return real_open(file, *a, **k)

    def counting_path_open(self, *a, **k):
        note(self)
        return real_path_open(self, *a, **k)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(Path, "open", counting_path_open)
    r = run(*args)
    assert r.exit_code in (0, 1), r.output  # prove of a blocked spec and simulate may exit 1
    expected = sorted(p.name for p in (work / "specs").glob("*.toml")) if args[1] == "specs" else [
        Path(args[1]).name]
    assert sorted(reads) == expected
    assert set(reads.values()) == {1}, reads
