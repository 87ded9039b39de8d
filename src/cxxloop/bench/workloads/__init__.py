"""The workload registry.

A workload is one thing to measure on every loop. It runs inside a fresh
child process (see ``cxxloop.bench._child``) that has already created the
loop, and returns how many operations it did, how long they took and how
much of the process's CPU time they used (a ``Measured``). That contract is
loose on purpose: a micro workload times ``run_forever`` on its
own loop, while an echo or HTTP workload starts a server on the loop, drives
it with an external load generator and reports what that measured.

Adding workloads: write a module in this package that defines ``WORKLOADS``,
a list of ``Workload``, and add its name to ``_MODULES``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .timing import Measured

# Modules holding workloads, in the order their workloads are run and shown.
# observability's are variants of the others': it comes last.
_MODULES = ("micro", "transports", "net", "tls", "observability")

# A workload's run(loop, size).
Run = Callable[[asyncio.AbstractEventLoop, int], Measured]


@dataclass(frozen=True)
class Workload:
    name: str
    # What one operation is, as shown after "/s" in the table: "callbacks".
    unit: str
    # Sized so the slowest loop takes well under a second per run on the
    # reference 2-core machine; quick_size keeps a smoke run to seconds.
    size: int
    quick_size: int
    description: str
    # run(loop, size) -> Measured. Must time only the part that runs on the
    # loop, never set-up or tear-down (a timing.Stopwatch reads both clocks).
    run: Run
    # Whether it runs on the loop's transports (sockets, TLS, datagrams,
    # pipes), the part a transport library such as aiofastnet replaces.
    transports: bool = False
    # Returns why the workload cannot run here (a missing tool), or None.
    unavailable: Callable[[], str | None] = lambda: None
    # The same work done without any event loop (a plain C server), as a
    # reference point: ceiling(size) -> Measured, the CPU time being the C
    # server's. Measured once per round, shown as its own column.
    ceiling: Callable[[int], Measured] | None = None
    # The only loops it runs on; None for all.
    loops: tuple[str, ...] | None = None
    # The workload this one is a variant of (the same work, the loop set up
    # otherwise): --instructions shows the difference from it.
    variant_of: str | None = None


def all_workloads() -> dict[str, Workload]:
    found: dict[str, Workload] = {}
    for module_name in _MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        for workload in module.WORKLOADS:
            if workload.name in found:
                raise RuntimeError(f"duplicate workload name {workload.name!r}")
            found[workload.name] = workload
    return found
