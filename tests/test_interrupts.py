"""Ctrl-C on every command, in every phase: exit code 130, no traceback, never a hang, and
partial JSON where ``--json`` was given.

Each test starts the command line in a child process as the console script does
(``cli.entry.main``), waits until the phase it wants is running, sends SIGINT, and gives the
process a bounded time to end.  Phases are recognised by what the process writes on stderr,
not by timing: start-up by Python's ``-X importtime`` line for ``cli.entry`` (the entry point
runs right after it, then imports the command line), a search by its ``Progress(...)`` lines,
the liveness phase by its own progress line, z3 by the lines ``prove`` and ``tables`` print
before each query.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BOUND = 60.0  # seconds a process may take to stop after Ctrl-C (GRACE_SECONDS is 10)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals as on Linux")


def start(args: list[str], *, importtime: bool = False) -> subprocess.Popen[str]:
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.Popen(
        # SIGINT as a terminal delivers it, also where this test runs in a shell's background
        # job (which starts with SIGINT ignored, and the command line then keeps it so)
        [sys.executable, *flags, "-c",
         "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from cli.entry import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


def interrupt_when(p: subprocess.Popen[str], marker: str, *, after: float = 0.0) -> tuple[str, str, float]:
    """Read stderr until ``marker``, wait ``after`` seconds, send SIGINT; return the output
    and how long the process took to end after the signal."""
    assert p.stderr is not None
    seen = []
    while True:
        line = p.stderr.readline()
        if not line:
            out, err = p.communicate(timeout=BOUND)
            pytest.fail(f"ended before {marker!r} (exit {p.returncode}): {''.join(seen)}{err}")
        seen.append(line)
        if marker in line:
            break
    time.sleep(after)
    p.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    try:
        out, err = p.communicate(timeout=BOUND)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail(f"still running {BOUND} s after Ctrl-C")
    return out, "".join(seen) + err, time.perf_counter() - sent


def assert_interrupted(p: subprocess.Popen[str], err: str) -> None:
    assert p.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]


# --- start-up: the entry point, then the imports of the command line ---------------------------

STARTUP = {
    "check": ["check", str(SPECS / "engine")],
    "fsm-check": ["fsm", "check"],
    "fsm-path": ["fsm", "path", "RUNNING", "STOP"],
    "graph": ["graph", str(SPECS / "engine/tcommit-3.toml"), "--format", "json"],
    "prove": ["prove", str(SPECS / "dma-logging-vf.toml")],
    "simulate": ["simulate", str(SPECS / "dma-logging-vf.toml"), "--guest-size", "1GiB"],
    "tables": ["tables", "--devices", "1"],
    "report": ["report", str(SPECS / "engine"), "-o", "{tmp}/r"],
    "help": ["--help"],
}


@pytest.mark.parametrize("name", list(STARTUP))
def test_ctrl_c_at_start_up(name: str, tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in STARTUP[name]]
    p = start(args, importtime=True)
    # `--help` is over a few milliseconds after the entry point: signal it at once
    _, err, took = interrupt_when(p, "| cli.entry", after=0.0 if name == "help" else 0.02)
    assert_interrupted(p, err)
    assert err.rstrip().endswith("interrupted") and took < 10


def test_ctrl_c_while_the_interpreter_shuts_down_keeps_the_exit_code(tmp_path: Path) -> None:
    """CI saw ``--help`` die by the signal (-2): a Ctrl-C landed after the command was over,
    once Python had put SIGINT back to its default on its way out.  Here a finaliser that
    runs then (a module global's, cleared after the signals) sends it, every time."""
    script = tmp_path / "late.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "class Late:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.05)\n"
        "late = Late()\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "sys.argv = ['vfio-migcheck', '--version']\n"
        "from cli.entry import main\n"
        "main()\n"
    )
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT,
                       timeout=BOUND)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("vfio-migcheck, version") and "Traceback" not in p.stderr


