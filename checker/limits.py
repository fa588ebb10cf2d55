"""Bounds on one exploration and the memory figures they are measured with."""

from __future__ import annotations

import resource
from dataclasses import dataclass

from checker.result import Limit


@dataclass(frozen=True)
class Limits:
    """Bounds on one exploration (None: unbounded), looked at between chunks; the first
    one reached stops the search with :attr:`Outcome.LIMIT`.  ``memory_mb`` bounds how much
    the process's resident set (now, not its peak) has grown since this exploration
    started, so each spec of a run gets the same allowance."""

    states: int | None = None
    seconds: float | None = None
    memory_mb: float | None = None

    def reached(
        self, distinct: int, seconds: float, growth_mb: float = 0.0
    ) -> tuple[Limit, int | float] | None:
        if self.states is not None and distinct >= self.states:
            return Limit.STATES, self.states
        if self.seconds is not None and seconds > self.seconds:
            return Limit.SECONDS, self.seconds
        if self.memory_mb is not None and growth_mb > self.memory_mb:
            return Limit.MEMORY, self.memory_mb
        return None


NO_LIMITS = Limits()


def peak_rss_mb() -> float:
    """The process's peak resident set, in MB (for the phase figures)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """The process's resident set now (not its peak), in MB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return peak_rss_mb()


def keep_freed_memory() -> bool:
    """Have the C allocator keep the arrays a chunk frees for the next chunk, instead of
    handing them back to the kernel and having the next chunk's pages faulted and zeroed
    afresh, and every thread share one arena (``checker/_native.c`` says how; process-wide,
    idempotent; importing :mod:`checker` does it).  The resident set
    then no longer shrinks when a chunk's arrays are freed, which ``--max-memory`` sees:
    the memory is the process's all the same.  False where the allocator is not glibc's."""
    from checker import _native  # type: ignore[attr-defined]

    return bool(_native.keep_freed_memory())
