"""``vfio-migcheck fsm``: path, check, graph; JSON contracts and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.fsm import fsm

FIXTURES = Path(__file__).parent / "fixtures" / "kernel"


def run(*args: str):
    return CliRunner().invoke(fsm, list(args), catch_exceptions=False)


# ----------------------------------------------------------------------------- path
def test_path_json_contract_example() -> None:
    r = run("path", "RUNNING", "STOP_COPY", "--features", "p2p", "--json")
    assert r.exit_code == 0
    js = json.loads(r.stdout)
    assert js["path"] == ["RUNNING_P2P", "STOP", "STOP_COPY"]
    assert js["result"] == "ok"
    assert js["features"] == ["stop-copy", "p2p"]
    assert js["current"] == "RUNNING" and js["requested"] == "STOP_COPY"
    assert js["kernel"] == "built-in (Linux 6.2–7.1 vfio_main.c)"


def test_path_default_features_are_all_and_names_are_lenient() -> None:
    r = run("path", "vfio_device_state_running", "pre-copy-p2p", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["path"] == ["RUNNING_P2P", "PRE_COPY_P2P"]
    assert json.loads(r.stdout)["features"] == ["stop-copy", "p2p", "pre-copy"]


def test_path_text() -> None:
    r = run("path", "PRE_COPY", "RESUMING")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == (
        "PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP -> RESUMING  [ok]")


def test_path_refusal_is_not_an_error() -> None:
    r = run("path", "RUNNING", "PRE_COPY", "--features", "p2p", "--json")
    assert r.exit_code == 0
    js = json.loads(r.stdout)
    assert js["path"] == [] and js["result"] == "einval"
    r = run("path", "ERROR", "RUNNING", "--json")
    assert json.loads(r.stdout)["result"] == "warn-einval"


def test_path_that_never_ends_exits_1() -> None:
    r = run("path", "STOP_COPY", "PRE_COPY", "--json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["result"] == "loop"
    r = run("path", "STOP_COPY", "PRE_COPY", "--kernel", "builtin-fixed", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["result"] == "einval"


def test_path_with_kernel_file() -> None:
    r = run("path", "RUNNING", "STOP_COPY", "--kernel", str(FIXTURES / "vfio_v5_18.c"),
            "--json")
    assert r.exit_code == 0
    js = json.loads(r.stdout)
    assert js["path"] == ["RUNNING_P2P", "STOP", "STOP_COPY"]
    assert js["features"] == ["stop-copy", "p2p"]  # the largest set this source knows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("path", "RUNING", "STOP"), "CUR: unknown device state 'RUNING'"),
        (("path", "RUNNING", "HALT"), "NEW: unknown device state 'HALT'"),
        (("path", "RUNNING", "STOP", "--features", "p2p,turbo"),
         "unknown migration feature 'turbo'"),
        (("path", "RUNNING", "STOP", "--kernel", "/no/such/vfio_main.c"),
         "/no/such/vfio_main.c: cannot read the kernel source"),
        (("path", "RUNNING", "STOP", "--kernel", str(FIXTURES / "bad_missing_table.c")),
         "no definition of vfio_from_fsm_table"),
        (("check", "--kernel", str(FIXTURES / "bad_uninterpretable_loop.c")),
         "cannot interpret the condition"),
        (("path", "RUNNING", "STOP", "--features", "pre-copy", "--kernel",
          str(FIXTURES / "vfio_v5_18.c")), "does not know"),
        (("graph", "--features", "p2p", "--kernel", str(FIXTURES / "vfio_v5_18_rc_first_v2.c")),
         "does not know"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    r = run(*args)
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- check
def test_check_default_kernel_reports_the_loop_and_exits_1() -> None:
    r = run("check", "--json")
    assert r.exit_code == 1
    js = json.loads(r.stdout)
    assert js["version"] == 1
    assert js["kernel"] == "built-in (Linux 6.2–7.1 vfio_main.c)"
    assert [(v["property"], v["features"], v["current"], v["requested"])
            for v in js["violations"]] == [
        ("Terminates", ["stop-copy", "pre-copy"], "STOP_COPY", "PRE_COPY"),
        ("Terminates", ["stop-copy", "p2p", "pre-copy"], "STOP_COPY", "PRE_COPY"),
        ("Terminates", ["stop-copy", "p2p", "pre-copy"], "STOP_COPY", "PRE_COPY_P2P"),
    ]
    assert all(set(v) == {"property", "features", "current", "requested", "detail"}
               for v in js["violations"])
    assert any(i["kind"] == "tie" for i in js["info"])


def test_check_text_names_property_features_pair() -> None:
    r = run("check", "--kernel", str(FIXTURES / "bad_non_direct_arc.c"))
    assert r.exit_code == 1
    out = r.stdout
    assert "DirectArcs" in out and "stop-copy+p2p" in out and "RUNNING -> STOP" in out
    assert "FAIL: 3 violation(s) (DirectArcs: 3)" in out


@pytest.mark.parametrize("kernel", ["builtin-fixed", str(FIXTURES / "v6_2_fixed.c"),
                                    str(FIXTURES / "vfio_v5_18.c")])
def test_check_good_kernels_exit_0(kernel: str) -> None:
    r = run("check", "--kernel", kernel)
    assert r.exit_code == 0, r.stdout
    assert "OK: no violations" in r.stdout
    js = json.loads(run("check", "--kernel", kernel, "--json").stdout)
    assert js["violations"] == []


# ----------------------------------------------------------------------------- graph
def test_graph_dot() -> None:
    r = run("graph", "--features", "p2p", "--format", "dot")
    assert r.exit_code == 0
    assert r.stdout.startswith("digraph fsm {")
    assert "RUNNING_P2P -> STOP" in r.stdout
    assert "RUNNING -> STOP " not in r.stdout  # not an arc when P2P exists
    assert "cluster_saving" in r.stdout


def test_graph_names_walks_that_do_not_end() -> None:
    r = run("graph")
    assert "walks that do not end: STOP_COPY->PRE_COPY (loop), STOP_COPY->PRE_COPY_P2P (loop)" \
        in r.stdout
    assert "do not end" not in run("graph", "--kernel", "builtin-fixed").stdout


def test_graph_marks_steps_that_are_not_arcs() -> None:
    r = run("graph", "--features", "p2p", "--kernel", str(FIXTURES / "bad_non_direct_arc.c"))
    assert r.exit_code == 0
    assert "not a uAPI arc" in r.stdout and "color=red" in r.stdout


def test_graph_json_node_link(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    r = run("graph", "--format", "json", "-o", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    js = json.loads(out.read_text())
    assert {n["id"] for n in js["nodes"]} == {
        "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"}
    edges = {(e["source"], e["target"]): e for e in js["edges"]}
    assert len(edges) == 15 and all(e["kind"] == "direct" for e in edges.values())
    assert "RUNNING->STOP_COPY" in edges[("RUNNING", "RUNNING_P2P")]["walks"]
    assert js["graph"]["paths"]["RUNNING->STOP_COPY"] == {
        "path": ["RUNNING_P2P", "STOP", "STOP_COPY"], "result": "ok"}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
def test_graph_svg(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    r = run("graph", "--features", "pre-copy", "--format", "svg", "-o", str(out))
    assert r.exit_code == 0
    text = out.read_text()
    assert "<svg" in text and "PRE_COPY" in text


def test_registered_in_main_cli() -> None:
    from cli.main import main

    r = CliRunner().invoke(main, ["fsm", "path", "RUNNING", "STOP", "--features", "",
                                  "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["path"] == ["STOP"]


def test_source_covering_no_feature_set_is_a_user_error(tmp_path: Path) -> None:
    src = tmp_path / "four_states.c"
    src.write_text(
        "static const u8 vfio_from_fsm_table[4][4] = "
        "{ {0, 0, 0, 0}, {0, 1, 2, 3}, {0, 1, 2, 1}, {0, 1, 1, 3} };\n"
        "int vfio_mig_get_next_state(struct vfio_device *device, int cur_fsm, int new_fsm,\n"
        "\t\t\t    int *next_fsm)\n{\n"
        "\t*next_fsm = vfio_from_fsm_table[cur_fsm][new_fsm];\n\treturn 0;\n}\n")
    for args in (("check",), ("path", "RUNNING", "STOP")):
        r = run(*args, "--kernel", str(src))
        assert r.exit_code == 2
        assert "cover 4 states, not all states of any uAPI feature set" in r.stderr


# ----------------------------------------------------------------------------- errors, -D
@pytest.mark.parametrize(
    ("args", "file", "line"),
    [
        (("check", "--kernel", str(FIXTURES / "bad_uninterpretable_loop.c")),
         str(FIXTURES / "bad_uninterpretable_loop.c"), 126),
        (("path", "RUNNING", "STOP", "--kernel", "/no/such/vfio_main.c"),
         "/no/such/vfio_main.c", None),
        (("path", "RUNING", "STOP"), None, None),
    ],
)
def test_errors_are_json_under_json(args: tuple[str, ...], file: str | None,
                                    line: int | None) -> None:
    r = run(*args, "--json")
    assert r.exit_code == 2
    js = json.loads(r.stdout)
    assert set(js) == {"version", "error", "file", "line"}
    assert (js["file"], js["line"]) == (file, line)
    assert js["error"] == r.stderr.strip().removeprefix("error: ")


def test_text_report_keeps_bracketed_indices(tmp_path: Path) -> None:
    """Details such as ``state_flags_table[cur_fsm]`` are printed, not read as markup."""
    base = (FIXTURES / "v6_2_fixed.c").read_text()
    old = "\t\t[VFIO_DEVICE_STATE_RUNNING] = VFIO_MIGRATION_STOP_COPY,\n"
    src = tmp_path / "running_needs_p2p.c"
    src.write_text(base.replace(old, "\t\t[VFIO_DEVICE_STATE_RUNNING] = "
                                     "VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,\n"))
    r = run("check", "--kernel", str(src))
    assert r.exit_code == 1
    assert "state_flags_table[cur_fsm]" in r.stdout and "state_flags_table[new_fsm]" in r.stdout


def test_define_option_selects_the_compiled_arm(tmp_path: Path) -> None:
    base = (FIXTURES / "v6_2_fixed.c").read_text()
    cond = "*next_fsm != VFIO_DEVICE_STATE_ERROR &&\n"
    src = tmp_path / "opt.c"
    src.write_text(base.replace(cond, "\n#ifdef WITH_FIX\n" + cond + "#endif\n"))
    assert run("check", "--kernel", str(src)).exit_code == 1  # released loop compiled
    r = run("check", "--kernel", str(src), "-D", "WITH_FIX", "--json")
    assert r.exit_code == 0
    notes = [i["detail"] for i in json.loads(r.stdout)["info"] if i["kind"] == "source-note"]
    assert any("#ifdef WITH_FIX" in n and "compiled" in n for n in notes)
    assert run("path", "STOP_COPY", "PRE_COPY", "--kernel", str(src), "-D", "WITH_FIX",
               "--json").exit_code == 0
