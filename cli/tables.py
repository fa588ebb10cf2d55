"""``vfio-migcheck tables``: QEMU's dirty-tracking choice and migration blockers as decision
tables, enumerated by z3 over every configuration (:mod:`model.decision.tables`).

Per profile and device count, two tables:

* ``method``: the container's dirty-tracking method at log_global_start (and, for type1,
  what GET_BITMAP reports);
* ``blockers``: whether the VM migrates, is blocked, or does not start (a device with
  ``enable-migration=on`` fails to realize), the first blocker QEMU installs, and which
  blocker codes every (or some) configuration of the row has.

Each row is a partial configuration that z3 proved to force its outcome; ``·`` means any
value; rows may overlap and then agree.  ``--prove`` adds the properties proved for any
number of devices.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table as RichTable

from cli.interrupts import caused_by_ctrl_c, z3_interruptible
from model.decision.proofs import DEVICE_PROPERTIES, Proof, prove_any_devices
from model.decision.space import MAX_TABLE_DEVICES
from model.decision.tables import TABLE_KINDS, Table, decision_table
from model.profiles import PROFILE_NAMES, get_profile
from model.vmm import CLOUD_HYPERVISOR, QEMU, VMMS

ANY = "·"

LEGEND = (
    "Columns: devN.* are the N-th -device in command-line order; device-dirty-tracking = "
    "DMA logging supported (VFIO_DEVICE_FEATURE_DMA_LOGGING) and not switched off by "
    "x-device-dirty-page-tracking; p2p = VFIO_MIGRATION_P2P; pins = its driver pins pages "
    "(type1 pinned scope); iommu-dirty = its IOMMU reports dirty tracking (iommufd, 9.1+: "
    "the hwpt it gets follows -device order); iommu = type1 driver, iommufd, or QEMU's "
    "legacy container on iommufd's compat /dev/vfio/vfio; ram>8TiB = beyond type1's "
    "dirty-bitmap limit.  "
    f"'{ANY}' = any value, 'a|b' = either.  Every row is proved by z3 to force its outcome; "
    "the rows cover every configuration."
)


def _header(c: str) -> str:
    return c.replace("device-dirty-tracking", "dirty-trk").replace("enable-migration", "enable")


def _outcome_columns(kind: str) -> list[str]:
    if kind == "method":
        return ["method", "type1_reports"]
    return ["verdict", "first_blocker", "blockers", "blockers_possible"]


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value) if value else "-"
    return str(value)


def _rows(table: Table) -> tuple[list[str], list[list[str]]]:
    cols = table.used_columns()
    head = [_header(c.key) for c in cols] + _outcome_columns(table.kind)
    body = []
    for r in table.rows:
        cells = ["|".join(r.conditions[c.key]) if c.key in r.conditions else ANY for c in cols]
        cells += [_cell(r.outcome.get(k, "")) for k in _outcome_columns(table.kind)]
        body.append(cells)
    return head, body


def _title(t: Table) -> str:
    profile = get_profile(t.profile)
    n = f"{t.devices} device{'s' if t.devices > 1 else ''}"
    return (f"{profile} ({t.profile}), {n}: {t.kind} -- {t.configurations:,} configurations, "
            f"{len(t.rows)} rows, z3 {t.seconds:.2f} s")


def _print_text(out: Console, tables: list[Table]) -> None:
    out.print(LEGEND)
    for t in tables:
        head, body = _rows(t)
        rt = RichTable(title=_title(t), title_justify="left", show_lines=False)
        for h in head:
            rt.add_column(h)
        for row in body:
            rt.add_row(*row)
        out.print(rt)


def _markdown(tables: list[Table]) -> str:
    lines = [LEGEND, ""]
    for t in tables:
        head, body = _rows(t)
        lines += [f"### {_title(t)}", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        lines.append("")
    return "\n".join(lines)


def _proof_line(p: Proof) -> str:
    times = ", ".join(f"{k} {v:.3f} s" for k, v in p.queries.items())
    if p.holds:
        return f"{p.profile:>6}  {p.property}: proved for any number of devices ({times})"
    return (f"{p.profile:>6}  {p.property}: NOT proved, {p.failed_query} fails: "
            f"{json.dumps(p.counterexample)}")


def _proof_json(p: Proof) -> dict[str, Any]:
    return {"profile": p.profile, "property": p.property, "text": p.text, "holds": p.holds,
            "failed_query": p.failed_query, "counterexample": p.counterexample,
            "seconds": {k: round(v, 4) for k, v in p.queries.items()}}


@click.command("tables")
@click.option("--vmm", type=click.Choice(VMMS), default=QEMU, show_default=True,
              help="Whose rules: QEMU's decision tables (z3), or cloud-hypervisor's refusals.")
@click.option("--profile", "profiles", multiple=True, type=click.Choice(PROFILE_NAMES),
              help="QEMU profile (repeatable; default: every profile).")
@click.option("--devices", type=click.IntRange(1, MAX_TABLE_DEVICES), default=2,
              show_default=True, help=f"Tables for 1 up to N devices (N <= {MAX_TABLE_DEVICES}).")
@click.option("--kind", type=click.Choice([*TABLE_KINDS, "all"]), default="all",
              show_default=True, help="Which table: the tracking method, the blockers, or both.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True)
@click.option("--prove", "do_prove", is_flag=True,
              help="Also prove, for any number of devices: device logging is never chosen "
                   "when a device lacks it; never active with a vIOMMU; a multi-device "
                   "migration without P2P on every device is blocked.")
def tables(vmm: str, profiles: tuple[str, ...], devices: int, kind: str, fmt: str,
           do_prove: bool) -> None:
    """Decision tables of QEMU's dirty-tracking method and migration blockers, enumerated
    with z3 over every configuration of up to --devices devices (--vmm cloud-hypervisor:
    cloud-hypervisor's refusals, every configuration evaluated)."""
    if vmm == CLOUD_HYPERVISOR:
        _cloud_hypervisor(profiles, devices, kind, fmt, do_prove)
        return
    z3_interruptible()
    names = profiles or PROFILE_NAMES
    kinds = list(TABLE_KINDS) if kind == "all" else [kind]
    result: list[Table] = []
    proofs: list[Proof] = []
    interrupted = undecided = False
    try:
        _tables(result, names, devices, kinds, show_progress=fmt == "text")
        if do_prove:
            _proofs(proofs, names)
    except (KeyboardInterrupt, Exception) as exc:
        # A Ctrl-C ends z3's query as it can: KeyboardInterrupt, z3's "canceled", or an
        # unknown answer; the tables finished before it are kept, the one it cut is not.
        if caused_by_ctrl_c(exc):
            interrupted = True
        elif isinstance(exc, TimeoutError):  # z3 answered unknown: no verdict
            click.echo(f"unknown: {exc}", err=True)
            undecided = True
        else:
            raise
    if interrupted and fmt == "text":
        # Rendering dozens of finished tables through rich can take longer than the user
        # is willing to wait after Ctrl-C; json and markdown keep the partial result.
        click.echo(f"interrupted after {len(result)} table(s) and {len(proofs)} proof(s); "
                   "not printed (--format json or markdown print partial tables)", err=True)
        sys.exit(130)
    _emit(result, proofs, fmt, interrupted=interrupted)
    if interrupted:
        click.echo(f"interrupted after {len(result)} table(s) and {len(proofs)} proof(s)", err=True)
        sys.exit(130)
    sys.exit(1 if not all(p.holds for p in proofs) else 3 if undecided else 0)


def _emit(result: list[Table], proofs: list[Proof], fmt: str, *, interrupted: bool) -> None:
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "interrupted": interrupted,
                               "tables": [t.as_json() for t in result],
                               "proofs": [_proof_json(p) for p in proofs]}, indent=2))
    elif fmt == "markdown":
        click.echo(_markdown(result))
        if proofs:
            click.echo("### Proved for any number of devices\n")
            click.echo("\n".join(f"- {_proof_line(p)}" for p in proofs))
    else:
        _print_all(result, proofs)


