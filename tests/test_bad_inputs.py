"""A corpus of bad inputs, for every command: each ends with exit code 2 and one line on
stderr naming what is wrong (4 for a forced internal error), never a traceback.

Cases are (id, command line, files to create, what the line must say).  ``{tmp}`` in a
command line is the test's directory; files are written there (``bytes`` as they are,
``str`` as UTF-8; a name ending in ``/`` is a directory).
"""

# ruff: noqa: E501  (a table of cases, one a line)

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import DEBUG_ENV, main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
DEV = '[[devices]]\nname = "vf0"\nfeatures = ["p2p", "pre-copy"]\ndma_logging = true\n'
OK = 'name = "ok"\n' + DEV
TP = 'example = "TwoPhase"\nrms = 2\n'
NAME_RULE = "a name is made of letters, digits"

Files = dict[str, str | bytes]

CASES: list[tuple[str, list[str], Files, str]] = [
    # --- what a spec file is made of
    ("binary", ["check", "{tmp}/x.toml"], {"x.toml": b"\x7fELF\x02\x01\x01\x00\x00\x00"},
     "is a binary file (a NUL byte at offset 7), not TOML text"),
    ("utf16-bom", ["check", "{tmp}/x.toml"], {"x.toml": "\ufeff".encode("utf-16-le") + OK.encode("utf-16-le")},
     "is UTF-16 text (it starts with a byte order mark); save it as UTF-8"),
    ("utf16-no-bom", ["check", "{tmp}/x.toml"], {"x.toml": OK.encode("utf-16-le")}, "is a binary file"),
    ("latin1", ["check", "{tmp}/x.toml"], {"x.toml": 'name = "caf\xe9"\n'.encode("latin-1") + DEV.encode()},
     "is not UTF-8 text (byte 11 is 0xe9)"),
    ("empty", ["check", "{tmp}/x.toml"], {"x.toml": ""}, "is empty; a spec needs at least one [[devices]]"),
    ("blank", ["check", "{tmp}/x.toml"], {"x.toml": "\n  \n\t\n"}, "is empty"),
    ("dir-as-file", ["check", "{tmp}/d"], {"d/x.toml/": ""}, "d/x.toml: is a directory, not a spec file"),
    ("empty-dir", ["check", "{tmp}/d"], {"d/": ""}, "directory holds no *.toml spec files"),
    ("device-file", ["check", "/dev/null"], {}, "/dev/null: is not a regular file"),
    ("missing", ["check", "{tmp}/nope.toml"], {}, "no such spec file or directory"),
    ("huge-file", ["check", "{tmp}/x.toml"], {"x.toml": OK + "#" * (1 << 20)},
     "bytes; a spec file is at most 1048576 bytes"),
    ("toml-syntax", ["check", "{tmp}/x.toml"], {"x.toml": 'name = "x\n' + DEV},
     "invalid TOML at line 1, column 10 (key name): Illegal character"),
    ("duplicate-key", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\npages = 2\npages = 3\n"},
     "invalid TOML at line 8, column 10 (key pages): a key or table defined twice"),
    ("duplicate-table", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\npages = 2\n[vm]\n"},
     "(table [vm]): a key or table defined twice"),
    # --- names and texts
    ("name-escapes", ["check", "{tmp}/x.toml"], {"x.toml": 'name = "../../etc/evil"\n' + DEV},
     "name: '../../etc/evil' holds '/'; " + NAME_RULE),
    ("name-newline", ["check", "{tmp}/x.toml"], {"x.toml": 'name = "x\\nMISMATCH y"\n' + DEV},
     "name: 'x\\nMISMATCH y' holds the character U+000A"),
    ("device-newline", ["check", "{tmp}/x.toml"], {"x.toml": '[[devices]]\nname = "vf0\\n  3: Fake"\n'},
     "[devices.0].name: 'vf0\\n  3: Fake' holds the character U+000A"),
    ("device-bidi", ["check", "{tmp}/x.toml"], {"x.toml": '[[devices]]\nname = "vf\u202e0"\n'},
     "holds the character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("description-bidi", ["check", "{tmp}/x.toml"], {"x.toml": 'description = "a\u2067b"\n' + DEV},
     "description: holds the character U+2067 (RIGHT-TO-LEFT ISOLATE)"),
    ("description-bell", ["check", "{tmp}/x.toml"], {"x.toml": 'description = "ding\\u0007"\n' + DEV},
     "description: holds the character U+0007"),
    ("name-dash", ["check", "{tmp}/x.toml"], {"x.toml": 'name = "-rf"\n' + DEV}, "name: '-rf' starts with '-'"),
    ("name-long", ["check", "{tmp}/x.toml"], {"x.toml": f'name = "{"a" * 70}"\n' + DEV}, "is 70 characters long"),
    ("stem-space", ["check", "{tmp}/my spec.toml"], {"my spec.toml": DEV},
     "name: not given, and the file name 'my spec' holds ' '; " + NAME_RULE),
    ("name-not-string", ["check", "{tmp}/x.toml"], {"x.toml": "name = 3\n" + DEV},
     "name: expected a string, got integer 3"),
    ("shared-name", ["check", "{tmp}/a.toml", "{tmp}/b.toml"], {"a.toml": OK, "b.toml": OK},
     "two spec files share the name 'ok'"),
    # --- numbers
    ("pages-huge", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\npages = 1000000000000000000\n"},
     "[vm].pages: 1000000000000000000 is out of range 1..8"),
    ("pages-negative", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\npages = -1\n"},
     "[vm].pages: -1 is out of range 1..8"),
    ("pages-float", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\npages = 2.5\n"},
     "[vm].pages: expected an integer, got float 2.5"),
    ("pages-nan", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\npages = nan\n"},
     "[vm].pages: expected an integer, got float nan"),
    ("ram-inf", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[vm]\nram = inf\n"},
     '[vm].ram: expected bytes or a size string such as "16GiB", got float inf'),
    ("ram-2^65", ["check", "{tmp}/x.toml"], {"x.toml": OK + f"[vm]\nram = {2**65}\n"},
     "is more than QEMU can address"),
    ("ram-string-huge", ["check", "{tmp}/x.toml"], {"x.toml": OK + '[vm]\nram = "99999999999999999999TiB"\n'},
     "is more than QEMU can address"),
    ("toml-int-overflow", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[migration]\nprecopy_rounds = " + "9" * 40 + "\n"},
     "[migration].precopy_rounds: " + "9" * 40 + " is out of range 0..3"),
    ("pin-huge", ["check", "{tmp}/x.toml"], {"x.toml": OK + f"[check]\ndistinct_states = {10**30}\n"},
     f"[check].distinct_states: expected an integer >= 1, got integer {10**30}"),
    ("trace-negative", ["check", "{tmp}/x.toml"],
     {"x.toml": OK + '[check]\nexpect = { violation = "NoPageLost" }\ntrace_length = -3\n'},
     "[check].trace_length: expected an integer >= 1, got integer -3"),
    # --- keys and values
    ("unknown-key", ["check", "{tmp}/x.toml"], {"x.toml": OK + "qmeu = 1\n"}, "qmeu: unknown key"),
    ("unknown-mutation", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[mutations]\nno_sync = true\n"},
     "[mutations].no_sync: unknown mutation"),
    ("tracking-method", ["check", "{tmp}/x.toml"], {"x.toml": OK + '[check]\ntracking_method = "bitmap"\n'},
     '[check].tracking_method: unknown tracking method "bitmap"'),
    ("blocked-by", ["check", "{tmp}/x.toml"], {"x.toml": OK + '[check]\nexpect = "blocked"\nblocked_by = ["iommu"]\n'},
     '[check].blocked_by: unknown blocker "iommu"'),
    ("blocked-by-pass", ["check", "{tmp}/x.toml"], {"x.toml": OK + '[check]\nexpect = "pass"\nblocked_by = ["viommu"]\n'},
     '[check].blocked_by: names blockers, so the migration is refused: expect must be "blocked"'),
    ("violations-empty", ["check", "{tmp}/x.toml"], {"x.toml": OK + "[check]\nexpect = { violations = [] }\n"},
     "[check].expect: violations: expected a non-empty array of property names"),
    ("violations-unknown", ["check", "{tmp}/x.toml"],
     {"x.toml": OK + '[check]\nexpect = { violations = ["NoPageLost", "NoPagesLost"] }\n'},
     '[check].expect: unknown property "NoPagesLost"'),
    ("too-many-devices", ["check", "{tmp}/x.toml"], {"x.toml": DEV.replace("vf0", "a") * 1 + "".join(
        DEV.replace("vf0", f"d{i}") for i in range(4))}, "devices: 5 devices; at most 3 can be modelled"),
    ("devices-scalar", ["check", "{tmp}/x.toml"], {"x.toml": "devices = 3\n"},
     "devices: expected an array of tables ([[devices]]), got integer 3"),
    ("qemu-unknown", ["check", "{tmp}/x.toml"], {"x.toml": 'qemu = "7.0"\n' + DEV}, 'qemu: unknown profile "7.0"'),
    # --- engine-validation examples
    ("example-name", ["check", "{tmp}/x.toml"], {"x.toml": TP + 'name = "../x"\n'}, "name: '../x' holds '/'"),
    ("example-rms-huge", ["check", "{tmp}/x.toml"], {"x.toml": 'example = "TwoPhase"\nrms = 100000000000000000000\n'},
     "rms: must be an integer in 1..10"),
    ("example-description", ["check", "{tmp}/x.toml"], {"x.toml": TP + 'description = "x\u202ay"\n'},
     "description: holds the character U+202A"),
    ("example-violations", ["check", "{tmp}/x.toml"], {"x.toml": TP + "[check]\nexpect = { violations = [] }\n"},
     "check.expect: violations: must be a non-empty array of property names"),
    ("example-trace-table", ["check", "{tmp}/x.toml"],
     {"x.toml": TP + '[check]\nexpect = { violation = "TCConsistent" }\ntrace_length = { Nope = 3 }\n'},
     "check.trace_length: 'Nope' is not an expected violation"),
    # --- check's flags and outputs (refused before anything is explored)
    ("max-seconds-nan", ["check", str(SPECS / "engine"), "--max-seconds", "nan"], {}, "'nan' is not a finite number"),
    ("max-seconds-inf", ["check", str(SPECS / "engine"), "--max-seconds", "inf"], {}, "'inf' is not a finite number"),
    ("max-seconds-negative", ["check", str(SPECS / "engine"), "--max-seconds", "-1"], {}, "'-1' must be > 0"),
    ("max-memory-nan", ["check", str(SPECS / "engine"), "--max-memory", "NaN"], {}, "'NaN' is not a finite number"),
    ("max-states-zero", ["check", str(SPECS / "engine"), "--max-states", "0"], {}, "--max-states"),
    ("max-states-word", ["check", str(SPECS / "engine"), "--max-states", "many"], {}, "'many' is not a valid integer"),
    ("json-no-dir", ["check", str(SPECS / "engine"), "--json", "/nonexistent/dir/x.json"], {},
     "--json /nonexistent/dir/x.json: directory /nonexistent/dir does not exist"),
    ("junit-no-dir", ["check", str(SPECS / "engine"), "--junit", "/nonexistent/j.xml"], {},
     "--junit /nonexistent/j.xml: directory /nonexistent does not exist"),
    ("json-is-dir", ["check", str(SPECS / "engine"), "--json", "{tmp}"], {}, "is a directory; give a file name"),
    ("json-under-file", ["check", str(SPECS / "engine"), "--json", "{tmp}/f/x.json"], {"f": "a file"},
     "directory {tmp}/f does not exist"),
    ("json-junit-same", ["check", str(SPECS / "engine"), "--json", "{tmp}/o", "--junit", "{tmp}/o"], {},
     "--json and --junit name the same file"),
    ("trace-format", ["check", "--trace-format", "xml"], {}, "'xml' is not one of 'text', 'itf'"),
    ("check-bogus-flag", ["check", "--bogus"], {}, "No such option '--bogus'"),
    # --- the other commands
    ("report-output-file", ["report", str(SPECS / "engine"), "-o", "{tmp}/f"], {"f": "a file"},
     "Directory '{tmp}/f' is a file"),
    ("report-max-states", ["report", "--max-states", "-5"], {}, "--max-states"),
    ("graph-no-spec", ["graph", "{tmp}/nope.toml"], {}, "no such spec file"),
    ("graph-output", ["graph", str(SPECS / "engine/tcommit-3.toml"), "-o", "/nonexistent/g.svg"], {},
     "--output /nonexistent/g.svg: directory /nonexistent does not exist"),
    ("graph-format", ["graph", str(SPECS / "engine/tcommit-3.toml"), "--format", "png"], {},
     "'png' is not one of 'dot', 'svg', 'json'"),
    ("graph-quotient", ["graph", str(SPECS / "engine/tcommit-3.toml"), "--quotient", "nope"], {},
     "--quotient: no variable 'nope'"),
    ("prove-timeout-nan", ["prove", "--timeout", "nan"], {}, "'nan' is not a finite number"),
    ("prove-json", ["prove", str(SPECS / "dma-logging-vf.toml"), "--json", "/nonexistent/p.json"], {},
     "directory /nonexistent does not exist"),
    ("prove-example", ["prove", str(SPECS / "engine/tcommit-3.toml")], {}, "not a VFIO migration scenario"),
    ("prove-bad-spec", ["prove", "{tmp}/x.toml"], {"x.toml": b"\x00\x01"}, "is a binary file"),
    ("simulate-rate", ["simulate", str(SPECS / "dma-logging-vf.toml"), "--bandwidth", "10Gbpz"], {},
     "--bandwidth: cannot read '10Gbpz'"),
    ("simulate-huge", ["simulate", str(SPECS / "dma-logging-vf.toml"), "--guest-size", "9" * 400 + "GiB"], {},
     "--guest-size: '" + "9" * 400 + "GiB' is too large a number"),
    ("simulate-plot", ["simulate", str(SPECS / "dma-logging-vf.toml"), "--plot", "/nonexistent/p.png"], {},
     "--plot /nonexistent/p.png: directory /nonexistent does not exist"),
    ("simulate-downtime", ["simulate", str(SPECS / "dma-logging-vf.toml"), "--downtime-limit", "0ms"], {},
     "--downtime-limit: must be positive"),
    ("simulate-example", ["simulate", str(SPECS / "engine/tcommit-3.toml")], {}, "not a VFIO migration scenario"),
    ("tables-devices", ["tables", "--devices", "9"], {}, "--devices"),
    ("tables-profile", ["tables", "--profile", "7.0"], {}, "'7.0' is not one of"),
    ("fsm-state", ["fsm", "path", "RUNNING", "NOPE"], {}, "NEW: "),
    ("fsm-features", ["fsm", "path", "RUNNING", "STOP", "--features", "p2q"], {}, "--features"),
    ("fsm-kernel", ["fsm", "check", "--kernel", "/nonexistent/vfio_main.c"], {}, "/nonexistent/vfio_main.c"),
    ("fsm-graph-output", ["fsm", "graph", "-o", "/nonexistent/f.dot"], {},
     "--output /nonexistent/f.dot: directory /nonexistent does not exist"),
    ("fsm-graph-format", ["fsm", "graph", "--format", "png"], {}, "'png' is not one of"),
    ("fsm-subcommand", ["fsm", "walk"], {}, "No such command 'walk'"),
    ("unknown-command", ["chekc"], {}, "No such command 'chekc'"),
    ("top-flag", ["--bogus"], {}, "No such option '--bogus'"),
]