# --- a search ------------------------------------------------------------------------------------


def test_ctrl_c_mid_search_writes_partial_json(tmp_path: Path) -> None:
    spec = tmp_path / "big.toml"
    spec.write_text('example = "TwoPhase"\nrms = 10\n')
    out_json = tmp_path / "r.json"
    p = start(["check", str(SPECS / "engine/tcommit-3.toml"), str(spec), "--json", str(out_json)])
    _, err, took = interrupt_when(p, "Progress(big:")
    assert_interrupted(p, err)
    assert took < 5  # the explorer looks between chunks (a fraction of a second)
    results = {r["spec"]: r for r in json.loads(out_json.read_text())["results"]}
    assert results["tcommit-3"]["outcome"] == "pass"  # the spec checked before
    big = results["big"]
    assert big["outcome"] == "limit" and big["stopped_by"] == "interrupted (Ctrl-C)"
    assert big["matched"] is False and big["reason"] == "interrupted before a verdict"
    assert big["stats"]["distinct_states"] > 1000
    assert "Interrupted: partial results of 2 of 2 spec(s) above." in err


def test_ctrl_c_in_the_liveness_phase(tmp_path: Path) -> None:
    # The largest shipped spec grown to 5 pages (7M states, 0.9 GB): the progress line of the
    # liveness phase is printed only after a search that outlasted the quiet second, which 4
    # pages (1.2M states) no longer do on CI's machine; its liveness phase takes about half
    # a second, ample for a Ctrl-C sent the moment the line is read.
    spec = tmp_path / "five-pages.toml"
    text = (SPECS / "two-vfs-three-pages-cancel.toml").read_text()
    text = text.replace("pages = 3\n", "pages = 5\n", 1)
    spec.write_text(text[:text.index("[check]")] + '[check]\nexpect = "pass"\n')
    out_json = tmp_path / "r.json"
    p = start(["check", str(spec), "--json", str(out_json)])
    _, err, _ = interrupt_when(p, ": liveness, on ")
    assert_interrupted(p, err)
    (res,) = json.loads(out_json.read_text())["results"]
    assert res["outcome"] == "limit" and res["stopped_by"] == "interrupted (Ctrl-C)"
    # the search was complete: its invariants are decided, the liveness property is not
    assert res["properties"]["NoPageLost"] == "ok" and res["properties"]["MigrationEnds"] == "unchecked"
    assert res["stats"]["distinct_states"] == 7022362


def test_ctrl_c_mid_graph(tmp_path: Path) -> None:
    spec = tmp_path / "big.toml"
    spec.write_text('example = "TwoPhase"\nrms = 9\n')
    p = start(["graph", str(spec), "--format", "json", "--max-states", "5000000", "-o", str(tmp_path / "g")],
              importtime=True)
    # importlib's imports (the commands') print no line of their own: the explorer's does
    _, err, _ = interrupt_when(p, "| checker.explore", after=1.5)
    assert_interrupted(p, err)
    assert not (tmp_path / "g").exists()


def test_ctrl_c_mid_report(tmp_path: Path) -> None:
    spec = tmp_path / "big.toml"
    spec.write_text('example = "TwoPhase"\nrms = 9\n')
    p = start(["report", str(spec), "-o", str(tmp_path / "r")])
    _, err, _ = interrupt_when(p, "report: checking big", after=1.0)
    assert_interrupted(p, err)


def test_ctrl_c_mid_simulate_writes_partial_json() -> None:
    p = start(["simulate", str(SPECS / "dma-logging-vf.toml"), "--guest-size", "64GiB", "--method", "type1",
               "--method", "device-dma-logging", "--max-rounds", "1000", "--json"])
    out, err, _ = interrupt_when(p, "Progress(")
    assert_interrupted(p, err)
    doc = json.loads(out)
    assert doc["interrupted"] is True and Path(doc["spec"]).stem == "dma-logging-vf"


# --- z3 --------------------------------------------------------------------------------------------


