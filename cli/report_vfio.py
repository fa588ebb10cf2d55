"""The VFIO-specific parts of ``vfio-migcheck report``: what a scenario configures, QEMU's
tracking decision and blockers (with the QEMU/kernel source of each rule), the reviewer's
walk-through of ``docs/devel/migration/vfio.rst``, the device FSM per feature set, the
concrete executor's plots and the z3 results.

Each part is built from the model when its data source exists and says "not available"
otherwise; the generic layout lives in :mod:`checker.report`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checker.report.doc import (
    Block,
    Bullets,
    Details,
    Image,
    Page,
    Para,
    Rich,
    Section,
    Table,
    badge,
    code,
    em,
    link,
    strong,
)
from checker.report.graphs import GraphError, render_svg
from checker.report.pages import SpecEntry
from checker.report.results import STATUS_BADGE, outcome_badge
from checker.report.site import Site


@dataclass
class VfioSpec:
    """A migration spec in the report: its scenario, QEMU's decision and its entry."""

    scenario: Any  # model.scenario.Scenario
    decision: Any  # model.decision.tracking.TrackingDecision
    entry: SpecEntry


def _yes(value: bool) -> str:
    return "yes" if value else "no"


# ----------------------------------------------------------------------------- per spec


def scenario_section(scenario: Any) -> Section:
    from model.contract import MUTATIONS
    from model.units import format_size

    vm, host, mig = scenario.vm, scenario.host, scenario.migration
    profile = scenario.profile
    rows: list[list[Rich]] = [
        ["QEMU profile", (code(scenario.qemu), f", behaviour read at {profile.source}")],
        ["guest pages modelled", str(vm.pages)],
        ["guest RAM (for size limits)", format_size(vm.ram)],
        ["vIOMMU", _yes(vm.viommu)],
        ["vCPUs write memory", _yes(vm.cpu_writes)],
        ["host IOMMU backend", code(host.iommu)],
    ]
    if host.iommu == "iommufd":
        rows.append(["IOMMU hardware dirty tracking", _yes(host.iommu_dirty_tracking)])
    rows += [
        ["pre-copy rounds (bound)", str(mig.precopy_rounds)],
        ["migration attempts", str(mig.attempts)],
        ["cancel explored", _yes(mig.cancel)],
        ["device state-change faults", _yes(mig.device_faults)],
        ["dirty-query faults", _yes(mig.query_faults)],
    ]
    if mig.postcopy:
        rows.append(["postcopy-ram requested", "yes"])
    if scenario.check.invariants is not None:
        rows.append(["properties checked", ", ".join(scenario.check.invariants)])
    blocks: list[Block] = [Table(["setting", "value"], rows)]
    dev_rows: list[list[Rich]] = []
    for d in scenario.devices:
        props = d.properties
        features = ["stop-copy", *sorted(d.features)]
        prop_text = [
            f"enable-migration={props.enable_migration}",
            f"x-pre-copy-dirty-page-tracking={'on' if props.x_pre_copy_dirty_page_tracking else 'off'}",
        ]
        if profile.has_device_dirty_page_tracking_property:
            prop_text.append(f"x-device-dirty-page-tracking={props.x_device_dirty_page_tracking}")
        dev_rows.append(
            [
                code(d.name),
                ", ".join(features),
                _yes(d.dma_logging),
                ", ".join(str(p) for p in d.dma_pages) or "none",
                ", ".join(str(p) for p in d.pins) or "none",
                _yes(d.p2p_dma),
                "; ".join(prop_text),
            ]
        )
    blocks.append(
        Table(
            [
                "device",
                "migration features",
                "DMA logging",
                "writes pages" + (" (IOVAs)" if vm.viommu else ""),
                "pins",
                "P2P DMA",
                "QEMU properties",
            ],
            dev_rows,
            caption="VFIO devices (in realize order)",
        )
    )
    if scenario.mutations:
        items: list[Rich] = []
        for m in sorted(scenario.mutations):
            mu = MUTATIONS[m]
            items.append((code(m), f": {mu.description} (shipped to break {mu.violates})"))
        blocks.append(Para(strong("Deliberate bugs switched on (mutations):")))
        blocks.append(Bullets(items))
    return Section("Scenario", blocks, "scenario")


