"""``vfio-migcheck simulate``: a concrete migration of a realistic guest (docs/design.md#concrete-executor).

The spec file gives the VM, its devices, the QEMU profile and the mutations; QEMU's
choice of dirty-tracking method (``model.decision.tracking.decide``) picks the reporting semantics
unless ``--method`` overrides it; the workload, sizes and link come from the options.
The run itself is ``model.concrete.executor``.

How the spec's abstract pages map onto the concrete guest is :mod:`model.concrete.plan`
(the mapping the conformance test uses too): the guest is cut into ``[vm].pages`` equal
regions, abstract page ``p`` being region ``p``; a device writes (and pins) its share of
``--dma-set`` at the start of the regions of its ``dma_pages`` (``pins``); the vCPUs write a
hot set of ``--hot-set`` bytes at the start of guest memory when ``[vm].cpu_writes``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.errors import UserError
from cli.load import load_migration
from cli.options import writable_file
from model import units
from model.concrete.executor import METHODS, Executor, ExecutorError, RunConfig
from model.concrete.plan import (
    GuestLoad,
    executor_method,
    timed_config,
    unexercised_keys,
    unexercised_mutations,
)
from model.concrete.results import MigrationResult, RoundStats, RunStatus
from model.contract import PAGE_SIZE
from model.scenario import Scenario
from model.units import human_bytes

# --- units (model.units: the one parser of sizes, rates and durations) ----------------------


MAX_SIZE = 1 << 44  # 16 TiB: 2**32 pages of 4 KiB, 512 MiB a bitmap


def _finite(option: str, text: str, value: float) -> float:
    if not math.isfinite(value):
        raise UserError(f"{option}: {text!r} is too large a number")
    return value


def parse_size(option: str, text: str) -> int:
    """A size in bytes (:func:`model.units.parse_size`), or a one-line error naming the flag."""
    try:
        size = units.parse_size(text)
    except units.UnitError as exc:
        raise UserError(f"{option}: {exc}") from None
    if size > MAX_SIZE:  # the bitmaps of a larger guest would not fit in memory
        raise UserError(f"{option}: {text!r} is too large a number (at most {human_bytes(MAX_SIZE)})")
    return size


def parse_rate(option: str, text: str) -> float:
    """Bytes per second (:func:`model.units.parse_rate`), or a one-line error naming the flag."""
    try:
        return _finite(option, text, units.parse_rate(text))
    except units.UnitError as exc:
        raise UserError(f"{option}: {exc}") from None
    except OverflowError:
        raise UserError(f"{option}: {text!r} is too large a number") from None


def parse_duration(option: str, text: str) -> float:
    """Seconds (:func:`model.units.parse_duration`), or a one-line error naming the flag."""
    try:
        return _finite(option, text, units.parse_duration(text))
    except units.UnitError as exc:
        raise UserError(f"{option}: {exc}") from None
    except OverflowError:
        raise UserError(f"{option}: {text!r} is too large a number") from None


def human_seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min"


# --- spec → executor configuration ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    guest_size: int | None
    cpu_dirty_rate: float
    hot_set: int
    dma_rate: float
    dma_set: int
    stop_copy_size: int
    bandwidth: float
    downtime_limit: float
    max_rounds: int
    step: float
    stop_latency: float
    seed: int


@dataclasses.dataclass
class Plan:
    """What will be simulated for one spec: the decision and one config per method."""

    spec: str
    guest_bytes: int
    qemu_method: str
    blocked_by: list[str]
    blocker_messages: list[str]
    notes: list[str]
    unmodelled_mutations: list[str]
    viommu: bool
    warnings: list[str]
    configs: list[tuple[str, RunConfig]]  # (how chosen: "qemu"|"override", config)


def build_plan(scenario: Scenario, opts: Options, methods: Sequence[str]) -> Plan:
    """Take QEMU's decision for ``scenario`` on the simulated guest and map it onto the
    executor (:mod:`model.concrete.plan`), once per method (QEMU's, or each override)."""
    from model.decision.tracking import decide

    spec_path = scenario.path
    guest = opts.guest_size if opts.guest_size is not None else scenario.vm.ram
    _check_guest_size(guest, scenario.vm.pages)
    # QEMU's decision sees the simulated RAM size (the type1 large-RAM blocker reads it).
    scenario = dataclasses.replace(scenario, vm=dataclasses.replace(scenario.vm, ram=guest))
    decision = decide(scenario)
    load = GuestLoad(guest_bytes=guest, cpu_dirty_rate=opts.cpu_dirty_rate, hot_set=opts.hot_set,
                     dma_rate=opts.dma_rate, dma_set=opts.dma_set,
                     stop_copy_bytes=opts.stop_copy_size)
    qemu_method = str(decision.method.value)
    reporting = executor_method(scenario, decision)
    warnings: list[str] = []
    if reporting != qemu_method:
        warnings.append(f"QEMU {scenario.profile.name}: the all-dirty fallback is never reached "
                        "from log_sync (dirty tracking never counts as started), so nothing "
                        "reports the devices' writes: simulated as method 'none'")
    ignored = unexercised_keys(scenario)
    if ignored:
        warnings.append(f"{', '.join(ignored)}: not exercised by a timed run "
                        "(one attempt, no faults, no cancel: `check` explores those paths)")
    if scenario.vm.paused:
        warnings.append("[vm].paused: the VM stays paused, so neither vCPUs nor devices write "
                        "(the --cpu-dirty-rate and --dma-rate given are not applied)")
    chosen = [(m, "override") for m in methods] if methods else [(reporting, "qemu")]
    configs = []
    for method, how in chosen:
        cfg = timed_config(scenario, decision, load, method=method, bandwidth=opts.bandwidth,
                           downtime_limit=opts.downtime_limit, max_rounds=opts.max_rounds,
                           step=opts.step, stop_latency=opts.stop_latency, seed=opts.seed)
        try:
            cfg.validate()
        except ExecutorError as exc:
            raise UserError(f"{spec_path}: --method {method}: {exc}") from None
        configs.append((how, cfg))
    return Plan(
        spec=str(spec_path),
        guest_bytes=guest,
        qemu_method=qemu_method,
        blocked_by=list(decision.blocked_by),
        blocker_messages=[b.message for b in decision.blockers],
        notes=list(decision.notes),
        unmodelled_mutations=unexercised_mutations(scenario),
        viommu=scenario.vm.viommu,
        warnings=warnings,
        configs=configs,
    )


def _check_guest_size(guest: int, abstract_pages: int) -> None:
    if guest < PAGE_SIZE or guest % PAGE_SIZE:
        raise UserError(f"--guest-size: {guest} bytes is not a positive multiple of the "
                        f"{PAGE_SIZE}-byte page")
    if guest // PAGE_SIZE < abstract_pages:
        raise UserError(f"--guest-size: {human_bytes(guest)} has fewer pages than the spec's "
                        f"vm.pages = {abstract_pages}")


# --- output ---------------------------------------------------------------------------------


def _rounds_table(result: MigrationResult) -> Table:
    t = Table(title=f"{result.method}: pre-copy rounds", title_justify="left")
    for col in ("round", "time", "sent", "dirtied", "remaining", "expected downtime"):
        t.add_column(col, justify="right")
    rows = list(result.rounds)
    shown: list[RoundStats | None] = [*rows] if len(rows) <= 20 else [*rows[:10], None, *rows[-5:]]
    for r in shown:
        if r is None:
            t.add_row("…", "", "", "", "", "")
            continue
        t.add_row(str(r.round), human_seconds(r.time_s), f"{r.pages_sent:,}",
                  f"{r.pages_dirtied:,}", f"{r.pages_remaining:,}",
                  human_seconds(r.expected_downtime_s))
    return t


def _summary_table(results: list[tuple[str, MigrationResult]]) -> Table:
    t = Table(title="migration (* = QEMU's choice for this spec)", title_justify="left")
    for col in ("method", "converged", "rounds", "total", "downtime", "sent", "pages"):
        t.add_column(col, justify="left" if col in ("method", "pages") else "right",
                     no_wrap=True)
    for how, r in results:
        pages = "all arrived" if r.all_arrived else f"[red]{r.lost_pages:,} lost[/red]"
        t.add_row(r.method + (" *" if how == "qemu" else ""), "yes" if r.converged else "no",
                  str(r.precopy_rounds), human_seconds(r.total_time_s),
                  human_seconds(r.downtime_s), human_bytes(r.bytes_sent), pages)
    return t


def write_plot(path: Path, results: list[tuple[str, MigrationResult]], downtime_limit: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for _, r in results:
        xs = [x.round for x in r.rounds]
        ax1.plot(xs, [max(1, x.pages_remaining) for x in r.rounds], marker="o", label=r.method)
        ax2.plot(xs, [x.expected_downtime_s for x in r.rounds], marker="o", label=r.method)
    ax1.set_yscale("log")
    ax1.set_ylabel("dirty pages after sync")
    ax1.set_title("remaining dirty pages per round")
    ax2.axhline(downtime_limit, color="grey", linestyle="--", label="downtime limit")
    ax2.set_yscale("log")
    ax2.set_ylabel("expected downtime (s)")
    ax2.set_xlabel("pre-copy round (0 = setup)")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise UserError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


class _ProgressFeed:
    """Turns executor status reports into a rich progress bar (throttled) on a terminal,
    and into a plain line every 2 s elsewhere (``plain``: where to print them)."""

    PLAIN_EVERY = 2.0

    def __init__(self, progress: Progress, label: str, max_rounds: int, plain: Console | None = None) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=max(1, max_rounds), info="")
        self.label = label
        self.plain = plain
        self.last = 0.0
        self.last_line = time.monotonic()
        self.round = -1
        self.round_start = 1

    def __call__(self, st: RunStatus) -> None:
        if st.round != self.round:
            self.round, self.round_start = st.round, max(1, st.pages_remaining)
        now = time.monotonic()
        if self.plain is not None and now - self.last_line >= self.PLAIN_EVERY:
            self.last_line = now
            self.plain.print(f"Progress({self.label}: round {st.round}/{st.max_rounds}, "
                             f"t={human_seconds(st.time_s)}, dirty {st.pages_remaining:,}, {st.phase})",
                             markup=False)
        if now - self.last < 0.1 and st.phase == "pre-copy":
            return
        self.last = now
        within = 1.0 - min(1.0, st.pages_remaining / self.round_start)
        done = st.max_rounds if st.phase == "done" else min(st.max_rounds, st.round + within)
        info = f"round {st.round}, t={human_seconds(st.time_s)}, dirty {st.pages_remaining:,}"
        self.progress.update(self.task, completed=done, info=f"{info} ({st.phase})")


# --- the command ----------------------------------------------------------------------------

_EPILOG = """\b
Exit codes: 0 every simulated migration delivered every page (whether or not it
converged; with --require-convergence it must also have converged); 1 a page was lost,
or the spec is blocked (its blockers are printed; give --method to simulate anyway),
or (--require-convergence) a migration did not converge; 2 a usage or spec-file error;
130 interrupted.

\b
A migration that does not converge within --max-rounds is switched over anyway (as if
the downtime limit were raised) so that its pages can still be checked: it is reported
"converged: no" with the downtime that forced switchover costs.

\b
The spec's [vm].pages abstract pages become equal regions of the guest; each device
writes (and pins) its share of --dma-set at the start of the regions of its dma_pages
(pins).  --method none reports nothing from VFIO (what QEMU >= 10.0 appears to do when
neither devices nor container can track; see model/concrete/executor.py).
"""


@click.command(epilog=_EPILOG)
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--guest-size", default=None, metavar="SIZE",
              help="Guest RAM [default: the spec's vm.ram, 16GiB if unset].")