def test_ctrl_c_in_a_z3_query_of_prove(tmp_path: Path) -> None:
    out_json = tmp_path / "p.json"
    p = start(["prove", str(SPECS / "two-vfs-p2p-8.2.toml"), str(SPECS / "dma-logging-vf.toml"),
               "--json", str(out_json)])
    _, err, took = interrupt_when(p, "z3: consecution")
    assert_interrupted(p, err)
    assert took < 10  # z3 is interrupted, not waited for
    doc = json.loads(out_json.read_text())
    assert doc["interrupted"] is True and isinstance(doc["results"], list)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_ctrl_c_in_z3_of_tables(fmt: str) -> None:
    """``tables --devices 4``: z3 is busy for minutes; Ctrl-C must end it at once, every time."""
    p = start(["tables", "--profile", "master", "--devices", "4", "--format", fmt], importtime=True)
    marker = "z3: master, 4 device(s)" if fmt == "text" else "| model.decision.tables"
    out, err, took = interrupt_when(p, marker, after=0.0 if fmt == "text" else 3.0)
    assert_interrupted(p, err)
    assert took < 10
    if fmt == "json":
        assert json.loads(out)["interrupted"] is True


# --- where the handler may raise ---------------------------------------------------------------


def test_ctrl_c_is_never_raised_inside_z3s_python_api() -> None:
    """CI saw a Ctrl-C land in a z3 constructor: the half-built term's finaliser then printed
    a traceback.  The handler defers to the next call outside z3 (and outside finalisers)."""
    from cli import interrupts

    inside: dict[str, object] = {"__name__": "z3.z3", "sys": sys}
    exec("def api():\n    return sys._getframe()\n", inside)
    ours: dict[str, object] = {"__name__": "model.decision.tables", "api": inside["api"], "sys": sys}
    exec("def caller():\n    return api(), sys._getframe()\n", ours)
    z3_frame, our_frame = ours["caller"]()  # type: ignore[operator]
    assert interrupts._must_defer(z3_frame) and not interrupts._must_defer(our_frame)


