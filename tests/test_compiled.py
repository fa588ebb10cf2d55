"""The compiled actions (checker/cgen.py, checker/compiled.py): the same search as numpy.

Every shipped spec explored with its actions compiled gives the same outcome, counts and
counterexamples (every step's action and state) as with numpy; random expressions built
from the spec language's operators give the same values in C as in numpy; a value that
does not fit its field, a missing compiler and a spec z3 cannot follow all fall back to
numpy or, when compiled actions were asked for, stop with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.compiled import Uncompiled, build
from checker.explore import COMPILE_ROWS, Explorer
from checker.lang import ops
from checker.lang.layout import Layout, Next, View, apply_checked
from checker.lang.spec import Action, Spec, as_mask
from checker.result import Outcome, Result
from cli.load import load_target
from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").rglob("*.toml"))


def _summary(r: Result) -> tuple[object, ...]:
    return (
        r.outcome, r.stats.distinct, r.stats.generated, r.stats.depth, dict(r.properties),
        sorted((v.name, v.message, v.loop_start, tuple((s.action, s.row.tobytes()) for s in v.trace))
               for v in r.violations),
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_shipped_spec_compiled_explores_as_numpy(path: Path) -> None:
    spec = load_target(path).spec
    numpy_run = Explorer(spec, compile="off", workers=1).run()
    compiled = Explorer(spec, compile="on", workers=2)
    c_run = compiled.run()
    assert c_run.stats.compiled and not numpy_run.stats.compiled
    assert _summary(c_run) == _summary(numpy_run)


# --- random expressions: C against numpy ---------------------------------------------------

LAYOUT = Layout()
LAYOUT.var("a", 3)
LAYOUT.var("b", 8)
LAYOUT.var("c", 62)
LAYOUT.flag("f")
TABLE = np.array([5, -3, 7, 0, 2, 9, -1, 4], dtype=np.int64)

leaf = st.sampled_from(["a", "b", "c", "f"]).map(lambda name: ("var", name)) | st.integers(-8, 300).map(
    lambda v: ("const", v)
)


def _tree(children: st.SearchStrategy) -> st.SearchStrategy:
    binary = st.tuples(st.sampled_from(["+", "-", "*", "&", "|", "^", "<", "<=", "==", "!=", "max", "min"]),
                       children, children)
    return (
        binary
        | st.tuples(st.just("~"), children)
        | st.tuples(st.just("neg"), children)
        | st.tuples(st.sampled_from(["<<", ">>"]), children, st.integers(0, 62))
        | st.tuples(st.just("where"), children, children, children)
        | st.tuples(st.just("lookup"), children)
        | st.tuples(st.just("isin"), children, st.lists(st.integers(-2, 9), min_size=1, max_size=4))
        | st.tuples(st.just("bit"), children, st.integers(0, 62))
    )


exprs = st.recursive(leaf, _tree, max_leaves=12)


def _eval(e: tuple, s: object) -> object:
    """``e`` on a view (numpy columns or z3 terms), written as spec code would be."""
    op = e[0]
    if op == "var":
        return s[e[1]]  # type: ignore[index]
    if op == "const":  # a column (or term): Python's own ints would not wrap at 64 bits
        return s["b"] * 0 + e[1]  # type: ignore[index]
    if op == "~":
        return ~_int(_eval(e[1], s))
    if op == "neg":
        return 0 - _int(_eval(e[1], s))
    if op in ("<<", ">>"):
        x = _int(_eval(e[1], s))
        return (x << e[2]) if op == "<<" else (x >> e[2])
    if op == "where":
        return ops.where(_bool(_eval(e[1], s)), _int(_eval(e[2], s)), _int(_eval(e[3], s)))
    if op == "lookup":
        return ops.lookup(TABLE, _int(_eval(e[1], s)) & 7)
    if op == "isin":
        return ops.isin(_int(_eval(e[1], s)), e[2])
    if op == "bit":
        return ops.bit(_int(_eval(e[1], s)), e[2])
    x, y = _int(_eval(e[1], s)), _int(_eval(e[2], s))
    if op == "max":
        return ops.maximum(x, y)
    if op == "min":
        return ops.minimum(x, y)
    return {
        "+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "&": lambda: x & y, "|": lambda: x | y,
        "^": lambda: x ^ y, "<": lambda: x < y, "<=": lambda: x <= y, "==": lambda: x == y,
        "!=": lambda: x != y,
    }[op]()


def _int(x: object) -> object:
    """A boolean as 0/1 (``where`` picks between two integers)."""
    if ops.is_symbolic(x):
        import z3

        return z3.If(x, z3.BitVecVal(1, 64), z3.BitVecVal(0, 64)) if z3.is_bool(x) else x
    if isinstance(x, bool):
        return int(x)
    arr = np.asarray(x)
    return arr.astype(np.int64) if arr.dtype == bool else x


def _bool(x: object) -> object:
    if ops.is_symbolic(x):
        import z3

        return x if z3.is_bool(x) else x != 0
    return np.asarray(x) != 0


@settings(max_examples=25, deadline=None)
@given(e=exprs, seed=st.integers(0, 2**32 - 1))
def test_random_expressions_compute_the_same_in_c_and_numpy(e: tuple, seed: int) -> None:
    """One action assigns the expression to ``c`` (62 bits) when it is positive: the
    guard, the successor and the did-not-fit flag agree with numpy's on random states."""

    def guard(s: View) -> object:
        return _int(_eval(e, s)) > 0

    def effect(s: View, t: Next) -> None:
        t.c = _eval(e, s)
        t.a = s.a + 1  # does not fit from 7 on

    spec = Spec("random", LAYOUT, [{}], [Action("Set", guard, effect)], invariants={"Pred": guard})
    built = build(spec)
    assert built.kernel is not None, built.reason
    kernel = built.kernel
    rng = np.random.default_rng(seed)
    rows = LAYOUT.pack(
        {"a": int(rng.integers(0, 8)), "b": int(rng.integers(0, 256)),
         "c": int(rng.integers(0, 1 << 62)), "f": int(rng.integers(0, 2))}
        for _ in range(200)
    )
    view = View(LAYOUT, rows)
    want = as_mask(guard(view), len(rows))
    en = np.empty((1, len(rows)), dtype=np.uint8)
    kernel.guards(rows, en, 0, len(rows))
    assert np.array_equal(en[0].view(bool), want)
    assert np.array_equal(kernel.holds(guard, rows), want)
    idx = np.flatnonzero(want)
    sub = view.subset(idx)
    t = Next(sub)
    effect(sub, t)
    succ, overflow = apply_checked(LAYOUT, sub.rows, t.assigned, "Set")
    off = np.zeros(2, dtype=np.int64)
    off[1] = len(idx)
    out = np.empty((len(idx), LAYOUT.words), dtype=np.uint64)
    par = np.empty(len(idx), dtype=np.int64)
    ovf = np.zeros(1, dtype=np.uint8)
    kernel.effects(rows, en, 0, 1, off, out, par, ovf)
    assert np.array_equal(par, idx)
    assert bool(ovf[0]) == bool(overflow)
    if not overflow:
        assert np.array_equal(out, succ)


