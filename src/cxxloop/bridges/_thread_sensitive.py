"""Where thread-sensitive sync code runs.

Code that must stay on one thread (a database connection, a library with
thread-local state) is sent, by ``sync_to_async(thread_sensitive=True)``,
to the executor this module picks:

1. inside ``async_to_sync``: the thread blocked in that call, so that
   sync -> async -> sync comes back to the thread it started on;
2. inside ``async with ThreadSensitiveContext()``: that context's own thread;
3. otherwise one process-wide thread shared by all such code.

The choice lives in a context variable, so tasks started inside inherit it.
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType

# The executor, tagged with the fork generation it was bound in: a forked
# child has only the thread that forked, so executors from before the fork
# have no threads behind them and must not be used there.
_bound: contextvars.ContextVar[tuple[int, Executor]] = contextvars.ContextVar(
    "cxxloop.bridges.thread_sensitive_executor"
)
_generation = 0
_shared: ThreadPoolExecutor | None = None
_shared_lock = threading.Lock()

PRIVATE_VARS = frozenset({_bound})


def bind(executor: Executor) -> contextvars.Token[tuple[int, Executor]]:
    """Send thread-sensitive code in the current context to ``executor``."""
    return _bound.set((_generation, executor))


def current_executor() -> Executor:
    tagged = _bound.get(None)
    if tagged is not None and tagged[0] == _generation:
        return tagged[1]
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="cxxloop-thread-sensitive"
            )
        return _shared


class ThreadSensitiveContext:
    """``async with ThreadSensitiveContext():`` gives the thread-sensitive
    ``sync_to_async`` calls made inside (and in tasks started inside) one
    thread of their own instead of the process-wide one: one thread per
    request, say, so requests do not queue behind each other."""

    _executor: ThreadPoolExecutor
    _token: contextvars.Token[tuple[int, Executor]]

    async def __aenter__(self) -> ThreadSensitiveContext:
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cxxloop-thread-sensitive"
        )
        self._token = bind(self._executor)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _bound.reset(self._token)
        # Calls still running finish on the thread; waiting here would
        # block the event loop.
        self._executor.shutdown(wait=False)


def _after_fork_in_child() -> None:
    global _generation, _shared, _shared_lock
    _generation += 1
    _shared = None
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
