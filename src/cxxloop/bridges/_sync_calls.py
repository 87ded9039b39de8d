"""Running one sync call for an event loop: in which context, on which pool,
and how the thread remembers the loop it is serving."""

from __future__ import annotations

import contextvars
import os
import threading
from asyncio import AbstractEventLoop
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._thread_sensitive import PRIVATE_VARS

# Thread-insensitive calls get their own bounded pool: the loop's default
# executor is the application's, and a burst of bridged calls must neither
# starve it nor grow without limit.
_POOL_SIZE = min(32, (os.cpu_count() or 1) + 4)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_thread = threading.local()


def bounded_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=_POOL_SIZE, thread_name_prefix="cxxloop-sync_to_async"
            )
        return _pool


def serving_loop() -> AbstractEventLoop | None:
    """The loop whose sync_to_async call this thread is running, if any:
    async_to_sync from here sends its coroutine back to that loop."""
    return getattr(_thread, "loop", None)


def call_for_loop(
    loop: AbstractEventLoop,
    context: contextvars.Context,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run ``func`` in ``context`` on this thread, on behalf of ``loop``."""
    outer = getattr(_thread, "loop", None)
    _thread.loop = loop
    try:
        return context.run(func, *args, **kwargs)
    finally:
        _thread.loop = outer


def copy_back(context: contextvars.Context) -> None:
    """Make the variables ``context`` changed visible in the current context,
    so a bridged call's contextvar changes outlive it as a direct call's do."""
    for var, value in context.items():
        if var in PRIVATE_VARS:
            continue
        if var.get(_MISSING) is not value:
            var.set(value)


_MISSING = object()


def _after_fork_in_child() -> None:
    global _pool, _pool_lock, _thread
    _pool = None
    _pool_lock = threading.Lock()
    _thread = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)