def _cloud_hypervisor(profiles: tuple[str, ...], devices: int, kind: str, fmt: str,
                      do_prove: bool) -> None:
    from cli.errors import UserError
    from cli.tables_ch import as_markdown, ch_tables

    for given, what in ((profiles, "--profile"), (do_prove, "--prove")):
        if given:
            raise UserError(f"{what}: a QEMU option; cloud-hypervisor has one profile "
                            "(ae44c297) and its table covers every configuration")
    if kind == "method":
        raise UserError("--kind method: cloud-hypervisor has no method to choose (DMA logging "
                        "in precopy, nothing in local or postcopy); use --kind blockers")
    result = ch_tables(devices)
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "tables": [t.as_json() for t in result],
                               "proofs": []}, indent=2))
    else:
        click.echo(as_markdown(result))


def _tables(result: list[Table], names: Sequence[str], devices: int, kinds: Sequence[str], *,
            show_progress: bool) -> None:
    """Append each table to ``result`` as it is computed (so Ctrl-C keeps those done)."""
    err = Console(file=sys.stderr, highlight=False)
    for name in names:
        for n in range(1, devices + 1):
            for k in kinds:
                if show_progress:
                    err.print(f"[dim]z3: {name}, {n} device(s), {k} ...[/dim]")
                result.append(decision_table(name, n, k))


def _proofs(proofs: list[Proof], names: Sequence[str]) -> None:
    for name in names:
        p = get_profile(name)
        for prop in DEVICE_PROPERTIES:
            if prop.applies(p):
                proofs.append(prove_any_devices(p, prop))


def _print_all(result: list[Table], proofs: list[Proof]) -> None:
    out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out.width = 220
    _print_text(out, result)
    if proofs:
        out.print("\nFor any number of devices (induction over QEMU's realize loop):")
        for p in proofs:
            out.print(_proof_line(p), markup=False)
