"""What loop.stats() and cxxloop.watch() cost: call_soon, gather and
echo_protocol_1k again on cxxloop, set up three more ways.

The workloads of those names run with the stats on, as a new loop has them;
`_stats_off` turns them off, `_watched` adds cxxloop.watch(loop, 0.1) (a
threshold nothing in them reaches: what watching costs when nothing is slow),
and `_timed` measures each callback's duration (set_stats(True, timing=True)).
Timings are noisy on a small shared machine; `--instructions` counts what
each costs with callgrind (docs/observability.md has the numbers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from . import Run, Workload, micro, net
from .timing import Measured

_BASES = ("call_soon", "gather", "echo_protocol_1k")


def _watch(loop: asyncio.AbstractEventLoop) -> None:
    import cxxloop

    cxxloop.watch(loop, 0.1)


_SETUPS: dict[str, tuple[str, Callable[[asyncio.AbstractEventLoop], object]]] = {
    "stats_off": ("stats off", lambda loop: loop.set_stats(False)),  # type: ignore[attr-defined]
    "watched": ("watched with a 0.1 s threshold", _watch),
    "timed": ("each callback timed", lambda loop: loop.set_stats(True, timing=True)),  # type: ignore[attr-defined]
}


def _set_up(run: Run, setup: Callable[[asyncio.AbstractEventLoop], object]) -> Run:
    def set_up_and_run(loop: asyncio.AbstractEventLoop, size: int) -> Measured:
        setup(loop)  # before the workload starts its clock
        return run(loop, size)

    return set_up_and_run


def _variants() -> list[Workload]:
    bases = {w.name: w for w in (*micro.WORKLOADS, *net.WORKLOADS)}
    return [
        replace(bases[base], name=f"{base}_{suffix}", description=f"{bases[base].description}; {what}",
                run=_set_up(bases[base].run, setup), ceiling=None, loops=("cxxloop",), variant_of=base)
        for base in _BASES
        for suffix, (what, setup) in _SETUPS.items()
    ]


WORKLOADS = _variants()
