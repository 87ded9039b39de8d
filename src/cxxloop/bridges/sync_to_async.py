"""``sync_to_async``: await a blocking function from async code."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar, overload

from . import _sync_calls, _thread_sensitive

_P = ParamSpec("_P")
_R = TypeVar("_R")


@overload
def sync_to_async(
    func: Callable[_P, _R], /, *, thread_sensitive: bool = ..., executor: Executor | None = ...
) -> Callable[_P, Awaitable[_R]]: ...
@overload
def sync_to_async(
    func: None = ..., /, *, thread_sensitive: bool = ..., executor: Executor | None = ...
) -> Callable[[Callable[_P, _R]], Callable[_P, Awaitable[_R]]]: ...


def sync_to_async(func=None, /, *, thread_sensitive=True, executor=None):
    """Wrap the sync callable ``func`` into a coroutine function that runs it
    in a thread, as a wrapper (``sync_to_async(f)``) or a decorator (with or
    without arguments).

    ``thread_sensitive=True`` runs every call on one thread (see
    ``_thread_sensitive``); ``False`` uses a bounded pool of cxxloop's own,
    or ``executor``. Context variables go in and their changes come back. The
    loop is the running one at call time. If the awaiting task is cancelled
    while ``func`` runs, the task waits for ``func`` to return, then raises
    CancelledError: the thread cannot be stopped, and returning early would
    let code after the await run concurrently with it.
    """
    if executor is not None:
        if thread_sensitive:
            raise TypeError(
                "sync_to_async(): executor= needs thread_sensitive=False; "
                "thread-sensitive calls run on their own thread"
            )
        if not isinstance(executor, Executor):
            raise TypeError(
                f"sync_to_async(): executor must be a concurrent.futures.Executor, "
                f"not {type(executor).__name__}"
            )
    if func is None:
        return functools.partial(
            sync_to_async, thread_sensitive=thread_sensitive, executor=executor
        )
    _require_sync_callable(func)

    @functools.wraps(func)
    async def call_in_thread(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if thread_sensitive:
            runner = _thread_sensitive.current_executor()
        else:
            runner = executor or _sync_calls.bounded_pool()
        return await _await_call(loop, runner, func, args, kwargs)

    return call_in_thread


def _require_sync_callable(func: object) -> None:
    if not callable(func):
        raise TypeError(f"sync_to_async() expects a callable, not {type(func).__name__}")
    target = func if inspect.isroutine(func) else type(func).__call__
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        raise TypeError(
            f"sync_to_async() expects a sync function; {func!r} is async, await it directly"
        )


async def _await_call(
    loop: asyncio.AbstractEventLoop,
    runner: Executor,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    context = contextvars.copy_context()
    returned = loop.create_future()
    call = runner.submit(_sync_calls.call_for_loop, loop, context, func, args, kwargs)
    call.add_done_callback(functools.partial(_wake, loop, returned))
    cancellation: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(returned)
            break
        except asyncio.CancelledError as exc:
            if call.cancel():
                raise  # it never started: nothing to wait for
            cancellation = exc
    _sync_calls.copy_back(context)
    if cancellation is not None:
        raise cancellation
    return call.result()


def _wake(loop: asyncio.AbstractEventLoop, returned: asyncio.Future[None], _: Future[Any]) -> None:
    try:
        loop.call_soon_threadsafe(_set_done, returned)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more


def _set_done(returned: asyncio.Future[None]) -> None:
    if not returned.done():
        returned.set_result(None)
