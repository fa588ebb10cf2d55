"""Progress of a search on stderr: a live status line on a terminal, plain lines otherwise.

The explorer calls back between chunks (at least every 2 s while it searches, and when it
enters the liveness phase); what is shown: states, states per second, depth, the states
waiting to be expanded (the queue) and the phase.
"""

from __future__ import annotations

import time
from typing import IO, TypeVar

from rich.console import Console
from rich.status import Status

from checker.result import Stats

_S = TypeVar("_S", bound="_LiveStatus")


def describe(name: str, stats: Stats) -> str:
    rate = stats.distinct / stats.seconds if stats.seconds else 0.0
    if stats.phase != "search":
        return (f"{name}: {stats.phase}, on {stats.distinct:,} states "
                f"(search took {stats.seconds:.1f} s)")
    return (f"{name}: {stats.distinct:,} states, {rate:,.0f} states/s, depth {stats.depth}, "
            f"queue {stats.frontier:,}, {stats.generated:,} generated, {stats.seconds:.1f} s")


class _LiveStatus:
    """A spinner line on a terminal (``live``), for the length of a ``with`` block."""

    name: str
    console: Console
    live: bool
    _status: Status | None = None

    def __enter__(self: _S) -> _S:
        if self.live:
            self._status = self.console.status(f"{self.name}: starting", spinner="dots")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


#: A search shorter than this prints no plain progress line (not even entering liveness).
QUIET_SECONDS = 1.0


class SearchProgress(_LiveStatus):
    """A progress callback for one spec:
    ``with SearchProgress(name) as show: explore(..., progress=show)``."""

    def __init__(self, name: str, stream: IO[str] | None = None, *, live: bool | None = None) -> None:
        self.name = name
        self.console = Console(file=stream, stderr=stream is None, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live
        self._status: Status | None = None

    def __call__(self, stats: Stats) -> None:
        text = describe(self.name, stats)
        if self._status is not None:
            self._status.update(text)
        elif stats.seconds >= QUIET_SECONDS:  # a log gets no lines from a spec this fast
            self.console.print(f"Progress({text})", markup=False)


class StepProgress(_LiveStatus):
    """Progress of a command that works through named steps (``fsm check``: feature sets):
    a live status line on a terminal; elsewhere a plain line at most every ``every``
    seconds, the first after ``every`` seconds (a fast run prints nothing)."""

    def __init__(self, name: str, *, every: float = 2.0, live: bool | None = None) -> None:
        self.name = name
        self.every = every
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live
        self._status: Status | None = None
        self._last = time.monotonic()

    def __call__(self, done: int, total: int, what: str) -> None:
        text = f"{self.name}: {what} ({done}/{total})"
        if self._status is not None:
            self._status.update(text)
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.console.print(f"Progress({text})", markup=False)