def tracking_section(scenario: Any, decision: Any) -> Section:
    from model.decision.tracking import Method

    method_text = {
        Method.DEVICE_DMA_LOGGING: "device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*)",
        Method.TYPE1: "type1 container tracking (VFIO_IOMMU_DIRTY_PAGES)",
        Method.IOMMUFD_HW: "iommufd hardware dirty tracking (IOMMU_HWPT_GET_DIRTY_BITMAP)",
        Method.ALL_DIRTY: "none usable: QEMU marks every page dirty",
    }[decision.method]
    rows: list[list[Rich]] = [["tracking method", (code(decision.method.value), f": {method_text}")]]
    if decision.logging_devices:
        rows.append(["devices that DMA-log", ", ".join(sorted(decision.logging_devices))])
    if scenario.host.iommu == "type1":
        rows.append(["type1 pinned scope", _yes(decision.type1_pinned_scope)])
    if scenario.vm.viommu:
        rows.append(["vIOMMU unmap fetches dirty bits", _yes(decision.unmap_queries_dirty)])
    if decision.precopy_sync_opt_out:
        rows.append(["pre-copy sync opt-out", ", ".join(decision.precopy_sync_opt_out)])
    rows.append(["migration", badge("blocked", "warn") if decision.blocked else badge("allowed", "ok")])
    blocks: list[Block] = [Table(["", ""], rows)]
    if decision.blockers:
        brows: list[list[Rich]] = []
        for b in decision.blockers:
            brows.append(
                [
                    code(b.code),
                    b.device or "(global)",
                    b.stage.value,
                    badge("realize error", "bad") if b.error else "blocker",
                    b.message,
                    code(b.source),
                ]
            )
        blocks.append(
            Table(
                ["blocker", "device", "when", "kind", "what QEMU does", "QEMU source"],
                brows,
                caption="Migration blockers",
            )
        )
    if decision.notes:
        blocks.append(Para(strong("How QEMU decides, for this scenario:")))
        blocks.append(Bullets(list(decision.notes)))
    if decision.sources:
        blocks.append(Para(strong("QEMU and kernel sources of the rules that fired:")))
        blocks.append(Bullets([code(s) for s in decision.sources]))
    return Section("Dirty tracking and blockers", blocks, "tracking")


def summary_columns(scenario: Any, decision: Any) -> dict[str, Rich]:
    return {
        "QEMU": scenario.qemu,
        "method": code(decision.method.value),
        "blocked by": ", ".join(decision.blocked_by),
        "mutations": ", ".join(sorted(scenario.mutations)),
    }


SUMMARY_COLUMNS = ("QEMU", "method", "blocked by", "mutations")


# --------------------------------------------------------------------------- walk-through


def _count(n: int, outcome: str) -> str:
    word = {"violation": "violations", "limit": "limits"}.get(outcome, outcome) if n != 1 else outcome
    return f"{n} {word}"


def _versions(v: str) -> str:
    return "Every QEMU version: " if v == "all" else f"QEMU {v}: "


def _property_cell(entry: SpecEntry, prop: str) -> Rich:
    status = entry.result.properties.get(prop)
    v = entry.result.violation
    if v is not None and v.name == prop:
        status = "violated"
    if status is None:
        return badge("not in spec", "muted")
    text, kind = STATUS_BADGE.get(status, (status, "muted"))
    if status == "violated" and entry.expected_violation == prop:
        return (badge(text, kind), " (expected)")
    return badge(text, kind)


