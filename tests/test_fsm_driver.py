"""``fsm driver``: variant drivers' step functions against the kernel's walk.

The fixtures under tests/fixtures/drivers/ are written for these tests in the shape of each
driver (mlx5, hisi_acc, pds, virtio, qat, xe, samples/vfio-mdev/mtty.c); none is kernel
code.  Every shape is clean as written; removing one arm must make exactly that arc
missing, with a request that reaches it and the line where the driver then refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.fsm import fsm
from model.fsm.driver.check import check_driver, emitted_arcs
from model.fsm.driver.source import find_step_function, load_units
from model.fsm.kernel.builtin import default_kernel, fixed_kernel
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.preprocess import parse_defines
from model.fsm.uapi import ALL_FLAGS, DeviceState, MigFlag, direct_arcs, parse_features

DRIVERS = Path(__file__).parent / "fixtures" / "drivers"
KERNELS = Path(__file__).parent / "fixtures" / "kernel"
S = DeviceState
P2P = MigFlag.STOP_COPY | MigFlag.P2P


def run(*args: str):
    return CliRunner().invoke(fsm, ["driver", *args], catch_exceptions=False)


def report(files: list[Path], features: str, defines: list[str] | None = None,
           function: str | None = None, kernel=None):
    units = load_units([str(f) for f in files], parse_defines(defines or []))
    step = find_step_function(units, function)
    return check_driver(step, units, kernel or default_kernel(), parse_features(features))


# (files, features, step function, field, number of arcs the kernel emits)
SHAPES = {
    "mlx5": (["mlx5_shape.c"], "p2p,pre-copy", "acme_step_state_locked", "mig_state", 15),
    "hisi_acc": (["hisi_shape.c"], "stop-copy", "bolt_set_device_state", "mig_state", 6),
    "pds": (["pds_shape_dev.c", "pds_shape_lm.c"], "p2p", "crane_step_locked", "state", 8),
    "virtio": (["virtio_shape.c"], "p2p", "dune_step_locked", "mig_state", 8),
    "qat": (["qat_shape.c"], "all", "ember_step", "mig_state", 15),
    "xe": (["xe_shape.c"], "p2p", "fjord_set_state", "mig_state", 8),
    "mtty": (["mtty_shape.c"], "all", "glen_step_state", "state", 15),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_clean_shapes_handle_every_emitted_arc(shape: str) -> None:
    files, features, function, field, n = SHAPES[shape]
    rep = report([DRIVERS / f for f in files], features)
    assert rep.function == function and rep.exit_code == 0
    assert (rep.missing, rep.extra, rep.unparsed) == ([], [], [])
    handled = {(a, b) for a, b, _ in rep.handled}
    assert handled == set(emitted_arcs(default_kernel(), parse_features(features)))
    assert len(handled) == n
    assert f"(field {field})" in rep.notes[0]
    # every handled arc is a direct uAPI arc, and its line is inside the function
    assert handled <= direct_arcs(parse_features(features))
    text = (DRIVERS / files[-1]).read_text().splitlines()
    for _a, _b, line in rep.handled:
        assert "cur" in text[line - 1] or "VFIO_DEVICE_STATE" in text[line - 1]


# one arm of each shape, and the arc its removal leaves missing
REMOVED = {
    "hisi_acc": ("\tif (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RUNNING) {\n"
                 "\t\tbolt_go(b);\n\t\treturn NULL;\n\t}\n", (S.STOP, S.RUNNING)),
    "pds": ("\tif (cur == VFIO_DEVICE_STATE_RUNNING_P2P && next == VFIO_DEVICE_STATE_STOP) {\n"
            "\t\terr = crane_cmd(c, CRANE_SUSPEND);\n\t\tif (err)\n\t\t\treturn ERR_PTR(err);\n"
            "\t\treturn NULL;\n\t}\n", (S.RUNNING_P2P, S.STOP)),
    "virtio": ("\tif (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RUNNING_P2P) {\n"
               "\t\t/* nothing to do */\n\t\treturn NULL;\n\t}\n", (S.STOP, S.RUNNING_P2P)),
    "qat": (" ||\n\t    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P && new == VFIO_DEVICE_STATE_PRE_COPY)",
            (S.PRE_COPY_P2P, S.PRE_COPY)),
    "xe": ("\tif (cur == VFIO_DEVICE_STATE_RESUMING && new == VFIO_DEVICE_STATE_STOP) {\n"
           "\t\tret = fjord_pf_call(fv, 4);\n\t\tif (ret)\n\t\t\tgoto err;\n"
           "\t\treturn NULL;\n\t}\n", (S.RESUMING, S.STOP)),
    "mtty": (" ||\n\t      new == VFIO_DEVICE_STATE_STOP", (S.RUNNING_P2P, S.STOP)),
}


@pytest.mark.parametrize("shape", REMOVED)
def test_each_shape_with_one_arm_removed(shape: str, tmp_path: Path) -> None:
    files, features, _, _, n = SHAPES[shape]
    arm, arc = REMOVED[shape]
    paths = []
    for f in files:
        text = (DRIVERS / f).read_text()
        if arm in text:
            text = text.replace(arm, "", 1)
        (tmp_path / f).write_text(text)
        paths.append(tmp_path / f)
    assert sum(arm in (DRIVERS / f).read_text() for f in files) == 1
    rep = report(paths, features)
    assert [m[0] for m in rep.missing] == [arc] and rep.exit_code == 1
    (_, via, line) = rep.missing[0]
    assert via[0] == arc[0]  # the shortest reaching request starts from the arc's state
    refusal = (tmp_path / files[-1]).read_text().splitlines()[line - 1]
    assert "-EINVAL" in refusal
    assert len(rep.handled) == n - 1


def test_mlx5_shape_with_one_arm_removed_reports_line_and_request() -> None:
    r = run(str(DRIVERS / "mlx5_shape_missing_arm.c"), "--features", "p2p,pre-copy", "--json")
    assert r.exit_code == 1
    js = json.loads(r.stdout)
    assert js["missing"] == [{"arc": ["PRE_COPY_P2P", "STOP_COPY"],
                              "via": ["PRE_COPY_P2P", "STOP_COPY"], "line": 101}]
    lines = (DRIVERS / "mlx5_shape_missing_arm.c").read_text().splitlines()
    assert lines[100].strip() == "return ERR_PTR(-EINVAL);"
    assert set(js) >= {"driver", "function", "features", "handled", "missing", "extra",
                       "unparsed"}
    assert js["function"] == "acme_step_state_locked"
    assert js["features"] == ["stop-copy", "p2p", "pre-copy"]
    assert ["STOP", "STOP_COPY", 60] in js["handled"]
    assert "VFIO_DEVICE_STATE_STOP_COPY" in lines[59]
    text = run(str(DRIVERS / "mlx5_shape_missing_arm.c"), "--features", "p2p,pre-copy")
    assert text.exit_code == 1
    assert "missing: PRE_COPY_P2P -> STOP_COPY" in text.stdout
    assert "refuses it at line 101" in text.stdout


def test_clean_mlx5_exits_0_and_lists_dead_arms_for_fewer_features() -> None:
    r = run(str(DRIVERS / "mlx5_shape.c"), "--features", "p2p,pre-copy", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["missing"] == []
    r = run(str(DRIVERS / "mlx5_shape.c"), "--features", "p2p", "--json")
    js = json.loads(r.stdout)
    assert r.exit_code == 0 and js["missing"] == []
    # the seven arcs touching PRE_COPY[_P2P] are never handed to a p2p-only device
    assert len(js["extra"]) == 7
    assert all("PRE_COPY" in a or "PRE_COPY" in b or "PRE_COPY_P2P" in (a, b)
               for a, b in js["extra"])


def test_emitted_arcs_per_feature_set() -> None:
    counts = {f: len(emitted_arcs(default_kernel(), f)) for f in
              (MigFlag.STOP_COPY, P2P, MigFlag.STOP_COPY | MigFlag.PRE_COPY, ALL_FLAGS)}
    assert list(counts.values()) == [6, 8, 9, 15]
    for f in counts:
        # the released loop never returns for the blocked requests, so it emits no arc the
        # fixed one does not; both emit exactly the direct arcs a walk needs
        assert emitted_arcs(default_kernel(), f).keys() == emitted_arcs(fixed_kernel(), f).keys()
        assert set(emitted_arcs(default_kernel(), f)) <= direct_arcs(f)
    via = emitted_arcs(default_kernel(), P2P)
    assert via[(S.RUNNING, S.RUNNING_P2P)] == (S.RUNNING, S.RUNNING_P2P)


def test_kernel_file_and_unknown_feature_set() -> None:
    r = run(str(DRIVERS / "hisi_shape.c"), "--features", "stop-copy", "--kernel",
            str(KERNELS / "vfio_v5_18.c"), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["kernel"].endswith("vfio_v5_18.c")
    r = run(str(DRIVERS / "hisi_shape.c"), "--features", "pre-copy", "--kernel",
            str(KERNELS / "vfio_v5_18.c"), "--json")
    assert r.exit_code == 2 and "does not know the feature set" in json.loads(r.stdout)["error"]


# ---------------------------------------------------------------------- preprocessor
def test_if0_else_gives_the_compiled_arms_verdict() -> None:
    rep = report([DRIVERS / "if0_else_shape.c"], "stop-copy")
    assert [m[0] for m in rep.missing] == [(S.RESUMING, S.STOP)]
    assert any("#if 0" in n and "skipped" in n for n in rep.notes)


@pytest.mark.parametrize(
    ("features", "defines", "missing", "extra"),
    [
        ("stop-copy", [], [], []),
        ("p2p", [], [(S.STOP, S.RUNNING_P2P), (S.RUNNING, S.RUNNING_P2P),
                     (S.RUNNING_P2P, S.STOP), (S.RUNNING_P2P, S.RUNNING)],
         [(S.STOP, S.RUNNING), (S.RUNNING, S.STOP)]),
        ("p2p", ["INLET_P2P"], [(S.STOP, S.RUNNING_P2P), (S.RUNNING_P2P, S.STOP)], []),
        ("p2p", ["INLET_P2P=2"], [], []),
    ],
)
def test_ifdef_both_arms_and_nested_if(features, defines, missing, extra) -> None:
    rep = report([DRIVERS / "config_shape.c"], features, defines)
    assert [m[0] for m in rep.missing] == missing
    assert rep.extra == extra


def test_unknown_symbol_is_refused_with_file_line_and_symbol() -> None:
    with pytest.raises(KernelSourceError) as e:
        report([DRIVERS / "unknown_symbol_shape.c"], "stop-copy")
    assert str(e.value).startswith(str(DRIVERS / "unknown_symbol_shape.c") + ":27: ")
    assert "KELP_FW_API" in str(e.value) and e.value.line == 27
    r = run(str(DRIVERS / "unknown_symbol_shape.c"), "--features", "stop-copy", "--json")
    assert r.exit_code == 2
    js = json.loads(r.stdout)
    assert js["line"] == 27 and js["file"].endswith("unknown_symbol_shape.c")
    assert "KELP_FW_API" in js["error"] and "Traceback" not in r.stderr
    assert report([DRIVERS / "unknown_symbol_shape.c"], "stop-copy",
                  ["KELP_FW_API=3"]).missing == []
    assert [m[0] for m in report([DRIVERS / "unknown_symbol_shape.c"], "stop-copy",
                                 ["KELP_FW_API=2"]).missing] == [(S.STOP, S.RESUMING),
                                                                 (S.RESUMING, S.STOP)]


# ---------------------------------------------------------------------- reading arms
def _driver(body: str, tmp_path: Path, name: str = "d.c") -> Path:
    text = (DRIVERS / "hisi_shape.c").read_text()
    start = text.index("\tif (cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_STOP)")
    end = text.index("\t/* no other arc reaches a stop-copy-only device */")
    p = tmp_path / name
    p.write_text(text[:start] + body + text[end:])
    return p


def test_switch_on_the_states(tmp_path: Path) -> None:
    body = """\tswitch (cur) {
\tcase VFIO_DEVICE_STATE_RUNNING:
\t\tif (new == VFIO_DEVICE_STATE_STOP)
\t\t\treturn NULL;
\t\tbreak;
\tcase VFIO_DEVICE_STATE_STOP:
\t\tswitch (new) {
\t\tcase VFIO_DEVICE_STATE_RUNNING:
\t\tcase VFIO_DEVICE_STATE_STOP_COPY:
\t\tcase VFIO_DEVICE_STATE_RESUMING:
\t\t\treturn bolt_saver(b);
\t\tdefault:
\t\t\tbreak;
\t\t}
\t\tbreak;
\tdefault:
\t\tif (new == VFIO_DEVICE_STATE_STOP)
\t\t\treturn NULL;
\t}
"""
    rep = report([_driver(body, tmp_path)], "stop-copy")
    assert rep.missing == [] and rep.unparsed == []
    extra = {(a, b) for a, b in rep.extra}
    # the default arm also takes RUNNING_P2P/PRE_COPY[_P2P] -> STOP: dead code here
    assert (S.RUNNING_P2P, S.STOP) in extra and (S.STOP_COPY, S.STOP) not in extra


def test_arms_that_cannot_be_decided_are_named_never_guessed(tmp_path: Path) -> None:
    body = """\tif (cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_STOP)