# --- falling back -------------------------------------------------------------------------


def _counter(limit: int, bits: int = 2) -> Spec:
    layout = Layout()
    layout.var("x", bits)
    layout.var("y", 14)
    # y spreads the states so that a level passes the "auto" threshold in some specs below
    return Spec(
        name="counter",
        layout=layout,
        init=[{"x": 0, "y": 0}],
        actions=[
            Action("Inc", lambda s: s.x < limit, lambda s, t: setattr(t, "x", s.x + 1)),
            Action("Spread", lambda s: s.y < 100, lambda s, t: setattr(t, "y", s.y + 1)),
        ],
        check_deadlock=False,
    )


def test_a_value_that_does_not_fit_is_reported_as_numpy_reports_it() -> None:
    """The kernel only flags the action; numpy redoes it on that chunk and reports it."""
    spec = _counter(limit=9)
    off, on = Explorer(spec, compile="off").run(), Explorer(spec, compile="on").run()
    assert on.stats.compiled and on.outcome == Outcome.VIOLATION
    assert on.violation is not None and on.violation.message == (
        "invariant TypeOK is violated: Inc assigns 4 to x, which holds 0..3"
    )
    assert _summary(on) == _summary(off)


def test_no_compiler_means_numpy_or_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")
    spec = _counter(limit=3)
    r = Explorer(spec, compile="auto").run()
    assert not r.stats.compiled and r.outcome == Outcome.PASS
    with pytest.raises(Uncompiled, match="no C compiler"):
        Explorer(spec, compile="on")
    with pytest.raises(ValueError, match="compile must be one of auto, on, off"):
        Explorer(spec, compile="yes")