def _statement_block(number: int, st: Any, specs: Sequence[VfioSpec], profiles: Sequence[Any]) -> Section:
    """One statement of the walk-through: the document, the model rules, the specs that
    check it and their results, the mutations, divergences and per-profile behaviour."""
    blocks: list[Block] = [
        Para((strong("The document: "), st.says, " ", em(f"“{st.phrase}”"))),
        Para(strong("Model rules:")),
        Bullets([(code(r.file), " ", code(r.display), f": {r.what}") for r in st.rules]),
    ]
    checked: list[Any] = [strong("Checked by: ")]
    for i, prop in enumerate(st.properties):
        checked += [", " if i else "", code(prop)]
    checked.append(f" in the specs that exercise it ({st.selects_what}).")
    blocks.append(Para(tuple(checked)))
    blocks += _statement_results(st, [s for s in specs if st.selects(s.scenario, s.decision)])
    blocks += _statement_mutations(st, specs)
    if st.divergences:
        blocks.append(Para(strong("Where the code differs from the document, or says more:")))
        blocks.append(
            Bullets(
                [(strong(_versions(d.versions)), d.text, " Source: ", code(d.source)) for d in st.divergences]
            )
        )
    if st.per_profile is not None:
        blocks.append(
            Table(
                ["QEMU profile", st.per_profile_what],
                [[code(p.name), st.per_profile(p)] for p in profiles],
            )
        )
    return Section(f"{number}. “{st.phrase}”", blocks, f"doc-{st.id}")


def _outcome_of(e: SpecEntry) -> Rich:
    return outcome_badge(e.outcome, e.result.violation.name if e.result.violation else None)


def _statement_results(st: Any, chosen: Sequence[VfioSpec]) -> list[Block]:
    """The specs that exercise a statement: how many as expected, and each one's results."""
    if not chosen:
        return [Para(badge("no shipped spec exercises this statement", "warn"))]
    matched = sum(s.entry.matched for s in chosen)
    outcomes: dict[str, int] = {}
    for s in chosen:
        outcomes[s.entry.outcome] = outcomes.get(s.entry.outcome, 0) + 1
    summary = ", ".join(_count(n, o) for o, n in sorted(outcomes.items()))
    verdict = badge(f"{matched} of {len(chosen)} as expected", "ok" if matched == len(chosen) else "bad")
    rows: list[list[Rich]] = [
        [link(s.entry.name, f"@{s.entry.page}"), _outcome_of(s.entry),
         *(_property_cell(s.entry, p) for p in st.properties)]
        for s in chosen
    ]
    return [
        Para((f"{len(chosen)} specs ({summary}): ", verdict)),
        Details(f"Results of the {len(chosen)} specs", [Table(["spec", "outcome", *st.properties], rows)]),
    ]


def _statement_mutations(st: Any, specs: Sequence[VfioSpec]) -> list[Block]:
    """The statement's mutations, each with the shipped specs that switch it on."""
    if not st.mutations:
        return []
    items: list[Rich] = []
    for m in st.mutations:
        with_m = [s for s in specs if m in s.scenario.mutations]
        if not with_m:
            items.append((code(m), ": no shipped spec switches it on ", badge("missing", "warn")))
            continue
        parts: list[Any] = [code(m), ": "]
        for i, s in enumerate(with_m):
            if i:
                parts.append(", ")
            parts += [link(s.entry.name, f"@{s.entry.page}"), " ", _outcome_of(s.entry)]
        items.append(tuple(parts))
    return [Para(strong("Without the rule (mutations):")), Bullets(items)]


def walkthrough_section(specs: Sequence[VfioSpec]) -> Section:
    """Each statement of vfio.rst's dirty-tracking sections, with rules, specs, results."""
    try:
        from model import walkthrough as wt
    except ImportError as exc:  # the model part is missing from this installation
        return Section("Reviewer's walk-through", [Para(f"Not available: {exc}.", "note")], "walkthrough")
    profiles = wt.profiles()
    blocks: list[Block] = [
        Para(
            (
                "Each statement of the dirty page tracking sections of QEMU's ",
                code(wt.DOCUMENT),
                f" ({wt.DOCUMENT_VERSION}), paraphrased, with the model rule that encodes it "
                "(file and function), the properties and specs that check it and their results, "
                "and where the code of a QEMU version differs from the document.",
            )
        )
    ]
    by_section: dict[str, list[tuple[int, Any]]] = {}
    for number, st in enumerate(wt.all_statements(), start=1):
        by_section.setdefault(st.section, []).append((number, st))
    for title, statements in by_section.items():
        blocks.append(Section(title, [_statement_block(n, st, specs, profiles) for n, st in statements]))
    return Section("Reviewer's walk-through of vfio.rst", blocks, "walkthrough")