@click.option("--cpu-dirty-rate", default="256MiB/s", show_default=True, metavar="RATE",
              help="vCPU write rate (when the spec's vm.cpu_writes).")
@click.option("--hot-set", default="2GiB", show_default=True, metavar="SIZE",
              help="Memory the vCPUs write into (from the start of RAM).")
@click.option("--dma-rate", default="128MiB/s", show_default=True, metavar="RATE",
              help="DMA write rate of each device.")
@click.option("--dma-set", default="1GiB", show_default=True, metavar="SIZE",
              help="Memory each device writes into (spread over its dma_pages regions).")
@click.option("--stop-copy-size", default="0", show_default=True, metavar="SIZE",
              help="Device state per device sent at stop-copy (stop_copy_length).")
@click.option("--bandwidth", default="10Gbps", show_default=True, metavar="RATE",
              help="Migration link bandwidth (also QEMU's switchover bandwidth).")
@click.option("--downtime-limit", default="300ms", show_default=True, metavar="TIME",
              help="QEMU's downtime-limit; threshold = bandwidth x downtime-limit.")
@click.option("--max-rounds", default=30, show_default=True, type=click.IntRange(1),
              help="Pre-copy dirty syncs before giving up on convergence.")
@click.option("--step", default="100ms", show_default=True, metavar="TIME",
              help="Simulated time per iteration (QEMU's BUFFER_DELAY).")
