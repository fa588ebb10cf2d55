"""The kernel's step function: the built-in tables, the C front end, walks and step tables."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.fsm.kernel.builtin import BUILTIN_SOURCE, default_kernel, fixed_kernel
from model.fsm.kernel.load import load_kernel, parse_kernel_source, resolve_kernel
from model.fsm.kernel.names import EINVAL, KernelSourceError, NonTerminatingStep
from model.fsm.kernel.preprocess import parse_defines
from model.fsm.kernel.step import STEP_EINVAL, STEP_LOOP, STEP_UNDEFINED, KernelStepFunction, step_table
from model.fsm.uapi import (
    ALL_FLAGS,
    BLOCKED_REQUESTS,
    FEATURE_SETS,
    DeviceState,
    MigFlag,
    direct_arcs,
    supported_states,
)

FIXTURES = Path(__file__).parent / "fixtures" / "kernel"
S = DeviceState
E, ST, R, SC, RS, RP, PC, PP = (S.ERROR, S.STOP, S.RUNNING, S.STOP_COPY, S.RESUMING,
                                S.RUNNING_P2P, S.PRE_COPY, S.PRE_COPY_P2P)
P2P = MigFlag.STOP_COPY | MigFlag.P2P
PRE = MigFlag.STOP_COPY | MigFlag.PRE_COPY
ALL = ALL_FLAGS
PAIRS = [(f, c, n) for f in FEATURE_SETS for c in DeviceState for n in DeviceState if c != n]
LOOPING = {(PRE, SC, PC), (ALL, SC, PC), (ALL, SC, PP)}

# The combination transitions the comment above vfio_mig_get_next_state() lists for a
# device with every optional feature (drivers/vfio/vfio_main.c, 6.2 .. 7.1).
COMMENT_COMBINATIONS_ALL = [
    (PC, PP, SC), (PC, R, RP), (PC, R, RP, ST), (PC, R, RP, ST, RS),
    (PP, RP, R), (PP, RP, ST), (PP, RP, ST, RS),
    (RS, ST, RP), (RS, ST, RP, PP), (RS, ST, RP, R), (RS, ST, RP, R, PC), (RS, ST, SC),
    (R, RP, PP), (R, RP, ST), (R, RP, ST, RS), (R, RP, ST, SC),
    (RP, R, PC), (RP, ST, RS), (RP, ST, SC),
    (ST, RP, PP), (ST, RP, R), (ST, RP, R, PC),
    (SC, ST, RS), (SC, ST, RP), (SC, ST, RP, R),
]


def must_refuse(flags: MigFlag, cur: DeviceState, new: DeviceState) -> bool:
    """What the uAPI says, computed here independently of model.fsm.audit."""
    sup = set(supported_states(flags))
    return cur not in sup or new not in sup or (cur, new) in BLOCKED_REQUESTS


def fixture(name: str) -> KernelStepFunction:
    return load_kernel(FIXTURES / name)


# ------------------------------------------------------------------------ the built-ins
def test_builtin_identity() -> None:
    k = default_kernel()
    assert k.source == BUILTIN_SOURCE == "built-in (Linux 6.2–7.1 vfio_main.c)"
    assert k.states == tuple(DeviceState)
    assert k.flag_sets == FEATURE_SETS
    assert resolve_kernel(None) is k and resolve_kernel("builtin") is k
    assert resolve_kernel("builtin-fixed") is fixed_kernel()
    assert k.fsm_table.shape == (8, 8)
    assert int(k.flags_table[E]) == 0xFFFFFFFF


@pytest.mark.parametrize("walk", COMMENT_COMBINATIONS_ALL, ids=lambda w: "-".join(s.name for s in w))
@pytest.mark.parametrize("kernel", [default_kernel, fixed_kernel], ids=["released", "fixed"])
def test_combinations_listed_in_the_kernel_comment(walk: tuple[DeviceState, ...], kernel) -> None:
    p = kernel().path(ALL, walk[0], walk[-1])
    assert p.result == "ok"
    assert tuple(p.steps) == walk[1:]


@pytest.mark.parametrize(("flags", "cur", "new"), PAIRS,
                         ids=[f"{int(f)}-{c.name}-{n.name}" for f, c, n in PAIRS])
def test_every_pair_of_every_feature_set(flags: MigFlag, cur: DeviceState,
                                         new: DeviceState) -> None:
    """Walks of the fixed built-in use only uAPI arcs, reach the target or are refused on
    the first call exactly when the uAPI says so; the released one differs only by
    never returning for the blocked STOP_COPY -> PRE_COPY[_P2P] requests."""
    p = fixed_kernel().path(flags, cur, new)
    walk = [cur, *p.steps]
    for a, b in zip(walk, walk[1:], strict=False):
        assert (a, b) in direct_arcs(flags), (a, b)
    if must_refuse(flags, cur, new):
        assert p.result in ("einval", "warn-einval") and p.steps == [] and p.errno == -EINVAL
        # only an unusable *current* state WARNs (WARN_ON on cur_fsm)
        assert (p.result == "warn-einval") == (cur not in supported_states(flags))
    else:
        assert p.result == "ok" and p.steps[-1] == new
    released = default_kernel().path(flags, cur, new)
    if (flags, cur, new) in LOOPING:
        assert released.result == "loop" and released.steps == []
        assert "never ends" in released.detail
    else:
        assert (released.result, released.steps) == (p.result, p.steps)


def test_next_state_results() -> None:
    k = default_kernel()
    assert k.next_state(P2P, R, SC) == (0, RP)
    assert k.next_state(ALL, E, ST) == (-EINVAL, None)
    assert k.step(ALL, E, ST).warned  # cur = ERROR always WARNs (state_flags_table ~0U)
    assert k.next_state(P2P, R, PC) == (-EINVAL, None)
    assert not k.step(P2P, R, PC).warned
    assert k.next_state(ALL, R, E) == (-EINVAL, None)
    with pytest.raises(NonTerminatingStep, match="ERROR"):
        k.next_state(ALL, SC, PP)
    assert fixed_kernel().next_state(ALL, SC, PP) == (-EINVAL, None)
    # without P2P the skip loop turns RUNNING -> (RUNNING_P2P) -> STOP into one step
    assert k.next_state(MigFlag.STOP_COPY, R, ST) == (0, ST)
    assert k.next_state(PRE, ST, R) == (0, R)


def test_step_table_codes() -> None:
    t = step_table(default_kernel(), ALL)
    assert t.shape == (8, 8) and t.dtype == np.int64
    assert t[R, SC] == RP and t[RP, SC] == ST and t[ST, SC] == SC
    assert (t[E] == STEP_EINVAL).all() and (t[:, E] == STEP_EINVAL).all()
    assert t[SC, PC] == STEP_LOOP and t[SC, PP] == STEP_LOOP
    assert step_table(fixed_kernel(), ALL)[SC, PC] == STEP_EINVAL
    t2 = step_table(default_kernel(), P2P)
    assert (t2[:, PC] == STEP_EINVAL).all() and (t2[PC] == STEP_EINVAL).all()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FEATURE_SETS), st.sampled_from(list(DeviceState)),
       st.sampled_from(list(DeviceState)),
       st.sampled_from(["builtin", "builtin-fixed", "v6_2_fixed.c", "vfio_v5_18.c",
                        "bad_not_shortest.c", "bad_refused_midway.c"]))
def test_vectorised_walk_on_step_table_equals_path(flags, cur, new, which) -> None:
    k = resolve_kernel(which) if which.startswith("builtin") else fixture(which)
    if flags not in k.flag_sets or cur == new:
        return
    t = step_table(k, flags)
    p = k.path(flags, cur, new)
    # walk a column of identical devices the way a vectorised model would
    s = np.full(3, int(cur))
    seen: list[int] = []
    for _ in range(8):
        s = np.where(s == int(new), s, t[s, int(new)])
        if s[0] < 0:
            break
        seen.append(int(s[0]))
        if s[0] == new:
            break
    if p.result == "ok":
        assert seen == [int(x) for x in p.steps]
    elif p.result in ("einval", "warn-einval"):
        assert seen == [int(x) for x in p.steps] and s[0] == STEP_EINVAL
    elif p.result == "loop":
        assert s[0] == STEP_LOOP


# ------------------------------------------------------------------------ the front end
def test_fixture_in_6_2_format_equals_the_fixed_builtin() -> None:
    k = fixture("v6_2_fixed.c")
    assert k.source.endswith("v6_2_fixed.c")
    assert k.flag_sets == FEATURE_SETS and k.states == tuple(DeviceState)
    assert np.array_equal(k.fsm_table, fixed_kernel().fsm_table)
    assert np.array_equal(k.flags_table, fixed_kernel().flags_table)
    for f in FEATURE_SETS:
        assert np.array_equal(step_table(k, f), step_table(fixed_kernel(), f))
    released = fixture("v6_2_as_released.c")
    for f in FEATURE_SETS:
        assert np.array_equal(step_table(released, f), step_table(default_kernel(), f))


def test_fixture_in_5_18_vfio_c_format() -> None:
    k = fixture("vfio_v5_18.c")
    assert k.states == (E, ST, R, SC, RS, RP)
    assert k.flag_sets == (MigFlag.STOP_COPY, P2P)
    assert k.fsm_table.shape == (6, 6)
    for f in k.flag_sets:
        for cur, new in itertools.product(k.states, k.states):
            a, b = k.path(f, cur, new), default_kernel().path(f, cur, new)
            assert (a.result, a.steps) == (b.result, b.steps), (f, cur, new)
    # a PRE_COPY state is outside its tables: refused, and WARNs as the current state
    assert k.path(P2P, R, PC).result == "einval"
    assert k.path(P2P, PC, R).result == "warn-einval"


def test_fixture_first_v2_without_p2p() -> None:
    k = fixture("vfio_v5_18_rc_first_v2.c")
    assert k.flag_sets == (MigFlag.STOP_COPY,) and len(k.states) == 5
    assert k.flags_table is None
    assert k.path(MigFlag.STOP_COPY, R, SC).steps == [ST, SC]
    assert k.path(MigFlag.STOP_COPY, E, ST).result == "einval"  # no WARN in that version


def test_refactored_variant_helper_file_scope_tables_for_loop() -> None:
    k = fixture("variant_helper_for_loop.c")
    assert any("7 cell(s) of vfio_from_fsm_table are not initialised" in n for n in k.notes)
    for f in FEATURE_SETS:
        assert np.array_equal(step_table(k, f), step_table(fixed_kernel(), f))
    assert k.step(ALL, E, ST).warned


BASE = (FIXTURES / "v6_2_fixed.c").read_text()
FIXED_COND = ("*next_fsm != VFIO_DEVICE_STATE_ERROR &&\n"
              "\t       (state_flags_table[*next_fsm] & device->migration_flags) !=\n"
              "\t\t\tstate_flags_table[*next_fsm]")
assert FIXED_COND in BASE


def with_loop(cond: str) -> KernelStepFunction:
    return parse_kernel_source(BASE.replace(FIXED_COND, cond), "variant.c")


@pytest.mark.parametrize(
    ("cond", "like"),
    [
        # the loop as released in 6.2 .. 7.1 (and, with six states, in 5.18 .. 6.1)
        ("(state_flags_table[*next_fsm] & device->migration_flags) != "
         "state_flags_table[*next_fsm]", "released"),
        ("unlikely((state_flags_table[*next_fsm] & device->migration_flags) !=\n"
         "/* a comment inside the condition */ state_flags_table[*next_fsm])", "released"),
        ("state_flags_table[*next_fsm] & ~device->migration_flags", "released"),
        ("!((state_flags_table[*next_fsm] & device->migration_flags) == "
         "state_flags_table[*next_fsm]) && *next_fsm", "fixed"),
        ("*next_fsm // trailing comment\n && (device->migration_flags | "
         "state_flags_table[*next_fsm]) != device->migration_flags", "fixed"),
        ("next_fsm[0] != VFIO_DEVICE_STATE_ERROR && (u32)(state_flags_table[next_fsm[0]] & "
         "device->migration_flags) != state_flags_table[next_fsm[0]]", "fixed"),
    ],
)
def test_loop_condition_variants(cond: str, like: str) -> None:
    k = with_loop(cond)
    ref = default_kernel() if like == "released" else fixed_kernel()
    for f in FEATURE_SETS:
        assert np.array_equal(step_table(k, f), step_table(ref, f)), f


def test_do_while_skip_loop() -> None:
    text = BASE.replace(
        "\twhile (" + FIXED_COND + ")\n\t\t*next_fsm = vfio_from_fsm_table[*next_fsm][new_fsm];",
        "\tdo {\n\t\tif (*next_fsm == VFIO_DEVICE_STATE_ERROR ||\n"
        "\t\t    (state_flags_table[*next_fsm] & device->migration_flags) ==\n"
        "\t\t    state_flags_table[*next_fsm])\n\t\t\tbreak;\n"
        "\t\t*next_fsm = vfio_from_fsm_table[*next_fsm][new_fsm];\n\t} while (1);")
    assert text != BASE
    k = parse_kernel_source(text, "do.c")
    for f in FEATURE_SETS:
        assert np.array_equal(step_table(k, f), step_table(fixed_kernel(), f))


def cell(row: str, col: str, value: str) -> KernelStepFunction:
    old = f"[VFIO_DEVICE_STATE_{row}] = {{"
    start = BASE.index("\t\t" + old)
    end = BASE.index("},", start)
    block = BASE[start:end]
    line = f"[VFIO_DEVICE_STATE_{col}] = "
    i = block.index(line)
    j = block.index(",", i)
    new_block = block[: i + len(line)] + value + block[j:]
    return parse_kernel_source(BASE[:start] + new_block + BASE[end:], f"cell-{row}-{col}.c")


def test_walk_outcomes_stuck_cycle_undefined() -> None:
    stuck = cell("RUNNING", "STOP", "VFIO_DEVICE_STATE_RUNNING")
    p = stuck.path(ALL, R, ST)
    assert p.result == "stuck" and "spin" in p.detail
    cyc = cell("RUNNING_P2P", "STOP", "VFIO_DEVICE_STATE_RUNNING")
    p = cyc.path(ALL, R, ST)
    assert p.result == "cycle" and p.steps == [RP, R]
    undef = cell("STOP", "RESUMING", "9")
    p = undef.path(ALL, ST, RS)
    assert p.result == "undefined" and "state_flags_table[9] outside its 8 entries" in p.detail
    assert step_table(undef, ALL)[ST, RS] == STEP_UNDEFINED


def test_comments_and_preprocessor_lines_are_ignored() -> None:
    text = "#include <linux/vfio.h>\n#define UNUSED(x) x\n/* int vfio_mig_get_next_state(void) { } */\n"
    text += "// int vfio_mig_get_next_state(\n" + BASE
    k = parse_kernel_source(text, "c.c")
    assert np.array_equal(step_table(k, ALL), step_table(fixed_kernel(), ALL))


# ------------------------------------------------------------------------ clear errors
def test_missing_table_is_named() -> None:
    with pytest.raises(KernelSourceError) as e:
        fixture("bad_missing_table.c")
    msg = str(e.value)
    assert msg.startswith(str(FIXTURES / "bad_missing_table.c") + ":")
    assert "no definition of vfio_from_fsm_table (the next-step table)" in msg


def test_missing_flags_table_is_named() -> None:
    start = BASE.index("\tstatic const unsigned int state_flags_table")
    end = BASE.index("};", start) + 2
    with pytest.raises(KernelSourceError, match=r"no definition of state_flags_table \(the "
                                                r"flags each state needs\)"):
        parse_kernel_source(BASE[:start] + BASE[end:], "x.c")


def test_uninterpretable_loop_condition_is_quoted() -> None:
    with pytest.raises(KernelSourceError) as e:
        fixture("bad_uninterpretable_loop.c")
    msg = str(e.value)
    assert "bad_uninterpretable_loop.c:" in msg
    assert "cannot interpret the condition `!vfio_mig_state_ok(device, *next_fsm)` of the " \
           "while loop" in msg
    assert "vfio_mig_state_ok()" in msg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("int x;\n", r"no definition of vfio_mig_get_next_state\(\) found"),
        ("int vfio_mig_get_next_state(struct vfio_device *d, int c)\n{ return 0; }\n",
         "has 2 parameters"),
        (BASE.replace("device->migration_flags) !=\n\t\t\tstate_flags_table[*next_fsm]",
                      "device->mig_ops) !=\n\t\t\tstate_flags_table[*next_fsm]"),
         "member access '->mig_ops'"),
        (BASE.replace("*next_fsm = vfio_from_fsm_table[cur_fsm][new_fsm];",
                      "goto out;"), "'goto' is not interpreted"),
        (BASE.replace("return -EINVAL;", "return -EUNKNOWN;", 1), "unknown name 'EUNKNOWN'"),
        # a brace too many or too few: the compiler would refuse the file; named by line
        (BASE.replace("[VFIO_DEVICE_STATE_STOP] = {", "[VFIO_DEVICE_STATE_STOP] = {{", 1),
         r"vfio_main.c:28: the '\{' on this line is never closed"),
        (BASE[: BASE.index("return (*next_fsm")], r"vfio_main.c:13: the '\{' on this line is "
                                                  "never closed"),
    ],
)
def test_parse_errors_are_one_clear_line(text: str, match: str) -> None:
    with pytest.raises(KernelSourceError, match=match) as e:
        parse_kernel_source(text, "drivers/vfio/vfio_main.c")
    assert str(e.value).startswith("drivers/vfio/vfio_main.c")
    assert "\n" not in str(e.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(KernelSourceError, match=r"nope\.c: cannot read the kernel source"):
        load_kernel(tmp_path / "nope.c")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(BASE)), st.integers(min_value=1, max_value=40))
def test_damaged_sources_fail_cleanly(cut: int, length: int) -> None:
    """Cutting a piece out of a good source either still parses or raises
    KernelSourceError; never another exception."""
    text = BASE[:cut] + BASE[cut + length:]
    try:
        k = parse_kernel_source(text, "cut.c")
    except KernelSourceError:
        return
    for f in k.flag_sets:
        step_table(k, f)  # every call returns a code; nothing escapes


# ------------------------------------------------------------------------ preprocessor
def test_if0_else_fixture_compiles_only_the_fixed_loop() -> None:
    k = fixture("v6_2_if0_released_else_fixed.c")
    for f in FEATURE_SETS:
        assert np.array_equal(step_table(k, f), step_table(fixed_kernel(), f))
    assert any("#if 0" in n and "skipped" in n and "#else" in n for n in k.notes)


def test_stub_under_ifndef_is_taken_only_as_the_compiler_would() -> None:
    stub = ("#ifndef CONFIG_VFIO_MIG_TEST\n"
            "int vfio_mig_get_next_state(struct vfio_device *device,\n"
            "\t\t\t    enum vfio_device_mig_state cur_fsm,\n"
            "\t\t\t    enum vfio_device_mig_state new_fsm,\n"
            "\t\t\t    enum vfio_device_mig_state *next_fsm)\n"
            "{\n\treturn -EINVAL;\n}\n#else\n")
    text = stub + BASE + "#endif\n"
    with pytest.raises(KernelSourceError, match="no definition of vfio_from_fsm_table"):
        parse_kernel_source(text, "stub.c")  # no -D: the stub is compiled, as in the kernel
    k = parse_kernel_source(text, "stub.c", parse_defines(["CONFIG_VFIO_MIG_TEST"]))
    assert np.array_equal(step_table(k, ALL), step_table(fixed_kernel(), ALL))
    assert any("#ifndef CONFIG_VFIO_MIG_TEST" in n and "compiled" in n for n in k.notes)


def test_nested_conditionals_elif_and_defines() -> None:
    loop = "\twhile (" + FIXED_COND + ")\n\t\t*next_fsm = vfio_from_fsm_table[*next_fsm][new_fsm];\n"
    released = ("\twhile ((state_flags_table[*next_fsm] & device->migration_flags) != "
                "state_flags_table[*next_fsm])\n"
                "\t\t*next_fsm = vfio_from_fsm_table[*next_fsm][new_fsm];\n")
    text = BASE.replace(loop, "#if defined(SKIP_FIX)\n" + released + "#elif FIX_LEVEL > 1\n"
                        "#ifdef SKIP_NOTHING\n#error not this one\n#endif\n" + loop
                        + "#else\n" + released + "#endif\n")
    assert text != BASE
    with pytest.raises(KernelSourceError, match=r"c.c:\d+: #if depends on FIX_LEVEL"):
        parse_kernel_source(text, "c.c")
    fixed = parse_kernel_source(text, "c.c", parse_defines(["FIX_LEVEL=2"]))
    assert np.array_equal(step_table(fixed, ALL), step_table(fixed_kernel(), ALL))
    low = parse_kernel_source(text, "c.c", parse_defines(["FIX_LEVEL=1"]))
    assert np.array_equal(step_table(low, ALL), step_table(default_kernel(), ALL))
    # the #elif after a taken #if is not evaluated: FIX_LEVEL may stay unknown
    first = parse_kernel_source(text, "c.c", parse_defines(["SKIP_FIX"]))
    assert np.array_equal(step_table(first, ALL), step_table(default_kernel(), ALL))
    with pytest.raises(KernelSourceError, match="#error not this one"):
        parse_kernel_source(text, "c.c", parse_defines(["FIX_LEVEL=2", "SKIP_NOTHING"]))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("#if 1\nint x;\n", r"p.c:1: #if 1 has no #endif"),
        ("#endif\n", r"p.c:1: #endif without #if"),
        ("#if 0\n#else\n#elif 1\n#endif\n", r"p.c:3: #elif after #else"),
        ("#define F(x) x\n#if F(1)\n#endif\n", r"p.c:2: #if uses the function-like macro F"),
        ("#if VERSION(2)\n#endif\n", r"p.c:1: #if calls VERSION\(\)"),
        ("#if 1 +\n#endif\n", r"p.c:1: #if `1 \+` is not an integer constant expression"),
    ],
)
def test_preprocessor_errors_name_file_and_line(text: str, match: str) -> None:
    with pytest.raises(KernelSourceError, match=match):
        parse_kernel_source(text + BASE, "p.c")


def test_preprocessor_expressions() -> None:
    from model.fsm.kernel.preprocess import preprocess

    src = ("#define A (2 + 1)\n#define B A * 2\n"
           "#if B == 6 && defined A && !defined(C) && IS_ENABLED(CONFIG_M) && -1 < 0\n"
           "yes\n#endif\n"
           "#if IS_BUILTIN(CONFIG_M) || 1 / 2 || (0 ? 1 : 0)\nno\n#endif\n"
           "#ifdef A /* a comment */\nok\n#endif\n"
           "#if A \\\n  == 3\ncontinued\n#endif\n")
    pre = preprocess(src, "e.c", parse_defines(["CONFIG_M_MODULE"]))
    kept = [ln for ln in pre.text.splitlines() if ln.strip()]
    assert kept == ["yes", "ok", "continued"]
    assert pre.text.count("\n") == src.count("\n")  # every line keeps its number


def test_file_scope_enum_sizes_the_tables() -> None:
    local = "\tenum { VFIO_DEVICE_NUM_STATES = VFIO_DEVICE_STATE_PRE_COPY_P2P + 1 };\n"
    assert local in BASE
    text = ("enum { VFIO_DEVICE_NUM_STATES = VFIO_DEVICE_STATE_PRE_COPY_P2P + 1 };\n"
            + BASE.replace(local, ""))
    k = parse_kernel_source(text, "enum.c")
    assert np.array_equal(step_table(k, ALL), step_table(fixed_kernel(), ALL))
    chained = ("enum vfio_sizes { FIRST = 3, SECOND, VFIO_DEVICE_NUM_STATES = SECOND * 2 };\n"
               + BASE.replace(local, ""))
    assert parse_kernel_source(chained, "enum.c").fsm_table.shape == (8, 8)


def test_returns_are_quoted_as_written() -> None:
    p = fixture("v6_2_fixed.c").path(ALL, SC, PC)
    assert p.detail.endswith("? 0 : -EINVAL)") and "- EINVAL" not in p.detail


def test_extra_brace_is_named_by_its_line() -> None:
    text = BASE.replace("\t\treturn -EINVAL;\n", "\t\treturn -EINVAL;\n\t}\n", 1)
    with pytest.raises(KernelSourceError, match=r"x.c:\d+: this '\}' is extra") as e:
        parse_kernel_source(text, "x.c")
    line = e.value.line
    assert line is not None and text.splitlines()[line - 1] == "\t}"


def test_preprocessor_refuses_shifts_outside_the_width() -> None:
    with pytest.raises(KernelSourceError, match=r"s.c:1: #if shifts by 64"):
        parse_kernel_source("#if 1 << 64\n#endif\n" + BASE, "s.c")