# ------------------------------------------------------------------------------ FSM page


def fsm_page(site: Site) -> Page | None:
    """The uAPI device FSM per feature set with the kernel's combination paths."""
    try:
        from cli.fsm import fsm_graph, graph_dot
        from model.fsm.audit import audit_report
        from model.fsm.kernel.builtin import default_kernel
        from model.fsm.uapi import FEATURE_SETS, feature_label
    except ImportError:
        return None
    kernel = default_kernel()
    page = Page("fsm", "Device migration FSM and the kernel's paths")
    page.intro = (
        "For each feature set the uAPI allows: the states, the direct arcs of ",
        code("include/uapi/linux/vfio.h"),
        " (each labelled with how many of the kernel's walks use it; red dashed: a step that is "
        "not a uAPI arc), and every combination path ",
        code("vfio_mig_get_next_state()"),
        f" takes from one state to another. Kernel: {kernel.source}.",
    )
    rep = audit_report(kernel)
    if rep.violations:
        found: list[list[Rich]] = [
            [code(v.property), feature_label(v.features), f"{v.current.name} -> {v.requested.name}", v.detail]
            for v in rep.violations
        ]
        page.blocks.append(
            Section(
                "Kernel step-function check (fsm check)",
                [
                    Para(badge(f"{len(rep.violations)} violation(s)", "bad")),
                    Table(["property", "features", "request", "what happens"], found),
                ],
                "fsm-check",
            )
        )
    else:
        page.blocks.append(
            Section(
                "Kernel step-function check (fsm check)", [Para(badge("no violations", "ok"))], "fsm-check"
            )
        )
    for flags in FEATURE_SETS:
        label = feature_label(flags)
        g = fsm_graph(kernel, flags)
        blocks: list[Block] = []
        try:
            svg = render_svg(graph_dot(g))
        except GraphError as exc:
            blocks.append(Para(f"Diagram not available: {exc}.", "note"))
        else:
            slug = label.replace(" ", "").replace("+", "-").replace(",", "-").lower()
            src = site.add_asset(f"img/fsm-{slug}.svg", svg)
            blocks.append(Image(src, f"device FSM for {label}", f"Direct uAPI arcs for {label}."))
        rows: list[list[Rich]] = []
        for key in sorted(g.graph["paths"], key=lambda k: tuple(k.split("->"))):
            p = g.graph["paths"][key]
            cur, new = key.split("->")
            steps = " -> ".join([cur, *p["path"]]) if p["path"] else "(no step)"
            res = p["result"]
            kind = "ok" if res == "ok" else ("warn" if res in ("einval", "warn-einval") else "bad")
            multi = len(p["path"]) > 1
            rows.append(
                [
                    code(cur),
                    code(new),
                    (steps, " ", badge("combination", "muted")) if multi else steps,
                    badge(res, kind),
                ]
            )
        blocks.append(
            Details(
                f"All {len(rows)} walks for {label}",
                [Table(["from", "to", "states entered", "result"], rows)],
            )
        )
        page.blocks.append(Section(label, blocks))
    return page


# --------------------------------------------------------------------------- executor page


@functools.cache
def _executor_run(scenario: Any, qemu_method: str) -> tuple[bytes, tuple[Any, ...]]:
    """Every method the executor can apply to the scenario, on a 1 GiB guest, and the
    plot (PNG bytes).  Cached per scenario (frozen, compared by value): a pure function
    of it."""
    import tempfile
    from pathlib import Path

    from cli.errors import UserError
    from cli.simulate import Options, build_plan, write_plot
    from model.concrete.executor import METHODS, Executor

    opts = Options(
        guest_size=1 << 30,
        cpu_dirty_rate=256 << 20,
        hot_set=256 << 20,
        dma_rate=128 << 20,
        dma_set=256 << 20,
        stop_copy_size=0,
        bandwidth=10e9 / 8,
        downtime_limit=EXECUTOR_DOWNTIME_LIMIT,
        max_rounds=30,
        step=0.1,
        stop_latency=0.005,
        seed=0,
    )
    results = []
    for method in METHODS:
        try:
            plan = build_plan(scenario, opts, [method])
        except UserError:  # the method cannot serve this scenario's devices
            continue
        for how, cfg in plan.configs:
            how = "qemu" if method == qemu_method else how
            results.append((how, Executor(cfg).run()))
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "plot.png"
        write_plot(png, results, opts.downtime_limit)
        return png.read_bytes(), tuple(results)


