"""``vfio-migcheck fsm``: the kernel's device-state FSM (walks, audit, graph, drivers).

* ``fsm path CUR NEW``: the states the kernel's ``vfio_mig_get_next_state()`` steps a
  device through, or its refusal.  JSON (contract): ``{"path": [...], "result": ...}``
  plus ``current``, ``requested``, ``features``, ``kernel``, ``detail``.  Exit 0 when the
  walk reaches the state or is refused, 1 when it does not end or is undefined.
* ``fsm check``: :func:`model.fsm.audit.audit_report` over every feature set and pair.
  JSON (contract): ``{"version": 1, "kernel": ..., "violations": [...], "info": [...]}``.
  Exit 1 on any violation.
* ``fsm graph``: the direct-arc graph of a feature set, annotated with the walks that use
  each arc (dot, svg or networkx node-link JSON).
* ``fsm driver FILE...``: a variant driver's step function against the arcs the kernel's
  walk hands it (:mod:`cli.fsm_driver`).

``--kernel`` takes a kernel source file (``drivers/vfio/vfio_main.c`` or the 5.18-era
``drivers/vfio/vfio.c``) or one of the built-in names ``builtin`` (Linux 6.2-7.1 as
released, the default) and ``builtin-fixed`` (with the skip-loop fix queued for 7.2); its
``#if`` conditionals are evaluated with the ``-D NAME[=VALUE]`` macros (none by default).
User errors (unknown state or feature, unreadable or uninterpretable kernel file) are one
line on stderr and exit code 2, and JSON on stdout under ``--json``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.errors import UserError
from cli.fsm_driver import driver_cmd
from cli.fsm_options import (
    FEATURES_HELP,
    KERNEL_HELP,
    console,
    define_option,
    features_option,
    json_errors,
    load_kernel_option,
    require_feature_sets,
)
from cli.options import writable_file
from cli.progress import StepProgress
from model.fsm.audit import AuditReport, audit_report
from model.fsm.kernel.builtin import BUILTIN_KERNELS
from model.fsm.kernel.step import KernelStepFunction, PathResult
from model.fsm.uapi import (
    IN_SAVING_GROUP,
    DeviceState,
    MigFlag,
    StateNameError,
    direct_arcs,
    feature_label,
    feature_names,
    parse_state,
    supported_states,
)

if TYPE_CHECKING:  # networkx is imported by `fsm graph` only: `fsm path` starts faster without it
    import networkx as nx

_TERMINAL = ("ok", "einval", "warn-einval")


def _state(text: str, what: str) -> DeviceState:
    try:
        return parse_state(text)
    except StateNameError as e:
        raise UserError(f"{what}: {e}") from None


def _emit(text: str, output: str | None) -> None:
    if output is None or output == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UserError(f"{output}: cannot write: {e.strerror or e}") from None


@click.group(name="fsm")
def fsm() -> None:
    """The kernel's device-state FSM: walks, an audit against the uAPI, the arc graph."""


# ----------------------------------------------------------------------------- fsm path
def path_json(p: PathResult, flags: MigFlag, kernel: KernelStepFunction) -> dict[str, Any]:
    return {
        **p.to_json(),
        "current": p.current.name,
        "requested": p.requested.name,
        "features": feature_names(flags),
        "kernel": kernel.source,
        "detail": p.detail,
    }


@fsm.command("path")
@click.argument("cur")
@click.argument("new")
@click.option("--features", "features", metavar="LIST", default=None, help=FEATURES_HELP)
@click.option("--kernel", "kernel_spec", metavar="FILE", default=None, help=KERNEL_HELP)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@define_option
@json_errors
def path_cmd(cur: str, new: str, features: str | None, kernel_spec: str | None,
             as_json: bool, defines: tuple[str, ...]) -> None:
    """Show the states the kernel steps a device through from CUR to NEW, or the refusal.

    State names are case-insensitive, with or without the VFIO_DEVICE_STATE_ prefix.
    """
    cur_s, new_s = _state(cur, "CUR"), _state(new, "NEW")
    kernel = load_kernel_option(kernel_spec, defines)
    flags = features_option(kernel, features)
    p = kernel.path(flags, cur_s, new_s)
    if as_json:
        click.echo(json.dumps(path_json(p, flags, kernel), indent=2))
    else:
        walk = " -> ".join(s.name for s in [p.current, *p.steps])
        click.echo(f"{walk}  [{p.result}]" if p.steps else f"{p.current.name}  [{p.result}]")
        click.echo(f"  features: {feature_label(flags)}; kernel: {kernel.source}")
        if p.result != "ok" or not p.steps:
            click.echo(f"  {p.detail}")
    if p.result not in _TERMINAL:
        raise SystemExit(1)