@click.option("--stop-latency", default="5ms", show_default=True, metavar="TIME",
              help="Time the guest and devices run on between the switchover decision and "
                   "their stop.")
@click.option("--method", "methods", multiple=True, type=click.Choice(METHODS),
              help="Override QEMU's tracking method; repeat to compare methods.")
@click.option("--timeout-strategy", type=click.Choice(("cancel", "ignore")), default=None,
              help="cloud-hypervisor: what its timeout (--max-rounds iterations) does "
                   "[default: cancel].")
@click.option("--seed", default=0, show_default=True, type=int, help="Workload random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.png", help="Write remaining dirty pages and expected downtime "
                                       "per round as a PNG.")
@click.option("--require-convergence", is_flag=True,
              help="Exit 1 when a migration does not converge.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def simulate(spec: str, guest_size: str | None, cpu_dirty_rate: str, hot_set: str,
             dma_rate: str, dma_set: str, stop_copy_size: str, bandwidth: str,
             downtime_limit: str, max_rounds: int, step: str, stop_latency: str,
             methods: tuple[str, ...], timeout_strategy: str | None, seed: int, as_json: bool,
             plot: Path | None, require_convergence: bool, no_progress: bool) -> None:
    """Run a concrete migration of SPEC's VM on packed page bitmaps.

    Sends a guest of realistic size page by page over a link, while the vCPUs and the
    devices dirty memory, with the dirty-tracking method QEMU would choose for SPEC (or
    each --method), and checks with per-page version counters that every page arrives.
    Reports per pre-copy round (pages sent, dirtied, remaining, expected downtime) and in
    total (time, downtime, bytes, convergence, lost pages).

    Sizes: bytes or K/KiB, M/MiB, G/GiB, T/TiB (binary) or KB, MB, GB, TB (decimal).
    Rates: bits per second (Mbps, Gbps, Gbit/s) or bytes per second (MiB/s, GB/s).
    Times: us, ms, s, min.
    """
    opts = _options(guest_size=guest_size, cpu_dirty_rate=cpu_dirty_rate, hot_set=hot_set,
                    dma_rate=dma_rate, dma_set=dma_set, stop_copy_size=stop_copy_size,
                    bandwidth=bandwidth, downtime_limit=downtime_limit, max_rounds=max_rounds,
                    step=step, stop_latency=stop_latency, seed=seed)
    scenario = _scenario(spec, plot)
    if scenario.is_cloud_hypervisor:
        from cli.simulate_ch import simulate_ch

        simulate_ch(scenario, opts, methods=methods, timeout_strategy=timeout_strategy or "cancel",
                    as_json=as_json, plot=plot, require_convergence=require_convergence,
                    helpers=sys.modules[__name__])
        return
    if timeout_strategy is not None:
        raise UserError("--timeout-strategy: a cloud-hypervisor option (QEMU has no migration "
                        "timeout); this spec is QEMU's")
    plan = build_plan(scenario, opts, list(dict.fromkeys(methods)))
    # Piped output (CI logs, files) gets a fixed width wide enough for the tables.
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if plan.blocked_by and not methods:
        _report_blocked(plan, as_json, out)
        sys.exit(1)
    for note in _notes(plan, overridden=bool(methods), as_json=as_json):
        err.print(f"note: {note}", markup=False)
    results, interrupted = _run_all(plan, show_progress=not no_progress and err.is_terminal, err=err,
                                    plain=not no_progress and not err.is_terminal)
    if plot is not None and results:
        write_plot(plot, results, opts.downtime_limit)
    if as_json:
        click.echo(json.dumps({**_json_doc(plan, opts, results), "interrupted": interrupted}, indent=2))
    elif results:
        _report_text(plan, results, out)
    if interrupted:
        sys.exit(130)
    lost = any(not r.all_arrived for _, r in results)
    stuck = require_convergence and any(not r.converged for _, r in results)
    sys.exit(1 if lost or stuck else 0)