EXECUTOR_DOWNTIME_LIMIT = 0.3


def executor_page(site: Site, specs: Sequence[VfioSpec]) -> Page | None:
    """The concrete executor on one realistic guest per tracking method (where available)."""
    try:
        import cli.simulate  # noqa: F401
        import model.concrete.executor  # noqa: F401
    except ImportError:
        return None
    from model.decision.tracking import Method

    candidates = [s for s in specs if not s.decision.blocked and not s.scenario.mutations]
    # A scenario whose devices all DMA-log lets every method run on the same guest.
    candidates.sort(key=lambda s: s.decision.method is not Method.DEVICE_DMA_LOGGING)
    if not candidates:
        return None
    ref = candidates[0]
    png, results = _executor_run(ref.scenario, ref.decision.method.value)
    page = Page("executor", "Concrete executor: the same migration on a realistic guest")
    page.intro = (
        "The concrete executor (",
        code("model/concrete/executor.py"),
        ") runs the scenario of ",
        link(ref.entry.name, f"@{ref.entry.page}"),
        " on a 1 GiB guest (packed page bitmaps) over a 10 Gbit/s link with a 300 ms downtime "
        "limit, once per tracking method, and checks with per-page version counters that every "
        "page arrives.",
    )
    src = site.add_asset("img/executor-methods.png", png)
    page.blocks.append(
        Image(
            src,
            "executor: dirty pages and expected downtime per round",
            "Methods that report the same pages draw the same line (the later one hides the "
            "earlier). 'none': no VFIO report reaches QEMU at all, so device writes after a "
            "page was sent are lost.",
        )
    )
    rows: list[list[Rich]] = []
    for how, r in results:
        rows.append(
            [
                (code(r.method), " (QEMU's choice)") if how == "qemu" else code(r.method),
                _yes(r.converged),
                str(r.precopy_rounds),
                f"{r.downtime_s * 1000:.0f} ms",
                f"{r.bytes_sent / 2**30:.2f} GiB",
                badge("all arrived", "ok") if r.all_arrived else badge(f"{r.lost_pages:,} lost", "bad"),
            ]
        )
    page.blocks.append(
        Table(
            ["method", "converged", "pre-copy rounds", "downtime", "sent", "pages"],
            rows,
            numeric=frozenset({2, 3, 4}),
        )
    )
    return page


# ------------------------------------------------------------------------ z3 page


Z3_TABLES = [(1, "method"), (1, "blockers")]  # per profile
Z3_EXTRA_TABLES = {"master": [(2, "blockers")]}


def z3_results() -> dict[str, Any]:
    """The proofs and decision tables as plain data (run in a fresh interpreter)."""
    from model.decision.proofs import prove_all
    from model.decision.tables import decision_table
    from model.profiles import PROFILE_NAMES

    proofs = [
        {
            "profile": pr.profile,
            "property": pr.property,
            "text": pr.text,
            "holds": pr.holds,
            "failed_query": pr.failed_query,
            "counterexample": pr.counterexample,
        }
        for pr in prove_all()
    ]
    tables = []
    for name in PROFILE_NAMES:
        for devices, kind in Z3_TABLES + Z3_EXTRA_TABLES.get(name, []):
            t = decision_table(name, devices, kind)
            tables.append(
                {
                    "profile": name,
                    "devices": devices,
                    "kind": kind,
                    "columns": [c.key for c in t.used_columns()],
                    "configurations": t.configurations,
                    "rows": [
                        {
                            "when": {k: list(v) for k, v in r.conditions.items()},
                            "then": dict(r.outcome),
                            "configurations": r.configurations,
                        }
                        for r in t.rows
                    ],
                }
            )
    return {"profiles": list(PROFILE_NAMES), "proofs": proofs, "tables": tables}