def test_auto_compiles_once_a_level_is_large() -> None:
    small = Explorer(_counter(limit=3), compile="auto")
    assert not small.run().stats.compiled and small.built is None  # never tried: too small
    layout = Layout()
    layout.var("x", 16)
    layout.var("y", 2)
    wide = Spec("wide", layout, [{"x": i} for i in range(COMPILE_ROWS + 10)], [
        Action("Inc", lambda s: s.y < 3, lambda s, t: setattr(t, "y", s.y + 1)),
    ], check_deadlock=False)
    big = Explorer(wide, compile="auto")
    r = big.run()
    assert r.stats.compiled and r.stats.distinct == 4 * (COMPILE_ROWS + 10)
    assert _summary(r) == _summary(Explorer(wide, compile="off").run())


def test_a_spec_z3_cannot_follow_stays_on_numpy() -> None:
    layout = Layout()
    layout.var("x", 4)
    spec = Spec("numpy-only", layout, [{"x": 0}], [
        Action("Inc", lambda s: np.where(s.x < 3, True, False), lambda s, t: setattr(t, "x", s.x + 1)),
    ], check_deadlock=False)
    built = build(spec)
    assert built.kernel is None and built.reason.startswith("not compilable: guard of Inc")
    with pytest.raises(Uncompiled, match="not compilable"):
        Explorer(spec, compile="on")


def test_a_predicate_z3_cannot_follow_stays_on_numpy_alone() -> None:
    """An invariant written with numpy's library is left to numpy; the actions and the
    other predicates are compiled."""
    layout = Layout()
    layout.var("x", 4)
    inc = Action("Inc", lambda s: s.x < 3, lambda s, t: setattr(t, "x", s.x + 1))
    numpy_only = lambda s: np.where(s.x < 8, True, False)  # noqa: E731
    spec = Spec("array-invariant", layout, [{"x": 0}], [inc], invariants={"Small": numpy_only},
                check_deadlock=False)
    built = build(spec)
    assert built.kernel is not None and not built.kernel.has(numpy_only)
    assert _summary(Explorer(spec, compile="on").run()) == _summary(Explorer(spec, compile="off").run())


def test_an_invariant_and_a_witness_of_one_name_are_kept_apart() -> None:
    """The kernel knows a predicate by its function: an invariant ``X`` that always holds
    and a witness ``X`` that never does give numpy's verdicts."""
    spec = _counter(limit=3)
    spec.invariants = {"X": lambda s: s.x <= 3}
    spec.witnesses = {"X": lambda s: s.x > 3}
    on, off = Explorer(spec, compile="on").run(), Explorer(spec, compile="off").run()
    assert on.stats.compiled and on.properties == off.properties and on.witnesses == off.witnesses
    assert _summary(on) == _summary(off) and on.outcome == off.outcome


def test_a_constant_beyond_64_bits_is_left_to_numpy() -> None:
    """numpy sees the whole number and reports it; a 64-bit term would see its low bits."""
    layout = Layout()
    layout.var("x", 4)
    spec = Spec("huge", layout, [{"x": 0}], [Action("Set", lambda s: s.x == 0,
                                                    lambda s, t: setattr(t, "x", (1 << 64) + 1))])
    built = build(spec)
    assert built.kernel is None and "beyond 64 bits" in built.reason


def test_the_library_is_cached_by_its_source() -> None:
    spec = _counter(limit=3)
    first, second = build(spec), build(spec)
    assert second.cached and second.kernel is not None
    assert first.kernel is not None


def test_compile_on_without_a_compiler_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "tp.toml"
    spec.write_text('example = "TwoPhase"\nname = "tp"\nrms = 3\n')
    monkeypatch.setenv("CC", "/nonexistent/cc")
    done = CliRunner().invoke(main, ["check", str(spec), "--compile", "on"])
    assert done.exit_code == 2, done.output
    assert done.output.strip() == f"error: {spec}: --compile on: no C compiler (set CC, or install cc)"
