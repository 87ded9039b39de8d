"""cxxloop: a drop-in asyncio event loop with its core written in C++20.

    import cxxloop
    cxxloop.run(main())

or ``asyncio.Runner(loop_factory=cxxloop.new_event_loop)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._loop import Loop
from ._policy import EventLoopPolicy, install
from .bridges import ThreadSensitiveContext, async_to_sync, sync_to_async

__all__ = [
    "EventLoopPolicy",
    "Loop",
    "ThreadSensitiveContext",
    "async_to_sync",
    "install",
    "new_event_loop",
    "run",
    "sync_to_async",
]
__version__ = "0.1.0"

_T = TypeVar("_T")


def new_event_loop() -> Loop:
    """Return a new cxxloop event loop."""
    return Loop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run a coroutine on a new cxxloop loop, like asyncio.run()."""
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