# ---------------------------------------------------------------------------- fsm check
def _render_report(rep: AuditReport, console: Console) -> None:
    console.print(f"[bold]Kernel:[/bold] {escape(rep.kernel)}")
    sets = ", ".join(feature_label(f) for f in rep.feature_sets)
    n_walks = len(rep.paths)
    console.print(f"[bold]Feature sets:[/bold] {sets}  ({n_walks} walks checked)")
    if rep.violations:
        t = Table(title=f"{len(rep.violations)} violation(s)", show_lines=False)
        t.add_column("Property", style="bold red", no_wrap=True)
        t.add_column("Features / request", no_wrap=True)
        t.add_column("What happened", ratio=1)
        for v in rep.violations:
            t.add_row(v.property, f"{feature_label(v.features)}\n"
                      f"{v.current.name} -> {v.requested.name}", escape(v.detail))
        console.print(t)
    refusals = [i for i in rep.info if i.kind == "refused"]
    if refusals:
        by_cat = Counter(i.category for i in refusals)
        parts = ", ".join(f"{k}: {n}" for k, n in sorted(by_cat.items()))
        console.print(f"[bold]Refused with -EINVAL as the uAPI wants:[/bold] {len(refusals)} "
                      f"({parts})")
    ties = [i for i in rep.info if i.kind == "tie"]
    if ties:
        console.print(f"[bold]Ties[/bold] (several shortest paths; the header leaves the "
                      f"choice to the kernel): {len(ties)}")
        for i in ties:
            console.print(f"  {feature_label(i.features or 0)}: {escape(i.detail)}")
    for i in rep.info:
        if i.kind in ("strict-interior", "comment-arcs", "coverage", "source-note"):
            where = f"{feature_label(i.features)}: " if i.features is not None else ""
            console.print(f"[bold]Note[/bold] ({i.kind}): {escape(where + i.detail)}")
    if rep.violations:
        counts = Counter(v.property for v in rep.violations)
        parts = ", ".join(f"{k}: {n}" for k, n in counts.items())
        console.print(f"[bold red]FAIL[/bold red]: {len(rep.violations)} violation(s) ({parts})")
    else:
        console.print("[bold green]OK[/bold green]: no violations")


@fsm.command("check")
@click.option("--kernel", "kernel_spec", metavar="FILE", default=None, help=KERNEL_HELP)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@define_option
@json_errors
def check_cmd(kernel_spec: str | None, as_json: bool, defines: tuple[str, ...]) -> None:
    """Check the kernel's step function for every feature set and (current, requested)
    pair: it terminates, steps are direct uAPI arcs, no unsupported state is entered, the
    target is reached or refused with -EINVAL, saving-group states only at a path's ends,
    paths are shortest."""
    kernel = load_kernel_option(kernel_spec, defines)
    require_feature_sets(kernel)
    with StepProgress("fsm check") as show:
        rep = audit_report(kernel, progress=show)
    if as_json:
        click.echo(json.dumps(rep.to_json(), indent=2))
    else:
        _render_report(rep, console())
    if rep.violations:
        raise SystemExit(1)