def _scenario(spec: str, plot: Path | None) -> Scenario:
    """The spec's scenario, once the output path is known to be writable."""
    if not Path(spec).is_file():
        raise UserError(f"{spec}: no such spec file")
    writable_file(plot, "--plot")
    return load_migration(Path(spec), "simulate").scenario


def _options(*, guest_size: str | None, cpu_dirty_rate: str, hot_set: str, dma_rate: str,
             dma_set: str, stop_copy_size: str, bandwidth: str, downtime_limit: str,
             max_rounds: int, step: str, stop_latency: str, seed: int) -> Options:
    """The command line's sizes, rates and times, read and checked."""
    opts = Options(
        guest_size=parse_size("--guest-size", guest_size) if guest_size is not None else None,
        cpu_dirty_rate=parse_rate("--cpu-dirty-rate", cpu_dirty_rate),
        hot_set=parse_size("--hot-set", hot_set),
        dma_rate=parse_rate("--dma-rate", dma_rate),
        dma_set=parse_size("--dma-set", dma_set),
        stop_copy_size=parse_size("--stop-copy-size", stop_copy_size),
        bandwidth=parse_rate("--bandwidth", bandwidth),
        downtime_limit=parse_duration("--downtime-limit", downtime_limit),
        max_rounds=max_rounds,
        step=parse_duration("--step", step),
        stop_latency=parse_duration("--stop-latency", stop_latency),
        seed=seed,
    )
    for name, value in (("--bandwidth", opts.bandwidth), ("--downtime-limit", opts.downtime_limit),
                        ("--step", opts.step), ("--hot-set", opts.hot_set),
                        ("--dma-set", opts.dma_set)):
        if value <= 0:
            raise UserError(f"{name}: must be positive")
    return opts


