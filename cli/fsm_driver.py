"""``vfio-migcheck fsm driver FILE...``: a variant driver's step function against the walk.

Finds the driver's step function (the one its loop calls with the step
``vfio_mig_get_next_state()`` returned, or ``--function NAME``), reads every arm it
handles, and compares them with the arcs the kernel's walk hands a device with the
driver's features (:func:`model.fsm.driver.check.check_driver`).  The features are given
with ``--features`` because drivers set them in another file or at run time.

JSON (contract): ``{"version": 1, "driver", "function", "line", "features", "kernel",
"handled": [[cur, new, line]], "missing": [{"arc": [cur, new], "via": [cur, requested],
"line"}], "extra": [[cur, new]], "unparsed": [{"file", "line", "reason", "arcs"}],
"undecided": [[cur, new]], "notes": [...]}`` with the uAPI's state names (a missing arc's
``line`` is where the driver refuses it).  Exit 1 on a missing arc, 2
when an arc the kernel emits could not be decided (or on a user error), else 0.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.errors import UserError
from cli.fsm_options import (
    KERNEL_HELP,
    console,
    define_option,
    json_errors,
    load_kernel_option,
    macros,
    reading,
)
from model.fsm.driver.check import DriverReport, check_driver
from model.fsm.driver.source import find_step_function, load_units
from model.fsm.uapi import FeatureError, feature_label, parse_features

DRIVER_FEATURES_HELP = ("the migration features the driver advertises (its "
                        "migration_flags), comma-separated: p2p, pre-copy; stop-copy is "
                        "always implied")


def render_driver(rep: DriverReport, out: Console) -> None:
    out.print(f"[bold]Driver:[/bold] {escape(rep.driver)}: {rep.function}() at line "
              f"{rep.line}")
    out.print(f"[bold]Features:[/bold] {feature_label(rep.features)}; "
              f"[bold]kernel:[/bold] {escape(rep.kernel)}")
    t = Table(title=f"{len(rep.handled)} arc(s) handled", show_lines=False)
    t.add_column("Arc", no_wrap=True)
    t.add_column("Line", justify="right")
    for a, b, line in rep.handled:
        t.add_row(f"{a.name} -> {b.name}", str(line))
    out.print(t)
    for (a, b), (c, r), line in rep.missing:
        out.print(f"[bold red]missing[/bold red]: {a.name} -> {b.name}: the kernel hands it "
                  f"for a request {c.name} -> {r.name}; the driver refuses it at line {line}")
    for a, b in rep.extra:
        out.print(f"[bold yellow]extra[/bold yellow]: {a.name} -> {b.name} is handled but "
                  "never emitted for these features (dead code)")
    for u in rep.unparsed:
        arcs = ", ".join(f"{a.name} -> {b.name}" for a, b in u.arcs)
        out.print(f"[bold]unparsed[/bold]: {escape(u.file)}:{u.line}: {escape(u.reason)}"
                  f" (leaves open: {arcs})")
    for note in rep.notes:
        out.print(f"[bold]Note:[/bold] {escape(note)}")
    if rep.missing:
        out.print(f"[bold red]FAIL[/bold red]: {len(rep.missing)} arc(s) the kernel emits "
                  "are not handled")
    elif rep.unknown:
        out.print(f"[bold red]UNDECIDED[/bold red]: {len(rep.unknown)} emitted arc(s) depend "
                  "on arms the reader could not follow")
    else:
        out.print("[bold green]OK[/bold green]: every arc the kernel emits is handled")


@click.command("driver")
@click.argument("files", nargs=-1, required=True, metavar="FILE [FILE...]")
@click.option("--features", "features", metavar="LIST", required=True,
              help=DRIVER_FEATURES_HELP)
@click.option("--kernel", "kernel_spec", metavar="FILE", default=None, help=KERNEL_HELP)
@click.option("--function", "function", metavar="NAME", default=None,
              help="the driver's step function (default: the one its loop calls)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@define_option
@json_errors
def driver_cmd(files: tuple[str, ...], features: str, kernel_spec: str | None,
               function: str | None, as_json: bool, defines: tuple[str, ...]) -> None:
    """Check a variant driver's step function: every arc the kernel's walk can hand a
    device with these features must have an arm.  FILEs are the driver's C sources (the
    file with the set-state loop and the one with the step function, if they differ)."""
    try:
        flags = parse_features(features)
    except FeatureError as e:
        raise UserError(f"--features: {e}") from None
    kernel = load_kernel_option(kernel_spec, defines)
    if flags not in kernel.flag_sets:
        raise UserError(f"{kernel.source} does not know the feature set "
                        f"{feature_label(flags)}")
    with reading():
        units = load_units(list(files), macros(defines))
        step = find_step_function(units, function)
        rep = check_driver(step, units, kernel, flags)
    if as_json:
        click.echo(json.dumps(rep.to_json(), indent=2))
    else:
        render_driver(rep, console())
    if rep.exit_code:
        raise SystemExit(rep.exit_code)