def _z3_main() -> None:
    import json
    import sys

    json.dump(z3_results(), sys.stdout, default=str)


@functools.cache
def _run_z3() -> dict[str, Any] | None:
    """z3's answers depend on what the process asked it before (its global context), so
    the tables are computed in a fresh interpreter: the same bytes on every run."""
    import json
    import subprocess
    import sys

    code = "from cli.report_vfio import _z3_main; _z3_main()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if "ModuleNotFoundError" in proc.stderr:
            return None
        raise RuntimeError(f"z3 decision tables failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def _table_block(t: Mapping[str, Any]) -> Block:
    """A z3 decision table: one row per proved partial configuration."""
    cols = t["columns"]
    outcome_keys: list[str] = []
    for r in t["rows"]:
        for k in r["then"]:
            if k not in outcome_keys and k != "blockers_possible":
                outcome_keys.append(k)
    rows: list[list[Rich]] = []
    for r in t["rows"]:
        cells: list[Rich] = []
        for c in cols:
            vals = r["when"].get(c)
            cells.append(" / ".join(vals) if vals is not None else "any")
        for k in outcome_keys:
            v = r["then"].get(k, "")
            if isinstance(v, list | tuple):
                v = ", ".join(v) or "-"
            cells.append(code(v) if k in ("method", "first_blocker") else str(v))
        cells.append(f"{r['configurations']:,}")
        rows.append(cells)
    return Table(
        [*cols, *(k.replace("_", " ") for k in outcome_keys), "configurations"],
        rows,
        numeric=frozenset({len(cols) + len(outcome_keys)}),
    )


def proofs_page() -> Page | None:
    """z3: QEMU's decision as tables over every configuration, and proofs for any number
    of devices (:mod:`model.decision.smt`)."""
    data = _run_z3()
    if data is None:
        return None
    page = Page("proofs", "QEMU's decision: z3 decision tables and proofs")
    page.intro = (
        "QEMU's choice of dirty-tracking method and its migration blockers, restated as z3 formulas (",
        code("model/decision/smt.py"),
        ", rule by rule from ",
        code("model/decision/tracking.py"),
        "). The proofs hold for any number of devices (induction over the realize fold); the "
        "tables list every configuration, each row a partial configuration z3 proved to force "
        "its outcome (settings not listed are 'any').",
    )
    rows: list[list[Rich]] = []
    for pr in data["proofs"]:
        result: Rich = (
            badge("proved", "ok")
            if pr["holds"]
            else (badge("fails", "bad"), f" ({pr['failed_query']}): {pr['counterexample']}")
        )
        rows.append([code(pr["profile"]), code(pr["property"]), pr["text"], result])
    page.blocks.append(
        Section(
            "Proved for any number of devices",
            [Table(["QEMU profile", "property", "statement", "result"], rows)],
            "proofs",
        )
    )
    for name in data["profiles"]:
        blocks: list[Block] = []
        for t in (t for t in data["tables"] if t["profile"] == name):
            what = "tracking method" if t["kind"] == "method" else "verdict and blockers"
            noun = "device" if t["devices"] == 1 else "devices"
            size = f"{len(t['rows'])} rows, {t['configurations']:,} configurations"
            summary = f"{what}, {t['devices']} {noun}: {size}"
            blocks.append(Details(summary, [_table_block(t)]))
        page.blocks.append(Section(f"QEMU {name}", blocks, f"tables-{name.replace('.', '-')}"))
    return page


def index_extra(site: Site, specs: Sequence[VfioSpec], pages: Mapping[str, Page | None]) -> list[Block]:
    items: list[Rich] = []
    titles = {
        "fsm": "the device FSM per feature set",
        "executor": "the concrete executor's plots",
        "proofs": "z3 decision tables and proofs",
    }
    for key, page in pages.items():
        if page is not None:
            items.append(link(page.title, f"@{page.path}"))
        else:
            items.append((titles.get(key, key), ": not available"))
    return [Section("More", [Bullets(items)], "more")]