def _notes(plan: Plan, *, overridden: bool, as_json: bool) -> list[str]:
    """What stderr says before the runs: where the simulation departs from the spec."""
    notes = []
    if plan.blocked_by:
        notes.append(f"QEMU would block this migration ({', '.join(plan.blocked_by)}); "
                     "simulating the --method given anyway")
    if as_json:
        return notes
    if plan.unmodelled_mutations:
        notes.append(f"mutation(s) {', '.join(plan.unmodelled_mutations)} are not exercised "
                     "by a concrete run (vIOMMU, P2P ordering, retries, cancel)")
    if not overridden:
        notes.extend(plan.warnings)
    if plan.viommu:
        notes.append("the concrete run does not model vIOMMU mappings (IOVA = guest address)")
    return notes


def _run_all(plan: Plan, show_progress: bool, err: Console,
             plain: bool = False) -> tuple[list[tuple[str, MigrationResult]], bool]:
    """The runs, one per method, and whether Ctrl-C stopped them (the finished ones are kept)."""
    results: list[tuple[str, MigrationResult]] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=err, disable=not show_progress, transient=True)
    try:
        with progress:
            for how, cfg in plan.configs:
                feed: Callable[[RunStatus], None] = _ProgressFeed(progress, cfg.method,
                                                                  cfg.max_rounds, err if plain else None)
                ex: Executor | None = None
                try:
                    ex = Executor(cfg)
                    results.append((how, ex.run(progress=feed)))
                except MemoryError:
                    raise UserError(f"{plan.spec}: not enough memory to simulate "
                                    f"{human_bytes(plan.guest_bytes)} ({cfg.method})") from None
                finally:
                    ex = None  # noqa: F841 - release the bitmaps before the next method
    except KeyboardInterrupt:
        err.print(f"interrupted after {len(results)} of {len(plan.configs)} simulation(s)")
        return results, True
    return results, False


