"""``vfio-migcheck simulate`` through click's CliRunner (small guests, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.errors import UserError
from cli.simulate import parse_duration, parse_rate, parse_size, simulate

SMALL = ["--guest-size", "64MiB", "--hot-set", "4MiB", "--dma-set", "2MiB",
         "--cpu-dirty-rate", "8MiB/s", "--dma-rate", "4MiB/s", "--bandwidth", "640Mbps",
         "--step", "20ms", "--max-rounds", "6"]

DEVICE_LOGGING = """
qemu = "master"
[vm]
pages = 3
[[devices]]
name = "vf0"
features = ["p2p", "pre-copy"]
dma_logging = true
dma_pages = [0, 1]
[[devices]]
name = "vf1"
features = ["p2p", "pre-copy"]
dma_logging = true
"""

TYPE1_ON = """
qemu = "master"
[vm]
pages = 2
[host]
iommu = "type1"
[[devices]]
name = "vf0"
dma_logging = false
[devices.properties]
enable-migration = "on"
"""

BLOCKED = """
qemu = "master"
[vm]
pages = 2
[[devices]]
name = "vf0"
dma_logging = false
"""


def spec(tmp_path: Path, text: str, name: str = "s.toml", mutation: str | None = None) -> str:
    if mutation:
        text += f"[mutations]\n{mutation} = true\n"
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(simulate, list(args))
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def test_converging_spec_exits_0_with_rounds_and_summary(tmp_path: Path) -> None:
    code, out, _ = run(spec(tmp_path, DEVICE_LOGGING), *SMALL)
    assert code == 0, out
    assert "QEMU's method: device-dma-logging" in out
    assert "pre-copy rounds" in out and "all arrived" in out


def test_json_output(tmp_path: Path) -> None:
    code, out, _ = run(spec(tmp_path, DEVICE_LOGGING), *SMALL, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["version"] == 1 and doc["outcome"] == "ok"
    assert doc["tracking_method"] == "device-dma-logging"
    assert doc["guest_bytes"] == 64 << 20
    (r,) = doc["results"]
    assert r["converged"] and r["all_arrived"] and r["chosen_by"] == "qemu"
    assert r["rounds"][0]["pages_remaining"] == (64 << 20) // 4096
    assert {"pages_sent", "pages_dirtied", "pages_remaining", "expected_downtime_s",
            "time_s"} <= set(r["rounds"][1])


def test_lost_pages_exit_1_and_are_named(tmp_path: Path) -> None:
    path = spec(tmp_path, DEVICE_LOGGING, mutation="no_final_sync")
    code, out, _ = run(path, *SMALL)
    assert code == 1
    assert "page(s) lost" in out and "no_final_sync" in out
    code, out, _ = run(path, *SMALL, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["outcome"] == "lost-pages"
    assert doc["results"][0]["lost_pages"] > 0 and doc["results"][0]["lost_examples"]


def test_methods_compared_and_plotted(tmp_path: Path) -> None:
    png = tmp_path / "rounds.png"
    code, out, _ = run(spec(tmp_path, TYPE1_ON), *SMALL, "--method", "type1",
                       "--method", "iommufd-hw", "--json", "--plot", str(png))
    assert code == 0
    doc = json.loads(out)
    assert doc["tracking_method"] == "type1"
    by = {r["method"]: r for r in doc["results"]}
    assert not by["type1"]["converged"] and by["iommufd-hw"]["converged"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_require_convergence(tmp_path: Path) -> None:
    path = spec(tmp_path, TYPE1_ON)
    assert run(path, *SMALL)[0] == 0  # not converging is a result, not a failure
    code, out, _ = run(path, *SMALL, "--require-convergence")
    assert code == 1 and "did not converge" in out


def test_blocked_spec_prints_blockers_and_exits_1(tmp_path: Path) -> None:
    path = spec(tmp_path, BLOCKED)
    code, out, _ = run(path, *SMALL)
    assert code == 1 and "blocks this migration" in out
    code, out, _ = run(path, *SMALL, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["outcome"] == "blocked" and doc["blocked_by"]
    code, out, err = run(path, *SMALL, "--method", "all-dirty")
    assert code == 0 and "would block" in err


@pytest.mark.parametrize("args, needle", [
    (["--bandwidth", "10Gps"], "--bandwidth: cannot read"),
    (["--downtime-limit", "300"], "--downtime-limit: cannot read"),
    (["--guest-size", "12345"], "--guest-size"),
    (["--guest-size", "lots"], "--guest-size: cannot read"),
    (["--method", "device-dma-logging"], "--method device-dma-logging"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    code, out, err = run(spec(tmp_path, TYPE1_ON), *args)
    assert code == 2
    assert needle in err and err.startswith("error: ") and err.count("\n") == 1


def test_spec_errors_exit_2(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err
    bad = spec(tmp_path, "qemu = 'master'\n[vm]\npages = 99\n[[devices]]\nname='x'\n")
    code, _, err = run(bad)
    assert code == 2 and "vm" in err and err.count("\n") == 1


def test_unit_parsers() -> None:
    assert parse_size("x", "64GiB") == 64 << 30
    assert parse_size("x", "1.5G") == 3 << 29
    assert parse_size("x", "500MB") == 500_000_000
    assert parse_size("x", "4096") == 4096
    assert parse_rate("x", "10Gbps") == 1.25e9
    assert parse_rate("x", "10Gb/s") == 1.25e9
    assert parse_rate("x", "100Mbit/s") == 12.5e6
    assert parse_rate("x", "1GiB/s") == 1 << 30
    assert parse_rate("x", "2GB/s") == 2e9
    assert parse_duration("x", "300ms") == pytest.approx(0.3)
    assert parse_duration("x", "2min") == 120
    for bad in ("GiB", "1 parsec", "-3GiB"):
        with pytest.raises(UserError):
            parse_size("x", bad)
    with pytest.raises(UserError):
        parse_rate("x", "10GBps")
    with pytest.raises(UserError):
        parse_duration("x", "10")


def test_progress_feed_renders_rounds_on_a_terminal() -> None:
    import io

    from rich.console import Console
    from rich.progress import Progress, TextColumn

    from cli.simulate import _ProgressFeed
    from model.concrete.results import RunStatus

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with Progress(TextColumn("{task.description} {task.fields[info]}"), console=console) as p:
        feed = _ProgressFeed(p, "type1", max_rounds=4)
        feed(RunStatus(1, 4, 2.5, 1000, 5000, "pre-copy"))
        feed(RunStatus(4, 4, 9.0, 0, 9000, "done"))
        assert p.tasks[0].completed == 4
    assert "round 4" in buf.getvalue() and "type1" in buf.getvalue()


NO_TRACKING = """
qemu = "{qemu}"
[vm]
pages = 2
[host]
iommu = "iommufd"
[[devices]]
name = "vf0"
features = ["p2p", "pre-copy"]
[devices.properties]
enable-migration = "on"
"""


@pytest.mark.parametrize("qemu, reporting, lost", [("9.1", "all-dirty", False),
                                                   ("10.2", "none", True)])
def test_all_dirty_fallback_per_profile(tmp_path: Path, qemu: str, reporting: str,
                                        lost: bool) -> None:
    code, out, _ = run(spec(tmp_path, NO_TRACKING.format(qemu=qemu)), *SMALL, "--json")
    doc = json.loads(out)
    assert doc["tracking_method"] == "all-dirty"
    (r,) = doc["results"]
    assert r["method"] == reporting and (r["lost_pages"] > 0) == lost
    assert code == (1 if lost else 0)


def test_the_readme_comparison_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's `simulate ... --method ... --plot` line, as written (run from the
    repository, with the picture written to a temporary directory)."""
    root = Path(__file__).resolve().parent.parent
    lines = [line.split("#")[0].split() for line in (root / "README.md").read_text().splitlines()
             if line.startswith("vfio-migcheck simulate") and "--method" in line]
    assert len(lines) == 1, lines
    args = lines[0][2:]
    args[args.index("--plot") + 1] = str(tmp_path / "cmp.png")
    monkeypatch.chdir(root)
    code, out, err = run(*args, "--no-progress")
    assert code == 0, err
    assert "type1" in out and "device-dma-logging" in out and (tmp_path / "cmp.png").is_file()


def test_a_paused_vm_writes_nothing_and_says_so(tmp_path: Path) -> None:
    running = json.loads(run(spec(tmp_path, DEVICE_LOGGING), *SMALL, "--json")[1])
    paused_text = DEVICE_LOGGING.replace("[vm]\npages = 3\n", "[vm]\npages = 3\npaused = true\n")
    code, out, _ = run(spec(tmp_path, paused_text, "p.toml"), *SMALL, "--json")
    doc = json.loads(out)
    assert code == 0 and any(n.startswith("[vm].paused") for n in doc["notes"])
    (r,) = doc["results"]
    assert all(step["pages_dirtied"] == 0 for step in r["rounds"][1:])
    assert any(step["pages_dirtied"] > 0 for step in running["results"][0]["rounds"][1:])
    assert len(r["rounds"]) <= len(running["results"][0]["rounds"])


def test_keys_a_timed_run_does_not_exercise_are_named(tmp_path: Path) -> None:
    text = DEVICE_LOGGING + "[migration]\ncancel = true\nattempts = 2\n"
    code, _, err = run(spec(tmp_path, text), *SMALL)
    assert code == 0
    assert "note: [migration].cancel, [migration].attempts: not exercised by a timed run" in err
