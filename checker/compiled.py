"""The compiled search: a spec's actions built as a shared library and called per chunk.

:func:`build` prints the spec's guards and effects as C (checker/cgen.py), compiles them
with the machine's C compiler (``$CC``, else ``cc``) and loads the library with ctypes; a
:class:`Kernel` then computes, for a chunk of frontier rows, every action's enabled rows
and successors in one pass of C per action, where the numpy search makes one pass of
numpy per operator.  The explorer takes everything after that (type errors, action
invariants, the constraint, symmetry, deduplication) from its numpy path unchanged, so
counts, verdicts and traces are the same whichever evaluates the actions; a test checks
this on every shipped spec.

Libraries are cached by the hash of their source (and compiler flags) under
``$VFIO_MIGCHECK_CACHE`` (default ``$XDG_CACHE_HOME/vfio-migcheck``, else
``~/.cache/vfio-migcheck``), as Spin builds its ``pan.c`` once per model: a second run of
the same spec only traces it and loads the library.  No compiler, a failed compile or a
term the printer does not know give no kernel and a reason; the explorer then keeps numpy.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from checker.lang.spec import Predicate, Spec
from checker.parallel import Workers

FLAGS = ("-shared", "-fPIC", "-std=c99", "-fno-strict-aliasing")


def flags() -> tuple[str, ...]:
    """The compiler's flags: ``$VFIO_MIGCHECK_CC_OPT`` sets the optimisation (default -O2;
    the tests use -O0, a fifth of the compile time, on specs too small to tell)."""
    return (os.environ.get("VFIO_MIGCHECK_CC_OPT", "-O2"), *FLAGS)


_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_INT = ctypes.c_int


def cache_dir() -> Path:
    env = os.environ.get("VFIO_MIGCHECK_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vfio-migcheck"


def compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


class Uncompiled(RuntimeError):
    """Compiled actions were asked for (``compile="on"``) and cannot be had; the reason."""


@dataclass
class Built:
    """What :func:`build` did: the kernel (None when it could not) and why not."""

    kernel: Kernel | None
    reason: str = ""
    seconds: float = 0.0  # tracing and (when not cached) compiling
    cached: bool = False


def build(spec: Spec) -> Built:
    """The compiled kernel of ``spec``'s actions, or the reason there is none."""
    from checker.cgen import NotCompilable, spec_unit

    t0 = time.perf_counter()
    cc = compiler()
    if cc is None:
        return Built(None, "no C compiler (set CC, or install cc)")
    # The kernel knows a predicate by the function itself, not by its name: an invariant
    # and a witness may share one.
    predicates = [*spec.invariants.items(), *spec.witnesses.items()]
    try:
        unit = spec_unit(spec, predicates)
    except NotCompilable as exc:
        return Built(None, f"not compilable: {exc}", time.perf_counter() - t0)
    digest = hashlib.sha256("\0".join((unit.source, cc, *flags())).encode()).hexdigest()[:24]
    lib = cache_dir() / f"kernel-{digest}.so"
    cached = lib.exists()
    if not cached:
        why = _compile(cc, unit.source, lib)
        if why:
            return Built(None, why, time.perf_counter() - t0)
    try:
        kernel = Kernel(ctypes.CDLL(str(lib)), unit.actions, spec.layout.words,
                        [predicates[i][1] for i in unit.predicates])
    except OSError as exc:
        return Built(None, f"cannot load {lib}: {exc}", time.perf_counter() - t0)
    return Built(kernel, "", time.perf_counter() - t0, cached)


def _compile(cc: str, source: str, lib: Path) -> str:
    """Compile ``source`` to ``lib`` (atomically: a parallel run sees all or nothing)."""
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
            src = Path(tmp) / "kernel.c"
            src.write_text(source)
            part = Path(tmp) / "kernel.so"
            done = subprocess.run([cc, *flags(), "-o", str(part), str(src)], capture_output=True, text=True)
            if done.returncode != 0:
                return f"{cc} failed: {done.stderr.strip()[:300]}"
            os.replace(part, lib)
    except OSError as exc:
        return f"cannot build in {lib.parent}: {exc}"
    return ""