# ---------------------------------------------------------------------------- fsm graph
def fsm_graph(kernel: KernelStepFunction, flags: MigFlag) -> nx.DiGraph:
    """Direct arcs of the feature set (kind ``direct``) and any step the kernel takes that
    is not one (kind ``not-a-uapi-arc``); each edge lists the walks that use it."""
    import networkx as nx

    g = nx.DiGraph(kernel=kernel.source, features=feature_label(flags))
    for s in supported_states(flags):
        g.add_node(s.name, value=int(s), saving_group=bool(IN_SAVING_GROUP[int(s)]))
    for a, b in sorted(direct_arcs(flags)):
        g.add_edge(a.name, b.name, kind="direct", walks=[])
    paths: dict[str, dict[str, Any]] = {}
    for cur in supported_states(flags):
        for new in supported_states(flags):
            if cur == new:
                continue
            p = kernel.path(flags, cur, new)
            paths[f"{cur.name}->{new.name}"] = {"path": [s.name for s in p.steps],
                                                "result": p.result}
            walk = [cur, *p.steps]
            for a, b in zip(walk, walk[1:], strict=False):
                if not g.has_edge(a.name, b.name):
                    g.add_edge(a.name, b.name, kind="not-a-uapi-arc", walks=[])
                g.edges[a.name, b.name]["walks"].append(f"{cur.name}->{new.name}")
    for _a, _b, data in g.edges(data=True):
        data["label"] = f"{len(data['walks'])} walk(s)"
    g.graph["paths"] = paths
    return g


def graph_dot(g: nx.DiGraph) -> str:
    import graphviz  # type: ignore[import-untyped]

    label = f"{g.graph['features']} — {g.graph['kernel']}"
    bad = [f"{k} ({v['result']})" for k, v in g.graph["paths"].items()
           if v["result"] not in _TERMINAL]
    if bad:
        label += "\\nwalks that do not end: " + ", ".join(bad)
    dot = graphviz.Digraph("fsm", graph_attr={
        "label": label, "labelloc": "t",
        "fontname": "Helvetica", "rankdir": "LR"},
        node_attr={"fontname": "Helvetica", "shape": "box", "style": "rounded"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10"})
    with dot.subgraph(name="cluster_saving") as c:
        c.attr(label="saving group (one data session)", style="dashed")
        for n, data in g.nodes(data=True):
            if data["saving_group"]:
                c.node(n)
    for n, data in g.nodes(data=True):
        if not data["saving_group"]:
            dot.node(n)
    for a, b, data in g.edges(data=True):
        tooltip = "; ".join(data["walks"]) or "no walk uses this arc"
        if data["kind"] == "direct":
            dot.edge(a, b, label=str(len(data["walks"])), tooltip=tooltip)
        else:
            dot.edge(a, b, label=f"{len(data['walks'])} (not a uAPI arc)", color="red",
                     fontcolor="red", style="dashed", tooltip=tooltip)
    return dot.source


@fsm.command("graph")
@click.option("--features", "features", metavar="LIST", default=None, help=FEATURES_HELP)
@click.option("--kernel", "kernel_spec", metavar="FILE", default=None, help=KERNEL_HELP)
@click.option("--format", "fmt", type=click.Choice(["dot", "svg", "json"]), default="dot",
              show_default=True, help="output format")
@click.option("-o", "--output", metavar="FILE", default=None, help="write here (default stdout)")
@define_option
def graph_cmd(features: str | None, kernel_spec: str | None, fmt: str,
              output: str | None, defines: tuple[str, ...]) -> None:
    """The direct-arc graph of a feature set, each arc labelled with how many of the
    kernel's walks use it; steps that are not uAPI arcs are drawn red."""
    writable_file(output, "--output")
    kernel = load_kernel_option(kernel_spec, defines)
    flags = features_option(kernel, features)
    g = fsm_graph(kernel, flags)
    if fmt == "json":
        import networkx as nx

        _emit(json.dumps(nx.node_link_data(g, edges="edges"), indent=2) + "\n", output)
        return
    source = graph_dot(g)
    if fmt == "dot":
        _emit(source, output)
        return
    import graphviz  # type: ignore[import-untyped]

    try:
        svg = graphviz.Source(source).pipe(format="svg").decode("utf-8")
    except graphviz.ExecutableNotFound:
        raise UserError("--format svg needs Graphviz's 'dot' program on PATH") from None
    _emit(svg, output)


fsm.add_command(driver_cmd)

__all__ = ["fsm", "fsm_graph", "graph_dot", "path_json", "BUILTIN_KERNELS"]
