"""cxxloop: a drop-in asyncio event loop with its core written in C++20.

    import cxxloop
    cxxloop.run(main())

or ``asyncio.Runner(loop_factory=cxxloop.new_event_loop)``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from . import _policy, _watch
from ._loop import Loop
from ._policy import install
from ._stats import Histogram, LoopStats
from ._watch import SlowCallback, Watch, log_slow_callback, watch
from .bridges import ThreadSensitiveContext, async_to_sync, sync_to_async

__all__ = [
    "Histogram",
    "Loop",
    "LoopStats",
    "SlowCallback",
    "ThreadSensitiveContext",
    "Watch",
    "async_to_sync",
    "install",
    "log_slow_callback",
    "new_event_loop",
    "run",
    "sync_to_async",
    "watch",
]
__version__ = "0.1.0"

if hasattr(_policy, "EventLoopPolicy"):  # asyncio before 3.16
    EventLoopPolicy = _policy.EventLoopPolicy
    __all__ += ["EventLoopPolicy"]

_T = TypeVar("_T")


def new_event_loop(*, stats: bool = True, timing: bool = False, watch: float | None = None,
                   on_slow: Callable[[SlowCallback], object] | None = None) -> Loop:
    """Return a new cxxloop event loop.

    stats and timing are loop.set_stats()'s: counters on (the default;
    they cost under 1%), and each callback's duration measured (off: it
    reads the clock per callback). watch=SECONDS watches the loop for
    callbacks slower than that, reporting each to on_slow, as
    cxxloop.watch(loop, SECONDS, on_slow) does. See docs/observability.md.
    """
    loop = Loop()
    try:
        loop.set_stats(stats, timing=timing)
        if watch is not None:
            _watch.watch(loop, watch, on_slow)
    except BaseException:
        loop.close()
        raise
    return loop


def run(main: Awaitable[_T], *, debug: bool | None = None) -> _T:
    """Run a coroutine, or any awaitable, on a new cxxloop loop, like asyncio.run().

    Any awaitable is accepted on every supported Python, as asyncio.run()
    accepts from 3.14 on.
    """
    if not asyncio.iscoroutine(main) and inspect.isawaitable(main):
        main = _awaited(main)
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)


async def _awaited(awaitable: Awaitable[_T]) -> _T:
    return await awaitable
