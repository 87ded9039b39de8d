"""The Loop class: the C++ core plus asyncio's per-loop logic.

Everything that runs per callback (scheduling, timers, the run loop, fd
watches) is CoreLoop's, in C++. What runs once per loop or per connection
comes from asyncio.BaseEventLoop itself, so that executors, the exception
handler, async generator shutdown and debug logging behave exactly as
asyncio's; the few pieces BaseEventLoop leaves abstract or that differ
between Python versions are written here.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
import weakref
from asyncio import coroutines
from typing import Any

from . import _core
from ._serving import Serving
from ._signals import SignalHandlers
from ._sockets import SocketMethods


class Loop(_core.CoreLoop, SignalHandlers, SocketMethods, Serving, asyncio.BaseEventLoop):
    """A cxxloop event loop. Create one with cxxloop.new_event_loop()."""

    def __init__(self) -> None:
        # BaseEventLoop.__init__ is deliberately not called: the scheduling
        # state it would create (_ready, _scheduled, _closed, ...) lives in
        # CoreLoop. These are the attributes its Python methods use.
        self._default_executor = None
        self._exception_handler = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._executor_shutdown_called = False
        SignalHandlers.__init__(self)
        Serving.__init__(self)
        self.set_debug(coroutines._is_debug_mode())

    def close(self) -> None:
        if not self.is_running():
            self._close_signal_handlers()
        _core.CoreLoop.close(self)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the default executor's threads, at most `timeout` seconds.

        Python 3.11's BaseEventLoop has no timeout; this is the same
        behaviour on every supported version.
        """
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()
        joiner = threading.Thread(target=self._join_executor, args=(executor, done))
        joiner.start()
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(
                "The executor did not finish joining its threads "
                f"within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            joiner.join()

    def _join_executor(self, executor: Any, done: asyncio.Future[None]) -> None:
        # Runs in its own thread so the loop keeps running while it waits.
        try:
            executor.shutdown(wait=True)
        except Exception as exc:
            outcome = (done.set_exception, exc)
        else:
            outcome = (done.set_result, None)
        if not self.is_closed():
            self.call_soon_threadsafe(_settle, done, *outcome)


def _settle(fut: asyncio.Future[Any], setter: Any, value: Any) -> None:
    if not fut.done():
        setter(value)