\t\treturn NULL;
\tif (bolt_allowed(cur, new))
\t\treturn NULL;
"""
    p = _driver(body, tmp_path)
    rep = report([p], "stop-copy")
    assert rep.missing == [] and rep.exit_code == 2
    assert [(u.line, "bolt_allowed" in u.reason) for u in rep.unparsed] == [(30, True)]
    # RUNNING -> STOP is decided before the undecidable arm; the other five are open
    assert len(rep.unknown) == 5 and (S.RUNNING, S.STOP) not in rep.unknown
    r = run(str(p), "--features", "stop-copy", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["unparsed"][0]["line"] == 30


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("\tif (cur == b->other_state)\n\t\treturn NULL;\n", "not a constant"),
        ("\tcur = VFIO_DEVICE_STATE_STOP;\n", "changes cur"),
        ("\twhile (cur != new)\n\t\tbolt_go(b);\n", "loop"),
        ("\tif (b->flags)\n\t\tgoto inner;\n\t{\ninner:\n\t\treturn NULL;\n\t}\n", "label"),
        ("\tif (table[cur])\n\t\treturn NULL;\n", "indexes"),
    ],
)
def test_constructs_the_reader_does_not_follow(body: str, reason: str, tmp_path: Path) -> None:
    rep = report([_driver(body, tmp_path)], "stop-copy")
    assert rep.unparsed and reason in rep.unparsed[0].reason
    assert rep.exit_code == 2 and rep.missing == []


def test_unknown_conditions_are_followed_both_ways(tmp_path: Path) -> None:
    body = """\tif (b->broken)
