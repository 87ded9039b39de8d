"""loop.stats(): what the C++ core counts, as a LoopStats.

The core keeps plain integers and two histograms in the loop's own struct
(csrc/py/loop_stats.hpp); a snapshot copies them out in one step, so the
figures of one LoopStats are consistent with each other. docs/observability.md
says what each one means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from . import _core


@dataclass(frozen=True)
class Histogram:
    """Durations in fixed log2 buckets of microseconds.

    ``counts[k]`` counts the values at most ``bounds[k]`` seconds and above
    ``bounds[k - 1]``; the last count, one more than there are bounds,
    those above the last bound (67 s). ``sum`` is their total in seconds.
    """

    counts: tuple[int, ...]
    sum: float
    # Upper bounds of the buckets, in seconds: 1 us, 2 us, 4 us, ... 67 s.
    bounds: ClassVar[tuple[float, ...]] = _core.HISTOGRAM_BOUNDS

    @property
    def count(self) -> int:
        """How many values were added."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, how many values are at most that), as Prometheus
        buckets are; the last bound is infinity."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (0 <= q <= 1):
        at most twice the true value. None with no values; infinity if it
        is in the last bucket."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be between 0 and 1")
        total = self.count
        if not total:
            return None
        rank = max(1, math.ceil(q * total))
        for bound, seen in self.cumulative():
            if seen >= rank:
                return bound
        raise AssertionError("unreachable: the last cumulative count is the total")


@dataclass(frozen=True)
class LoopStats:
    """A snapshot of a cxxloop loop's counters (loop.stats()).

    Counters count from the loop's creation or the last reset
    (``loop.stats(reset=True)``) while stats are enabled.
    """

    enabled: bool  # counters kept (loop.set_stats)
    timing: bool  # callback durations measured (loop.set_stats(True, timing=True))
    iterations: int  # loop iterations: polls, each followed by a batch of callbacks
    callbacks: int  # handles, task steps and transports' I/O callbacks run
    timers_scheduled: int  # call_later / call_at
    timers_fired: int  # timers found due and queued to run
    timers_cancelled: int  # timers cancelled before they were due
    io_events: int  # readiness events the poller reported for file descriptors
    bytes_read: int  # by the loop's transports (stream, pipe, datagram)
    bytes_written: int
    slow_callbacks: int  # found slower than a watch's threshold (cxxloop.watch)
    ready: int  # callbacks waiting in the ready queue now
    transports: Mapping[str, int]  # open transports by kind, now
    lag: Histogram  # how late due timers were found due
    callback_duration: Histogram  # how long callbacks ran, while timing

    @classmethod
    def from_snapshot(cls, raw: dict[str, Any]) -> LoopStats:
        """Built from what CoreLoop._stats_snapshot returns."""
        fields = dict(raw)
        fields["transports"] = MappingProxyType(fields["transports"])
        for name in ("lag", "callback_duration"):
            counts, total = fields[name]
            fields[name] = Histogram(counts, total)
        return cls(**fields)

