"""``vfio-migcheck graph SPEC``: the reachable state graph as DOT, SVG or JSON.

Small graphs are drawn state by state; larger ones as a quotient over a few variables
(for a migration spec: the migration status, QEMU's phase and the device states), with
the number of states each node stands for.  The graph is explored with the spec's
properties switched off, so a spec whose check stops at a violation is drawn in full,
its violating states marked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from checker.lang.layout import LayoutError
from checker.lang.spec import Spec
from checker.report.graphs import (
    FULL_GRAPH_MAX_STATES,
    QUOTIENT_MAX_NODES,
    GraphError,
    draw,
    explore_graph,
    render_svg,
    to_dot,
)
from cli.errors import UserError
from cli.load import load_target
from cli.options import writable_file, write_text

GRAPH_MAX_STATES = 500_000  # beyond this the graph is not explored for drawing
GRAPH_MAX_NODES = 5_000  # a drawing with more nodes is refused without --force

# Variables a migration spec's quotient keeps, in order of importance (the quotient drops
# variables from the end when it would have too many nodes): the migration status, QEMU's
# phase, then the kernel state of every source and destination device.
MIGRATION_QUOTIENT_FIELDS = ("status", "phase", "pc", "kstate", "dst_kstate", "dst_state")


def default_quotient(spec: Spec) -> list[str]:
    """The variables to group states by: a migration spec's phase and device states, else
    every enumerated scalar variable."""
    layout = spec.layout
    names = {f.name for f in layout.fields}
    if "status" in names and ("kstate" in names or "pc" in names):
        keys: list[str] = []
        for name in MIGRATION_QUOTIENT_FIELDS:
            if name in names:
                keys += [s.key for s in layout.slots if s.field.name == name]
        return keys
    return [s.key for s in layout.slots if s.field.values is not None]


def parse_quotient(spec: Spec, text: str | None) -> list[str]:
    if text is None:
        return default_quotient(spec)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    declared = [s.key for s in spec.layout.slots]
    for k in keys:
        if k not in declared:
            raise UserError(f"--quotient: no variable {k!r}; declared: {', '.join(declared)}")
    return keys


def _refuse(path: Path, nodes: int, max_nodes: int, full: bool) -> None:
    """A drawing too large to read (and to write: DOT is ~1 KB a state): exit 3."""
    hint = ("draw the quotient graph instead (drop --full; --quotient VAR,... chooses what a node "
            "keeps apart)" if full else "coarsen it (fewer --quotient variables, a lower --quotient-nodes)")
    click.echo(f"error: {path}: the drawing would have {nodes:,} nodes, more than --max-nodes "
               f"{max_nodes:,}; {hint}, or pass --force to write it anyway", err=True)
    sys.exit(3)


@click.command("graph")
@click.argument("spec_file", metavar="SPEC", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["dot", "svg", "json"]), default="svg", show_default=True)
@click.option("-o", "--output", "output", default="-", metavar="FILE", help="Output file ('-': stdout).")
@click.option(
    "--quotient",
    metavar="VAR,...",
    help="Group states by these variables (indexed ones as name[i]); default: the spec's phase "
    "and device states, or its enumerated variables.",
)
@click.option("--full", is_flag=True, help="Draw every state (more than --max-nodes only with --force).")
@click.option(
    "--full-max",
    type=click.IntRange(min=0),
    default=FULL_GRAPH_MAX_STATES,
    show_default=True,
    help="Draw every state up to this many; a quotient above.",
)
@click.option(
    "--quotient-nodes",
    type=click.IntRange(min=1),
    default=QUOTIENT_MAX_NODES,
    show_default=True,
    help="Coarsen the quotient (drop variables from the end) above this many nodes.",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=GRAPH_MAX_NODES,
    show_default=True,
    help="Refuse to write a drawing with more nodes (exit 3) unless --force.",
)
@click.option("--force", is_flag=True, help="Write the drawing however many nodes it has.")
@click.option(
    "--max-states",
    type=click.IntRange(min=1),
    default=GRAPH_MAX_STATES,
    show_default=True,
    help="Refuse graphs with more reachable states (exit 3).",
)
def graph(
    spec_file: str,
    fmt: str,
    output: str,
    quotient: str | None,
    full: bool,
    full_max: int,
    quotient_nodes: int,
    max_nodes: int,
    force: bool,
    max_states: int,
) -> None:
    """Draw the reachable state graph of SPEC."""
    path = Path(spec_file)
    if not path.is_file():
        raise UserError(f"{path}: no such spec file")
    writable_file(output, "--output")
    target = load_target(path)
    keys = parse_quotient(target.spec, quotient)
    sg = explore_graph(target.spec, max_states=max_states)
    if sg is None:
        click.echo(f"error: {path}: more than {max_states:,} reachable states; raise --max-states", err=True)
        sys.exit(3)
    if (full or len(sg.rows) <= full_max) and len(sg.rows) > max_nodes and not force:
        _refuse(path, len(sg.rows), max_nodes, full)  # before drawing: a full drawing is slow to build
    try:
        g = draw(
            sg,
            target.spec.layout,
            name=target.name,
            spec=target.spec,
            quotient=keys,
            full_max=full_max,
            max_nodes=quotient_nodes,
            force="full" if full else None,
        )
        if len(g.nodes) > max_nodes and not force:
            _refuse(path, len(g.nodes), max_nodes, full)
        if fmt == "json":
            text = json.dumps(g.as_json(), indent=1) + "\n"
        elif fmt == "dot":
            text = to_dot(g)
        else:
            text = render_svg(to_dot(g))
    except (GraphError, LayoutError) as exc:
        raise UserError(f"{path}: {exc}") from None
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_text(output, text, "--output")
    for note in g.notes:
        click.echo(note, err=True)