\t\treturn ERR_PTR(-EIO);
\tif (cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_STOP && b->ready)
\t\treturn NULL;
\tif ((cur == VFIO_DEVICE_STATE_STOP || b->any) && new == VFIO_DEVICE_STATE_RUNNING)
\t\treturn NULL;
"""
    rep = report([_driver(body, tmp_path)], "stop-copy")
    handled = {(a, b) for a, b, _ in rep.handled}
    # a constant errno behind a run-time condition is a failure at run time, not a refusal
    assert (S.RUNNING, S.STOP) in handled and (S.STOP, S.RUNNING) in handled
    # "b->any" alone may take any pair to RUNNING: handled, but not by a decided arm
    assert (S.RESUMING, S.RUNNING) in handled and (S.RESUMING, S.RUNNING) not in rep.extra
    assert {m[0] for m in rep.missing} == {(S.STOP, S.STOP_COPY), (S.STOP_COPY, S.STOP),
                                           (S.STOP, S.RESUMING), (S.RESUMING, S.STOP)}


def test_function_option_without_a_loop(tmp_path: Path) -> None:
    text = (DRIVERS / "hisi_shape.c").read_text()
    p = tmp_path / "noloop.c"
    p.write_text(text[: text.index("static struct file *\nbolt_pci_set_device_state")])
    with pytest.raises(KernelSourceError, match="no loop calls vfio_mig_get_next_state"):
        report([p], "stop-copy")
    rep = report([p], "stop-copy", function="bolt_set_device_state")
    assert rep.exit_code == 0 and len(rep.handled) == 6
    with pytest.raises(KernelSourceError, match="nope.*not defined"):
        report([p], "stop-copy", function="nope")


def test_loop_in_one_file_step_function_missing() -> None:
    with pytest.raises(KernelSourceError, match=r"pds_shape_dev.c:34: the loop calls "
                                                 r"crane_step_locked\(\) which is not defined"):
        report([DRIVERS / "pds_shape_dev.c"], "p2p")


def test_missing_brace_in_a_driver_is_named(tmp_path: Path) -> None:
    text = (DRIVERS / "virtio_shape.c").read_text()
    p = tmp_path / "brace.c"
    p.write_text(text.replace("\t\t/* nothing to do */\n\t\treturn NULL;\n\t}\n",
                              "\t\t/* nothing to do */\n\t\treturn NULL;\n", 1))
    r = run(str(p), "--features", "p2p", "--json")
    assert r.exit_code == 2
    js = json.loads(r.stdout)
    assert js["line"] == 28 and "never closed" in js["error"]


def test_bad_define_option_is_a_user_error() -> None:
    r = run(str(DRIVERS / "hisi_shape.c"), "--features", "stop-copy", "-D", "1BAD=2")
    assert r.exit_code == 2 and "-D '1BAD'" in r.stderr


MLX5 = (DRIVERS / "mlx5_shape.c").read_text()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(MLX5)), st.integers(min_value=1, max_value=30),
       st.sampled_from(["", "{", "}", "(", ")", ";", "#if 0\n", "#endif\n", "goto out;",
                        "cur = 1;", "case 2:", "? :", "'"]))
def test_damaged_drivers_fail_cleanly(cut: int, length: int, insert: str) -> None:
    """A driver with a piece cut out (or a token put in) is read or refused with
    KernelSourceError; never another exception."""
    from model.fsm.kernel.unit import translation_unit

    text = MLX5[:cut] + insert + MLX5[cut + length:]
    try:
        unit = translation_unit(text, "cut.c")
        step = find_step_function([unit])
        rep = check_driver(step, [unit], default_kernel(), ALL_FLAGS)
    except KernelSourceError as e:
        assert str(e).startswith("cut.c") and "\n" not in str(e)
        return
    assert rep.exit_code in (0, 1, 2)


def test_conditions_with_large_or_odd_arithmetic(tmp_path: Path) -> None:
    body = """\tif ((cur << 62) == 0 && (cur << 99) == 0)
\t\treturn NULL;
\tif (cur * 1000000000000 / 3 % 7 == new)
\t\treturn NULL;
"""
    rep = report([_driver(body, tmp_path)], "stop-copy")
    assert rep.unparsed and "shifts by 99" in rep.unparsed[0].reason