def _make(tmp: Path, files: Files) -> None:
    for name, content in files.items():
        path = tmp / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)
    assert {c[1][0] for c in CASES if not c[1][0].startswith("-")} >= {
        "check", "report", "graph", "prove", "simulate", "tables", "fsm"}


@pytest.mark.parametrize(("args", "files", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], files: Files, says: str) -> None:
    _make(tmp_path, files)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 2, (r.exit_code, r.output)
    line = _one_error_line(r.stderr)
    assert line.startswith("error: "), line
    assert says.replace("{tmp}", str(tmp_path)) in line, line
    assert r.stdout == "" or "error" not in r.stdout  # nothing half-done on stdout


def test_the_console_script_gives_the_same_lines(tmp_path: Path) -> None:
    """The installed entry point, not only the test runner: binary, UTF-16, a JSON path."""
    script = Path(sys.executable).with_name("vfio-migcheck")
    if not script.exists():
        pytest.skip("vfio-migcheck is not installed in this environment")
    _make(tmp_path, {"bin.toml": b"\x00\x01\x02", "u16.toml": "\ufeffname".encode("utf-16-le")})
    for args, says in [
        ([str(tmp_path / "bin.toml")], "is a binary file"),
        ([str(tmp_path / "u16.toml")], "is UTF-16 text"),
        ([str(SPECS / "engine"), "--json", "/nonexistent/dir/x.json"], "does not exist"),
    ]:
        p = subprocess.run([str(script), "check", *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, p.stderr
        assert says in _one_error_line(p.stderr)


# --- a forced internal error: exit 4, one line, the traceback only with --debug ----------------


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("forced\nfailure")


def test_an_internal_error_is_exit_4_and_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.fsm

    monkeypatch.setattr(cli.fsm, "audit_report", _boom)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    r = CliRunner().invoke(main, ["fsm", "check"])
    assert r.exit_code == 4
    line = _one_error_line(r.stderr)
    assert line.startswith("internal error: RuntimeError: forced failure at test_bad_inputs.py:")
    assert "(run with --debug" in line


@pytest.mark.parametrize("where", [["--debug", "fsm", "check"], ["fsm", "check", "--debug"]])
def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, where: list[str]) -> None:
    import cli.fsm

    monkeypatch.setattr(cli.fsm, "audit_report", _boom)
    r = CliRunner().invoke(main, where)
    assert r.exit_code == 4
    assert "Traceback (most recent call last)" in r.stderr and "RuntimeError: forced" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("internal error: RuntimeError")


def test_debug_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.fsm

    monkeypatch.setattr(cli.fsm, "audit_report", _boom)
    monkeypatch.setenv(DEBUG_ENV, "1")
    r = CliRunner().invoke(main, ["fsm", "check"])
    assert r.exit_code == 4 and "Traceback" in r.stderr


def test_a_spec_that_fails_to_explore_is_an_error_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One spec's failure never ends a multi-spec run: outcome "error" with the message,
    the others checked, exit 4 (an internal error), the JSON written."""
    import json

    import model.migration.spec as mspec

    real = mspec.build_spec

    def flaky(scenario, **kw):  # type: ignore[no-untyped-def]
        if scenario.name == "broken":
            raise ValueError("the model cannot be built")
        return real(scenario, **kw)

    monkeypatch.setattr(mspec, "build_spec", flaky)  # cli.load imports it when it builds
    _make(tmp_path, {"a.toml": 'name = "broken"\n' + DEV, "b.toml": 'name = "fine"\n' + DEV})
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["check", str(tmp_path), "-q", "--json", str(out)])
    assert r.exit_code == 4, r.output
    res = {x["spec"]: x for x in json.loads(out.read_text())["results"]}
    assert res["broken"]["outcome"] == "error" and res["broken"]["matched"] is False
    assert res["broken"]["message"] == "ValueError: the model cannot be built"
    assert res["fine"]["outcome"] == "pass" and res["fine"]["matched"] is True
    assert r.stdout.strip() == (f"ERROR broken ({tmp_path / 'a.toml'}): internal error: "
                                "ValueError: the model cannot be built")


def test_an_unwritable_json_file_loses_nothing_and_is_one_line(tmp_path: Path) -> None:
    """The directory vanishes while the specs are explored: the results still go to stdout,
    and the failure to write is one line, exit 2."""
    d = tmp_path / "gone"
    d.mkdir()
    import cli.check

    real = cli.check.explore_target

    def explore_and_remove(*a, **kw):  # type: ignore[no-untyped-def]
        r = real(*a, **kw)
        if d.exists():
            os.rmdir(d)
        return r

    cli.check.explore_target = explore_and_remove  # type: ignore[assignment]
    try:
        r = CliRunner().invoke(main, ["check", str(SPECS / "engine/tcommit-3.toml"), "-q", "--json",
                                      str(d / "x.json")])
    finally:
        cli.check.explore_target = real  # type: ignore[assignment]
    assert r.exit_code == 2
    assert "cannot write" in _one_error_line(r.stderr)