@dataclass
class Successors:
    """What the actions did on one chunk of ``n`` rows: ``enabled[k, i]`` (uint8), the
    successors of action ``k`` at ``rows[offsets[k]:offsets[k+1]]`` with the row each
    came from in ``parents``, and ``overflow[k]``: some value did not fit its field."""

    enabled: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray
    parents: np.ndarray
    overflow: np.ndarray


class Kernel:
    """A loaded library of one spec's actions (see :func:`checker.cgen.spec_unit`)."""

    def __init__(self, lib: ctypes.CDLL, actions: int, words: int, predicates: Sequence[Predicate]) -> None:
        if lib.actions() != actions or lib.words() != words:  # a stale or foreign library
            raise OSError("the library does not match the spec")
        self._lib = lib
        self.actions = actions
        self.words = words
        lib.guards.argtypes = [_P, _I64, _P, _I64, _I64]
        lib.guards.restype = None
        lib.effects.argtypes = [_P, _I64, _P, _INT, _INT, _P, _P, _P, _P]
        lib.effects.restype = None
        self._predicates: dict[Predicate, Any] = {}  # a spec's predicate -> its C function
        for j, pred in enumerate(predicates):
            fn = getattr(lib, f"predicate_{j}")
            fn.argtypes = [_P, _I64, _P]
            fn.restype = None
            self._predicates[pred] = fn

    def guards(self, rows: np.ndarray, en: np.ndarray, i0: int, i1: int) -> None:
        """``en[k, i]`` (uint8, actions x rows) of every action for rows ``i0..i1-1``."""
        self._lib.guards(rows.ctypes.data, len(rows), en.ctypes.data, i0, i1)

    def effects(
        self, rows: np.ndarray, en: np.ndarray, k0: int, k1: int, off: np.ndarray,
        out: np.ndarray, par: np.ndarray, ovf: np.ndarray,
    ) -> None:
        """Successors of actions ``k0..k1-1`` into ``out[off[k]:]`` (rows), ``par`` (row
        numbers); ``ovf[k]``: some value did not fit its field."""
        self._lib.effects(rows.ctypes.data, len(rows), en.ctypes.data, k0, k1, off.ctypes.data,
                          out.ctypes.data, par.ctypes.data, ovf.ctypes.data)

    def successors(self, rows: np.ndarray, workers: Workers) -> Successors:
        """Every action on ``rows``: the guards (each half of the rows on a worker), then
        the successors (each half of them on a worker), in action order, then row order."""
        n, n_actions = len(rows), self.actions
        en = np.empty((n_actions, n), dtype=np.uint8)
        halves = [(0, n // 2), (n // 2, n)] if workers.count > 1 else [(0, n)]
        for _ in workers.in_order(lambda j: self.guards(rows, en, *halves[j]), len(halves), n):
            pass
        off = np.zeros(n_actions + 1, dtype=np.int64)
        np.cumsum(np.count_nonzero(en, axis=1), out=off[1:])
        total = int(off[-1])
        out = np.empty((total, self.words), dtype=np.uint64)
        par = np.empty(total, dtype=np.int64)
        ovf = np.zeros(n_actions, dtype=np.uint8)
        split = [(0, n_actions)]
        if workers.count > 1 and n_actions > 1:
            mid = min(int(np.searchsorted(off[1:], total // 2)) + 1, n_actions)
            split = [(0, mid), (mid, n_actions)]
        def effects(j: int) -> None:
            self.effects(rows, en, *split[j], off, out, par, ovf)

        for _ in workers.in_order(effects, len(split), n):
            pass
        return Successors(en, off, out, par, ovf)

    def has(self, predicate: Predicate) -> bool:
        return predicate in self._predicates

    def holds(self, predicate: Predicate, rows: np.ndarray) -> np.ndarray:
        """The compiled ``predicate`` on each of ``rows`` (C-contiguous uint64), as bools."""
        ok = np.empty(len(rows), dtype=np.uint8)
        self._predicates[predicate](rows.ctypes.data, len(rows), ok.ctypes.data)
        return ok.view(bool)
