"""The explorer on small synthetic specs: multi-word states, constraints, symmetry,
limits, liveness cycles and the reachable graph."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.explore import Limits, explore
from checker.lang.layout import Layout, LayoutError, Next, View, apply
from checker.lang.spec import Action, Eventually, LeadsTo, Spec
from checker.result import Limit, Outcome
from cli.limits import stopped_by


def grid(n: int, wide: bool = False, bad_sum: int | None = None) -> Spec:
    """Two counters 0..n; with ``wide`` each is 40 bits so a state takes two words."""
    layout = Layout()
    layout.var("x", 40 if wide else 8)
    layout.var("y", 40 if wide else 8)

    def inc(name):
        def effect(s: View, t: Next) -> None:
            t[name] = s[name] + 1

        return effect

    invariants = {}
    if bad_sum is not None:
        invariants["SumBelow"] = lambda s: s.x + s.y < bad_sum
    return Spec(
        name="grid",
        layout=layout,
        init=[{"x": 0, "y": 0}],
        actions=[
            Action("IncX", lambda s: s.x < n, inc("x")),
            Action("IncY", lambda s: s.y < n, inc("y")),
        ],
        invariants=invariants,
        end_states=lambda s: (s.x == n) & (s.y == n),
    )


@pytest.mark.parametrize("wide", [False, True])
def test_grid_counts_single_and_multi_word(wide):
    spec = grid(6, wide)
    assert spec.layout.words == (2 if wide else 1)
    r = explore(spec)
    assert r.outcome == "pass"
    assert (r.stats.distinct, r.stats.depth) == (49, 13)
    assert r.stats.generated == 1 + 2 * 6 * 7  # every state but the last row/column has 2 successors


@pytest.mark.parametrize("wide", [False, True])
def test_invariant_trace_is_shortest(wide):
    r = explore(grid(6, wide, bad_sum=5))
    v = r.violation
    assert v is not None and v.name == "SumBelow" and v.length == 6
    last = v.trace[-1].state(r.layout)
    assert last["x"] + last["y"] == 5
    for b in v.trace[1:]:  # each step is a real transition
        assert b.action in ("IncX", "IncY")


def test_constraint_bounds_the_search():
    spec = grid(6)
    spec.constraint = lambda s: s.x <= 2
    spec.end_states = lambda s: s.y == 6
    r = explore(spec)
    assert r.outcome == "pass" and r.stats.distinct == 3 * 7


def test_deadlock_unless_declared_end_state():
    spec = grid(2)
    spec.end_states = None
    r = explore(spec)
    assert r.violation is not None and r.violation.kind == "deadlock" and r.violation.length == 5


def test_symmetry_reduction_with_canonical_form():
    n = 3
    layout = Layout()
    layout.var("c", values=("a", "b", "c"), count=n)

    def canonical(rows: np.ndarray) -> np.ndarray:
        v = View(layout, rows)
        cols = np.sort(np.stack([v.c[i] for i in range(n)], axis=1), axis=1)
        return apply(layout, rows, {f"c[{i}]": cols[:, i] for i in range(n)}, "canonical")

    actions = [
        Action("Step", lambda s, i=i: s.c[i] < 2, lambda s, t, i=i: t.c.__setitem__(i, s.c[i] + 1), {"p": i})
        for i in range(n)
    ]
    base = dict(name="procs", layout=layout, init=[{"c": [0] * n}], actions=actions, check_deadlock=False)
    assert explore(Spec(**base)).stats.distinct == 27
    assert explore(Spec(**base, canonical=canonical)).stats.distinct == 10  # multisets of size 3 over 3


def test_action_invariant_names_the_transition():
    spec = grid(3)
    spec.action_invariants = {"XNeverJumps": lambda s, t, a: t.x - s.x <= 0}
    r = explore(spec)
    v = r.violation
    assert v is not None and v.kind == "action-invariant" and v.length == 2
    assert v.trace[-1].action == "IncX"


def test_witness_must_be_reached():
    spec = grid(3)
    spec.witnesses = {"ReachesCorner": lambda s: (s.x == 3) & (s.y == 3), "Impossible": lambda s: s.x > 5}
    r = explore(spec)
    assert r.violation is not None and r.violation.kind == "witness" and r.violation.name == "Impossible"
    assert r.witnesses["ReachesCorner"] == 7


def toggler(fair: tuple[str, ...]) -> Spec:
    layout = Layout()
    layout.var("x", 1)
    layout.var("done", 1)
    return Spec(
        name="toggler",
        layout=layout,
        init=[{"x": 0, "done": 0}],
        actions=[
            Action("Toggle", lambda s: s.done == 0, lambda s, t: setattr(t, "x", 1 - s.x)),
            Action("Finish", lambda s: s.done == 0, lambda s, t: setattr(t, "done", 1)),
        ],
        liveness={"Finishes": Eventually(lambda s: s.done == 1, fair=fair)},
        end_states=lambda s: s.done == 1,
    )


def test_liveness_holds_with_fair_finish():
    r = explore(toggler(("Finish",)))
    assert r.outcome == "pass" and r.properties["Finishes"] == "ok"


def test_liveness_fair_cycle_counterexample():
    r = explore(toggler(("Toggle",)))
    v = r.violation
    assert v is not None and v.kind == "liveness" and not v.stutter
    assert v.loop_start == 0
    assert [s.action for s in v.trace] == [None, "Toggle", "Toggle"]
    assert v.trace[-1].state(r.layout) == v.trace[0].state(r.layout)


def test_liveness_without_fairness_stutters_at_once():
    r = explore(toggler(()))
    v = r.violation
    assert v is not None and v.stutter and v.length == 1


def test_leads_to():
    spec = grid(3)
    spec.liveness = {"XGrows": LeadsTo(lambda s: s.x == 1, lambda s: s.x == 2, fair=("IncX",))}
    assert explore(spec).outcome == "pass"
    spec.liveness = {"XGrows": LeadsTo(lambda s: s.x == 1, lambda s: s.x == 2, fair=("IncY",))}
    v = explore(spec).violation
    assert v is not None and v.name == "XGrows" and v.stutter
    assert v.trace[-1].state(spec.layout) == {"x": 1, "y": 3}


def test_limits_stop_with_partial_statistics():
    from checker.examples.transaction_commit import two_phase

    r = explore(two_phase(5), limits=Limits(states=1000))
    assert r.outcome == Outcome.LIMIT and r.stats.distinct >= 1000
    assert (r.limit, r.limit_bound) == (Limit.STATES, 1000)
    r = explore(two_phase(6), limits=Limits(seconds=1e-6))
    assert (r.outcome, r.limit, r.limit_bound) == (Outcome.LIMIT, Limit.SECONDS, 1e-6)
    # the explorer reports data; the command line words it with its own option names
    assert stopped_by(r) == "--max-seconds 1e-06"
    assert stopped_by(explore(two_phase(2))) is None


def test_graph_is_kept_with_action_labels():
    r = explore(grid(2), keep_graph=True)
    g = r.graph()
    assert g.number_of_nodes() == 9 and g.number_of_edges() == 12
    labels = {d["action"] for _, _, d in g.edges(data=True)}
    assert labels == {"IncX", "IncY"}


def test_out_of_range_assignment_is_a_type_violation_with_a_trace():
    """A value that does not fit its field cannot be stored: it is the spec's type
    invariant violated, with the value shown in the last step, not an exception."""
    layout = Layout()
    layout.var("x", 2)
    spec = Spec(
        name="bad",
        layout=layout,
        init=[{"x": 0}],
        actions=[Action("Inc", lambda s: True, lambda s, t: setattr(t, "x", s.x + 1))],
        check_deadlock=False,
    )
    r = explore(spec)
    v = r.violation
    assert r.outcome == Outcome.VIOLATION and v is not None and v.name == "TypeOK"
    assert v.message == "invariant TypeOK is violated: Inc assigns 4 to x, which holds 0..3"
    assert [s.action for s in v.trace] == [None, "Inc", "Inc", "Inc", "Inc"]
    assert v.trace[-1].state(layout) == {"x": 4} and v.trace[-1].overflow == {"x": 4}
    assert r.stats.distinct == 4 and r.properties["TypeOK"] == "violated"
    # the library's apply() still refuses such a value outright
    with pytest.raises(LayoutError, match="Inc assigns 4 to x, which holds 0..3"):
        apply(layout, layout.pack([{"x": 3}]), {"x": 4}, "Inc")


@settings(max_examples=50, deadline=None)
@given(
    widths=st.lists(st.integers(1, 63), min_size=1, max_size=6),
    data=st.data(),
)
def test_pack_unpack_roundtrip(widths, data):
    layout = Layout()
    for i, w in enumerate(widths):
        layout.var(f"f{i}", w)
    values = [
        {f"f{i}": data.draw(st.integers(0, (1 << w) - 1)) for i, w in enumerate(widths)} for _ in range(3)
    ]
    rows = layout.pack(values)
    assert rows.shape == (3, layout.words)
    for r, v in enumerate(values):
        assert layout.raw(rows[r]) == v
    # an effect touching one field leaves the others alone
    new = apply(layout, rows, {"f0": 0}, "test")
    for r, v in enumerate(values):
        assert layout.raw(new[r]) == {**v, "f0": 0}


def test_fairness_per_action_instance():
    # Two independent counters; fairness on the family IncX+IncY as one group lets a
    # behaviour increment only y forever-ish; per-instance groups force both.
    layout = Layout()
    layout.var("x", 1)
    layout.var("y", 2)
    actions = [
        Action("Inc", lambda s: s.x == 0, lambda s, t: setattr(t, "x", 1), {"c": "x"}),
        Action("Inc", lambda s: True, lambda s, t: setattr(t, "y", (s.y + 1) & 3), {"c": "y"}),
    ]
    goal = lambda s: s.x == 1  # noqa: E731
    spec = Spec(name="two", layout=layout, init=[{"x": 0, "y": 0}], actions=actions, check_deadlock=False)
    spec.liveness = {"XSet": Eventually(goal, fair=("Inc",))}
    v = explore(spec).violation
    assert v is not None and not v.stutter  # y cycles forever; the family is taken, so fair
    spec.liveness = {"XSet": Eventually(goal, fair=("Inc(c=x)", "Inc(c=y)"))}
    assert explore(spec).outcome == "pass"
    spec.liveness = {"XSet": Eventually(goal, fair=("Nope",))}
    with pytest.raises(ValueError, match="fairness names 'Nope'"):
        explore(spec)


def test_the_command_line_words_each_limit_with_its_option():
    import checker.explore as ex
    from checker.examples.transaction_commit import two_phase
    from checker.report.results import stats_table

    rss = iter(range(100, 10**6, 10))  # the process grows 10 MB between looks
    original = ex.current_rss_mb
    ex.current_rss_mb = lambda: float(next(rss))
    try:
        r = explore(two_phase(3), limits=Limits(memory_mb=1))
    finally:
        ex.current_rss_mb = original
    assert (r.outcome, r.limit, r.limit_bound, r.stats.depth) == (Outcome.LIMIT, Limit.MEMORY, 1, 1)
    assert stopped_by(r) == "memory above 1 MB"
    r = explore(two_phase(3), limits=Limits(states=10))
    assert stopped_by(r) == "--max-states 10"
    # a report page shows the front end's words, or the bare kind without them
    assert ["stopped by", "--max-states 10"] in stats_table(r, stopped_by(r)).rows
    assert ["stopped by", "states"] in stats_table(r).rows
    # and so does the verdict's reason
    from pathlib import Path

    from cli.load import load_target

    t = load_target(Path(__file__).resolve().parent.parent / "specs/engine/twophase-3.toml")
    r = explore(t.spec, limits=Limits(states=10))
    assert t.judge(r).reason == "stopped by --max-states 10 before a verdict"


def test_ctrl_c_stops_with_partial_statistics():
    from checker.examples.transaction_commit import two_phase

    def interrupt(stats):
        raise KeyboardInterrupt

    r = explore(two_phase(3), progress=interrupt, progress_every=0.0)
    assert (r.outcome, r.limit, r.limit_bound) == (Outcome.INTERRUPTED, Limit.INTERRUPTED, None)
    # the first progress call comes after the first chunk of the first level
    assert r.stats.depth == 1 and r.stats.distinct > 1 and stopped_by(r) == "interrupted (Ctrl-C)"
    assert set(r.properties.values()) == {"unchecked"}


# The resident set in MB, read without importing checker (whose import sets the allocator).
_RSS = """
import resource
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
"""

_FREED = _RSS + """
import sys
import numpy as np
if sys.argv[1] == "keep":
    from checker.limits import keep_freed_memory
    assert keep_freed_memory()