def _report_blocked(plan: Plan, as_json: bool, out: Console) -> None:
    if as_json:
        doc = {"version": 1, "spec": plan.spec, "outcome": "blocked", "blocked_by": plan.blocked_by,
               "blockers": plan.blocker_messages, "tracking_method": plan.qemu_method,
               "results": []}
        click.echo(json.dumps(doc, indent=2))
        return
    out.print(f"{plan.spec}: QEMU blocks this migration, nothing to simulate "
              "(give --method to simulate a method anyway):", soft_wrap=True)
    for msg in plan.blocker_messages:
        out.print(f"  - {msg}", soft_wrap=True)


def _json_doc(plan: Plan, opts: Options, results: list[tuple[str, MigrationResult]]) -> dict[str, Any]:
    return {
        "version": 1,
        "spec": plan.spec,
        "outcome": "lost-pages" if any(not r.all_arrived for _, r in results) else "ok",
        "blocked_by": plan.blocked_by,
        "tracking_method": plan.qemu_method,
        "guest_bytes": plan.guest_bytes,
        "page_size": PAGE_SIZE,
        "bandwidth_bytes_per_s": opts.bandwidth,
        "downtime_limit_s": opts.downtime_limit,
        "threshold_bytes": opts.bandwidth * opts.downtime_limit,
        "unmodelled_mutations": plan.unmodelled_mutations,
        "notes": plan.warnings,
        "viommu_modelled": False if plan.viommu else None,
        "results": [dict(r.to_dict(), chosen_by=how) for how, r in results],
    }


def _report_text(plan: Plan, results: list[tuple[str, MigrationResult]], out: Console) -> None:
    out.print(f"[bold]{plan.spec}[/bold]: guest {human_bytes(plan.guest_bytes)} "
              f"({plan.guest_bytes // PAGE_SIZE:,} pages of {PAGE_SIZE} bytes); "
              f"QEMU's method: {plan.qemu_method}", soft_wrap=True)
    for _, r in results:
        out.print(_rounds_table(r))
    out.print(_summary_table(results))
    for _, r in results:
        if not r.converged:
            out.print(f"{r.method}: did not converge in {r.precopy_rounds} rounds; switched "
                      f"over anyway to check the pages (downtime {human_seconds(r.downtime_s)})",
                      soft_wrap=True)
        if not r.all_arrived:
            muts = f" (mutations: {', '.join(r.mutations)})" if r.mutations else ""
            out.print(f"[red]{r.method}: {r.lost_pages:,} page(s) lost[/red]{muts}; first: "
                      f"{', '.join(str(p) for p in r.lost_examples)}", soft_wrap=True)
