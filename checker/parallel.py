"""Both cores for one BFS level, with the result of one core.

A level's actions are independent: each reads the same frontier and produces its own
successors.  :class:`Workers` evaluates them on a pool of threads (numpy and the compiled
kernels release the GIL for the work that matters: whole-column operations, hashing) and
hands the results back *in action order*, so the explorer concatenates, counts and
deduplicates exactly what a sequential pass would have: the same candidates in the same
order, hence the same state numbering, the same first parent of every state and the same
shortest counterexamples (TLC gives up this order with several workers; here it is kept).
A violation found by a later action is only reported once every earlier action has been
seen to have none, as in a sequential pass.

Small levels run in the calling thread: below ``min_rows`` states the hand-off costs more
than it saves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

MIN_ROWS = 1 << 14


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def power_of_two_at_most(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


class Workers:
    """A pool of ``count`` threads (none when ``count`` is 1)."""

    def __init__(self, count: int, min_rows: int = MIN_ROWS) -> None:
        if count < 1:
            raise ValueError(f"workers must be at least 1, got {count}")
        self.count = count
        self.min_rows = min_rows
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="explore") if count > 1 else None

    def in_order(self, job: Callable[[int], T], items: int, rows: int) -> Iterator[T]:
        """``job(0) .. job(items - 1)``, yielded in that order; run on the pool when the
        level has at least ``min_rows`` rows.  Jobs not yet started when the consumer
        stops early are cancelled."""
        if self._pool is None or rows < self.min_rows or items < 2:
            for i in range(items):
                yield job(i)
            return
        futures: list[Future[T]] = [self._pool.submit(job, i) for i in range(items)]
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