a = np.ones(24 << 20, dtype=np.uint8)  # 24 MB, under glibc's largest mmap threshold
before = rss_mb()
del a
print(before - rss_mb())
"""

# An array larger than the heap's free top (512 MB of padding after keep_freed_memory) and
# than any mmap threshold: MB of it that glibc mapped on its own (and would unmap when it
# is freed), as mallinfo2 counts them.  Never written, so it costs no memory.
_MAPPED = """
import ctypes, sys
import numpy as np
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "keep":
    import checker  # noqa: F401  (its import makes the allocator settings)
a = np.empty(640 << 20, dtype=np.uint8)
print(libc.mallinfo2().hblkhd / 2**20)
"""

_ARENAS = _RSS + """
import sys, threading
import numpy as np
if sys.argv[1] == "keep":
    import checker  # noqa: F401  (its import makes the allocator settings)
freed, done = threading.Event(), threading.Event()
def first():  # frees 24 MB, then stays alive (its arena, if it has one, stays its own)
    a = np.ones(24 << 20, dtype=np.uint8)
    del a
    freed.set()
    done.wait()
def second():
    a = np.ones(24 << 20, dtype=np.uint8)
    del a
ta = threading.Thread(target=first)
ta.start()
freed.wait()
before = rss_mb()
tb = threading.Thread(target=second)
tb.start()
tb.join()
print(rss_mb() - before)
done.set()
ta.join()
"""


def _mb(script: str, mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator settings")
def test_freed_arrays_stay_in_the_process_for_the_next_chunk() -> None:
    """By default glibc unmaps a freed 24 MB array at once (the next one is faulted and
    zeroed afresh); after keep_freed_memory, which importing checker calls, it stays."""
    assert _mb(_FREED, "default") > 20
    assert _mb(_FREED, "keep") < 4


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator settings")
def test_even_the_largest_arrays_come_from_the_heap() -> None:
    """By default glibc maps a 640 MB array on its own and unmaps it when freed; after
    keep_freed_memory it comes from the heap, so an outgrown hash table's or store's
    memory is reused by later chunks instead of being faulted in afresh."""
    assert _mb(_MAPPED, "default") >= 640
    assert _mb(_MAPPED, "keep") < 16  # what numpy's import mapped before the settings


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator settings")
def test_threads_reuse_what_another_thread_freed() -> None:
    """By default a second thread's 24 MB come from an arena of its own, freshly faulted,
    though another thread has just freed as much; once checker is imported every thread
    shares one arena and the second reuses the first's memory."""
    assert _mb(_ARENAS, "default") > 16
    assert _mb(_ARENAS, "keep") < 4
