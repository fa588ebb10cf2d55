"""What a timed run of the concrete executor reports (:meth:`Executor.run
<model.concrete.executor.Executor.run>`): per round, in total, and as it goes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RoundStats:
    """One pre-copy round: the interval that ends with a dirty sync (round 0 = setup)."""

    round: int
    time_s: float  # simulated time of the sync
    pages_sent: int  # since the previous sync
    pages_written: int  # write events (vCPU + DMA) since the previous sync
    pages_dirtied: int  # bits this sync added to the migration bitmap
    pages_remaining: int  # migration bitmap population after the sync
    pending_bytes: int  # RAM left + device stop-copy data (QEMU's exact pending)
    expected_downtime_s: float  # RAM left / bandwidth, as QEMU's expected-downtime


@dataclass(frozen=True)
class MigrationResult:
    method: str
    guest_pages: int
    rounds: tuple[RoundStats, ...]
    converged: bool  # pending fitted the threshold within max_rounds
    forced_switchover: bool  # switched over after max_rounds anyway, to check pages
    total_time_s: float
    downtime_s: float
    pages_sent: int
    pages_sent_in_downtime: int
    bytes_sent: int  # RAM pages + device state
    lost_pages: int
    lost_examples: tuple[int, ...]
    mutations: tuple[str, ...]

    @property
    def all_arrived(self) -> bool:
        return self.lost_pages == 0

    @property
    def precopy_rounds(self) -> int:
        return len(self.rounds) - 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rounds"] = [asdict(r) for r in self.rounds]
        d["lost_examples"] = list(self.lost_examples)
        d["mutations"] = list(self.mutations)
        d["all_arrived"] = self.all_arrived
        d["precopy_rounds"] = self.precopy_rounds
        return d


@dataclass(frozen=True)
class RunStatus:
    """What a progress display shows while :meth:`Executor.run` runs."""

    round: int
    max_rounds: int
    time_s: float
    pages_remaining: int
    pages_sent: int
    phase: str  # "pre-copy" | "switchover" | "done"
