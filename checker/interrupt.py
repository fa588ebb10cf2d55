"""Ctrl-C as a request that long-running loops poll between chunks of work.

A search that is cut in the middle of storing a chunk would leave its visited set half
updated; a search that stops between chunks can report exact partial statistics and every
violation found so far.  So a front end that handles SIGINT calls :meth:`Interrupt.request`
and raises ``KeyboardInterrupt`` only when no loop is polling (:attr:`Interrupt.polled`);
inside :meth:`Interrupt.polling` the loop sees :attr:`Interrupt.requested` at its next
chunk and stops by itself.  Without such a front end (the default SIGINT handler) the
loops still catch ``KeyboardInterrupt``; polling only makes the stop cleaner.

Hooks (:meth:`Interrupt.on_request`) let a library blocked in C code be woken, e.g. z3's
``Context.interrupt``; they run on whichever thread made the request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Interrupt:
    def __init__(self) -> None:
        self._requested = threading.Event()
        self._polling = 0
        self._hooks: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def polled(self) -> bool:
        """Some loop is polling :attr:`requested` now (and will stop by itself)."""
        return self._polling > 0

    def request(self) -> None:
        self._requested.set()
        for hook in list(self._hooks):
            hook()

    def clear(self) -> None:
        self._requested.clear()

    def on_request(self, hook: Callable[[], None]) -> None:
        if hook not in self._hooks:
            self._hooks.append(hook)

    @contextmanager
    def polling(self) -> Iterator[Interrupt]:
        self._polling += 1
        try:
            yield self
        finally:
            self._polling -= 1

    @contextmanager
    def raising(self) -> Iterator[Interrupt]:
        """Inside a polled region, a stretch that cannot poll (long calls into compiled code)
        and may be cut anywhere: a request made before it raises ``KeyboardInterrupt`` at
        once, one made during it raises as without polling.  The caller catches it."""
        saved, self._polling = self._polling, 0
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield self
        finally:
            self._polling = saved


#: The process's one Ctrl-C request (a signal is process-wide too).
INTERRUPT = Interrupt()
