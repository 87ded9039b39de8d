"""cxxloop: a drop-in asyncio event loop with its core written in C++20.

    import cxxloop
    cxxloop.run(main())

or ``asyncio.Runner(loop_factory=cxxloop.new_event_loop)``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

from . import _policy
from ._loop import Loop
from ._policy import install
from .bridges import ThreadSensitiveContext, async_to_sync, sync_to_async

__all__ = [
    "Loop",
    "ThreadSensitiveContext",
    "async_to_sync",
    "install",
    "new_event_loop",
    "run",
    "sync_to_async",
]
__version__ = "0.1.0"

if hasattr(_policy, "EventLoopPolicy"):  # asyncio before 3.16
    EventLoopPolicy = _policy.EventLoopPolicy
    __all__ += ["EventLoopPolicy"]

_T = TypeVar("_T")


def new_event_loop() -> Loop:
    """Return a new cxxloop event loop."""
    return Loop()


def run(main: Awaitable[_T], *, debug: bool | None = None) -> _T:
    """Run a coroutine, or any awaitable, on a new cxxloop loop, like asyncio.run().

    Any awaitable is accepted on every supported Python, as asyncio.run()
    accepts from 3.14 on.
    """
    if not asyncio.iscoroutine(main) and inspect.isawaitable(main):
        main = _awaited(main)
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


async def _awaited(awaitable: Awaitable[_T]) -> _T:
    return await awaitable
