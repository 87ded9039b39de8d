"""What a workload's run returns, and the clock that takes it."""

from __future__ import annotations

import time
from typing import NamedTuple


class Measured(NamedTuple):
    ops: int
    # Wall time of the timed section.
    seconds: float
    # This process's CPU time (user and system, every thread) over the same
    # section: what the operations cost, whatever else the machine ran.
    cpu_seconds: float


class Stopwatch:
    """Wall and process CPU time from when it is made."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def elapsed(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds) so far."""
        return time.perf_counter() - self._wall, time.process_time() - self._cpu

    def measured(self, ops: int) -> Measured:
        return Measured(ops, *self.elapsed())