def test_finaliser_errors_after_ctrl_c_are_dropped_but_not_before(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from cli import interrupts

    seen: list[object] = []
    monkeypatch.setattr(sys, "__unraisablehook__", seen.append)
    info = SimpleNamespace(exc_value=AttributeError("'BoolSortRef' object has no attribute 'ctx'"))
    monkeypatch.setattr(interrupts._State, "signals", 0)
    interrupts._unraisable(info)
    assert seen == [info]  # no Ctrl-C: a finaliser's error is news
    monkeypatch.setattr(interrupts._State, "signals", 1)
    interrupts._unraisable(info)
    assert seen == [info]  # after one: the consequence of a cut constructor, dropped


# --- the request API, and where a Ctrl-C may cut the explorer -------------------------------------


def test_raising_inside_polling_raises_and_restores_polling() -> None:
    from checker.interrupt import Interrupt

    intr = Interrupt()
    with intr.polling():
        with intr.raising():
            assert not intr.polled  # cut anywhere: the handler raises
        assert intr.polled
        intr.request()
        with pytest.raises(KeyboardInterrupt), intr.raising():
            pytest.fail("a request made before the stretch must raise at its start")
        assert intr.polled


def test_a_ctrl_c_after_the_search_keeps_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw the liveness test lose the whole result: the Ctrl-C meant for the liveness
    phase was raised just after it, outside any handler.  Now the explorer notes a request
    anywhere after the search and only the liveness checks are cut."""
    from checker.explore import Explorer
    from checker.interrupt import INTERRUPT
    from checker.result import Outcome
    from cli.load import load_targets

    (target,) = load_targets([str(SPECS / "cancel-recovers.toml")])
    original = Explorer._witness_verdicts

    def request_then_witnesses(self: Explorer, properties: dict[str, str]) -> None:
        INTERRUPT.request()  # as the SIGINT handler does, inside the polled region
        original(self, properties)

    monkeypatch.setattr(Explorer, "_witness_verdicts", request_then_witnesses)
    try:
        result = Explorer(target.spec).run()
    finally:
        INTERRUPT.clear()
    assert result.outcome == Outcome.INTERRUPTED
    assert result.stats.distinct == 4013  # the pin of specs/cancel-recovers.toml: the whole search
    assert result.properties["NoPageLost"] == "ok" and result.properties["MigrationEnds"] == "unchecked"


# --- what a Ctrl-C breaks in z3, in process (the CI failure of `tables --format json`) ------------


def test_z3_unknown_is_never_taken_for_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table's enumeration used to read z3's ``unknown`` (its context interrupted by a
    Ctrl-C) as "every configuration covered" and return a table cut short as if complete."""
    import z3

    from model.decision.tables import decision_table

    real = z3.Solver.check
    calls = [0]

    def interrupted_after_three(self: z3.Solver, *assumptions: z3.ExprRef) -> z3.CheckSatResult:
        calls[0] += 1
        return real(self, *assumptions) if calls[0] <= 3 else z3.unknown

    monkeypatch.setattr(z3.Solver, "check", interrupted_after_three)
    with pytest.raises(TimeoutError, match="could not decide"):
        decision_table("master", 1, "method")


def test_ctrl_c_that_cancels_z3_keeps_the_tables_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI lost the partial JSON: the Ctrl-C came while z3's Python API ran, so its
    KeyboardInterrupt was deferred; z3, woken by the watcher thread, raised ``canceled``,
    which the command did not take for the Ctrl-C, and the deferred KeyboardInterrupt then
    landed outside it.  Here the second table meets exactly that, every time."""
    import z3
    from click.testing import CliRunner

    from checker.interrupt import INTERRUPT
    from cli import interrupts, tables
    from cli.main import main

    real = tables.decision_table
    made: list[str] = []

    def cut_by_ctrl_c(profile: str, devices: int, kind: str) -> object:
        if made:
            INTERRUPT.request()  # as the watcher thread does before it wakes z3
            sys.settrace(interrupts._raise_when_safe)  # as the handler does inside z3's API
            raise z3.Z3Exception("canceled")
        made.append(kind)
        return real(profile, devices, kind)

    monkeypatch.setattr(tables, "decision_table", cut_by_ctrl_c)
    monkeypatch.setattr(interrupts._State, "settled", False, raising=False)
    try:
        r = CliRunner().invoke(main, ["tables", "--profile", "master", "--devices", "1",
                                      "--format", "json"], catch_exceptions=False)
    finally:
        sys.settrace(None)
        INTERRUPT.clear()
    assert r.exit_code == 130, r.output
    doc = json.loads(r.stdout)
    assert doc["interrupted"] is True and [t["kind"] for t in doc["tables"]] == ["method"]


def test_a_settled_ctrl_c_whose_handler_runs_late_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler of the Ctrl-C a command has already taken in hand may run after that
    (the watcher thread woke z3 first): it must not cut the partial output; a second
    Ctrl-C still ends the process."""
    from checker.interrupt import INTERRUPT
    from cli import interrupts

    monkeypatch.setattr(interrupts._State, "signals", 0)
    monkeypatch.setattr(interrupts._State, "settled", False)
    assert interrupts.caused_by_ctrl_c(TimeoutError("z3 could not decide")) is False  # no Ctrl-C
    try:
        INTERRUPT.request()
        assert interrupts.caused_by_ctrl_c(TimeoutError("z3 could not decide")) is True
        interrupts._handler(signal.SIGINT, sys._getframe())  # returns: no KeyboardInterrupt
        exits: list[str] = []
        monkeypatch.setattr(interrupts, "_hard_exit", exits.append)
        interrupts._handler(signal.SIGINT, sys._getframe())
        assert exits == ["interrupted again"]
    finally:
        INTERRUPT.clear()
