"""``vfio-migcheck simulate`` for a cloud-hypervisor scenario: its iteration and downtime
rules (:mod:`model.cloud_hypervisor.concrete`) on the same concrete guest as QEMU's run.

cloud-hypervisor tracks device writes only by DMA logging (there is no method to choose),
so ``--method`` does not apply; ``--timeout-strategy`` is its ``timeout_strategy`` option
and ``--max-rounds`` stands for ``timeout_s`` (the iterations the timeout allows).  A local
or postcopy migration sends no memory before the switchover, so there is nothing to
simulate for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.errors import UserError
from model.cloud_hypervisor.concrete import ChRun, run_config, run_precopy
from model.cloud_hypervisor.decision import decide
from model.concrete.executor import ExecutorError
from model.concrete.plan import GuestLoad
from model.contract import PAGE_SIZE
from model.scenario import Scenario


def simulate_ch(scenario: Scenario, opts: Any, *, methods: tuple[str, ...], timeout_strategy: str,
                as_json: bool, plot: Path | None, require_convergence: bool,
                helpers: Any) -> None:
    """Run and report one cloud-hypervisor precopy (``helpers``: cli.simulate, for the
    shared sizes, tables and plot)."""
    if methods:
        raise UserError("--method: cloud-hypervisor tracks device writes by DMA logging only "
                        "(KVM's log for the vCPUs); there is no method to choose")
    decision = decide(scenario)
    if decision.mode != "precopy":
        raise UserError(f"{scenario.path}: a cloud-hypervisor {decision.mode} migration sends "
                        "no memory before the switchover; simulate runs precopy migrations")
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if decision.blocked:
        _blocked(scenario, decision, as_json, out)
        sys.exit(1)
    guest = opts.guest_size if opts.guest_size is not None else scenario.vm.ram
    load = GuestLoad(guest_bytes=guest, cpu_dirty_rate=opts.cpu_dirty_rate, hot_set=opts.hot_set,
                     dma_rate=opts.dma_rate, dma_set=opts.dma_set,
                     stop_copy_bytes=opts.stop_copy_size)
    cfg = run_config(scenario, load, bandwidth=opts.bandwidth, downtime_limit=opts.downtime_limit,
                     max_rounds=opts.max_rounds, step=opts.step, stop_latency=opts.stop_latency,
                     seed=opts.seed)
    try:
        cfg.validate()
        run = run_precopy(cfg, timeout_strategy=timeout_strategy)
    except ExecutorError as exc:
        raise UserError(f"{scenario.path}: {exc}") from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    if plot is not None:
        helpers.write_plot(plot, [("cloud-hypervisor", run.result)], opts.downtime_limit)
    if as_json:
        click.echo(json.dumps(_json_doc(scenario, guest, opts, timeout_strategy, run), indent=2))
    else:
        _text(scenario, guest, run, out, helpers)
    lost = not run.result.all_arrived
    stuck = (require_convergence and not run.result.converged) or run.cancelled
    sys.exit(1 if lost or stuck else 0)


def _blocked(scenario: Scenario, decision: Any, as_json: bool, out: Console) -> None:
    if as_json:
        click.echo(json.dumps({"version": 1, "vmm": "cloud-hypervisor", "spec": str(scenario.path),
                               "outcome": "blocked", "blocked_by": list(decision.blocked_by),
                               "blockers": [b.message for b in decision.blockers],
                               "results": []}, indent=2))
        return
    out.print(f"{scenario.path}: cloud-hypervisor refuses this migration, nothing to simulate:",
              soft_wrap=True)
    for b in decision.blockers:
        out.print(f"  - {b.message}", soft_wrap=True)


def _json_doc(scenario: Scenario, guest: int, opts: Any, strategy: str, run: ChRun) -> dict[str, Any]:
    r = run.result
    return {
        "version": 1,
        "vmm": "cloud-hypervisor",
        "cloud_hypervisor": scenario.cloud_hypervisor,
        "spec": str(scenario.path),
        "outcome": "cancelled" if run.cancelled else ("lost-pages" if not r.all_arrived else "ok"),
        "tracking_method": r.method,
        "guest_bytes": guest,
        "page_size": PAGE_SIZE,
        "bandwidth_bytes_per_s": opts.bandwidth,
        "downtime_limit_s": opts.downtime_limit,
        "timeout_strategy": strategy,
        "estimated_downtime_s": run.estimated_downtime_s,
        "device_state_bytes": run.device_state_bytes,
        "results": [dict(r.to_dict(), chosen_by="cloud-hypervisor")],
    }


def _text(scenario: Scenario, guest: int, run: ChRun, out: Console, helpers: Any) -> None:
    r = run.result
    out.print(f"[bold]{scenario.path}[/bold]: cloud-hypervisor {scenario.cloud_hypervisor}, guest "
              f"{helpers.human_bytes(guest)} ({guest // PAGE_SIZE:,} pages); KVM's log + DMA "
              "logging", soft_wrap=True)
    out.print(helpers._rounds_table(r))
    t = Table(title="migration (cloud-hypervisor's rules)", title_justify="left")
    for col in ("converged", "dirty-log iterations", "total", "estimated downtime", "downtime", "sent",
                "pages"):
        t.add_column(col, justify="right", no_wrap=True)
    est = run.estimated_downtime_s
    t.add_row("cancelled" if run.cancelled else ("yes" if r.converged else "no (ignored)"),
              str(r.precopy_rounds), helpers.human_seconds(r.total_time_s),
              helpers.human_seconds(est) if est is not None else "-",
              helpers.human_seconds(r.downtime_s), helpers.human_bytes(r.bytes_sent),
              "all arrived" if r.all_arrived else f"[red]{r.lost_pages:,} lost[/red]")
    out.print(t)
    if run.cancelled:
        out.print("the timeout was reached with timeout_strategy=cancel: the migration fails "
                  "and the VM keeps running on the source", soft_wrap=True)
    elif run.device_state_bytes:
        out.print(f"is_precopy_converged() estimated {helpers.human_seconds(est or 0)} from memory "
                  f"alone; the {helpers.human_bytes(run.device_state_bytes)} of device state sent "
                  f"in the downtime make it {helpers.human_seconds(r.downtime_s)}", soft_wrap=True)
