"""What dirties guest memory during a concrete migration run: page sets and write rates.

A :class:`PageSet` is a union of disjoint page ranges (a CPU hot set, a device's DMA
buffers, the pages a driver pins).  Writes are drawn uniformly, with replacement, from a
set at a given rate in bytes per second: a page drawn twice in one interval is dirtied
once, as a real dirty log would record it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from model.concrete.bitmap import Bitmap
from model.contract import PAGE_SIZE


@dataclass(frozen=True)
class PageSet:
    """A set of pages as sorted, disjoint, non-empty half-open ranges ``(start, stop)``."""

    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, ranges: Iterable[tuple[int, int]]) -> PageSet:
        """Normalise any ranges (sorted, overlapping or touching ones joined, empty dropped)."""
        merged: list[list[int]] = []
        for a, b in sorted((int(a), int(b)) for a, b in ranges if int(b) > int(a)):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return cls(tuple((a, b) for a, b in merged))

    @classmethod
    def span(cls, start: int, stop: int) -> PageSet:
        return cls.of([(start, stop)])

    @classmethod
    def pages(cls, pages: Iterable[int]) -> PageSet:
        return cls.of((p, p + 1) for p in pages)

    @property
    def size(self) -> int:
        return sum(b - a for a, b in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __contains__(self, page: int) -> bool:
        return any(a <= page < b for a, b in self.ranges)

    def max_page(self) -> int:
        return self.ranges[-1][1] - 1 if self.ranges else -1

    def union(self, other: PageSet) -> PageSet:
        return PageSet.of(self.ranges + other.ranges)

    def prefix(self, n: int) -> PageSet:
        """The first ``n`` pages of the set, in page order."""
        out: list[tuple[int, int]] = []
        left = n
        for a, b in self.ranges:
            if left <= 0:
                break
            take = min(left, b - a)
            out.append((a, a + take))
            left -= take
        return PageSet(tuple(out))

    def to_bitmap(self, nbits: int) -> Bitmap:
        return Bitmap.from_ranges(nbits, self.ranges)

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` pages drawn uniformly with replacement (int64, unsorted)."""
        if k <= 0 or not self.ranges:
            return np.empty(0, dtype=np.int64)
        u = rng.integers(0, self.size, size=k, dtype=np.int64)
        if len(self.ranges) == 1:
            return u + self.ranges[0][0]
        lengths = np.array([b - a for a, b in self.ranges], dtype=np.int64)
        ends = np.cumsum(lengths)
        which = np.searchsorted(ends, u, side="right")
        starts = np.array([a for a, _ in self.ranges], dtype=np.int64)
        return u - (ends[which] - lengths[which]) + starts[which]


@dataclass(frozen=True)
class DeviceLoad:
    """One assigned device as the executor sees it.

    ``pages``: the guest pages its DMA writes land in (no vIOMMU: IOVA = guest address).
    ``dma_logging``: the device supports and uses ``VFIO_DEVICE_FEATURE_DMA_LOGGING_*``.
    ``iommu_dirty``: its iommufd hardware page table tracks dirty bits
    (``IOMMU_HWPT_ALLOC_DIRTY_TRACKING``); a device attached to a non-dirty-capable hwpt in
    the same container is not reported (docs/sources.md#qemu-tracking-decision, "mixed containers").
    ``pins``: pages its driver pins with ``vfio_pin_pages()`` (type1 pinned scope).
    ``kernel_access``: the device reaches guest memory through the kernel
    (``vfio_dma_rw()``, emulated-IOMMU/mdev style), so type1 sees its writes.
    ``stop_copy_bytes``: its device state at stop-copy (``VFIO_DEVICE_FEATURE_MIG_DATA_SIZE``).
    ``precopy_dirty_tracking``: QEMU property ``x-pre-copy-dirty-page-tracking`` (default
    on); off, the container skips log_sync while this device runs.
    """

    name: str
    dma_rate: float = 0.0  # bytes per second
    pages: PageSet = field(default_factory=PageSet)
    dma_logging: bool = True
    iommu_dirty: bool = True
    pins: PageSet = field(default_factory=PageSet)
    kernel_access: bool = False
    stop_copy_bytes: int = 0
    precopy_dirty_tracking: bool = True


@dataclass(frozen=True)
class Workload:
    """vCPU writes (rate over a hot set) and per-device DMA writes."""

    cpu_dirty_rate: float = 0.0  # bytes per second
    hot_set: PageSet = field(default_factory=PageSet)
    devices: Sequence[DeviceLoad] = ()


def writes_in(rate: float, seconds: float, carry: float) -> tuple[int, float]:
    """Whole page writes for ``rate`` bytes/s over ``seconds``; the fractional remainder is
    carried to the next interval so low rates and short steps still write."""
    exact = rate * seconds / PAGE_SIZE + carry
    n = int(exact)
    return n, exact - n
