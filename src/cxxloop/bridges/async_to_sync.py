"""``async_to_sync``: call a coroutine function from sync code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from . import _sync_calls, _thread_sensitive
from ._waiting_thread import WaitingThreadExecutor

_P = ParamSpec("_P")
_R = TypeVar("_R")
_LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@overload
def async_to_sync(
    func: Callable[_P, Awaitable[_R]], /, *, loop_factory: _LoopFactory | None = ...
) -> Callable[_P, _R]: ...
@overload
def async_to_sync(
    func: None = ..., /, *, loop_factory: _LoopFactory | None = ...
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, _R]]: ...


def async_to_sync(func=None, /, *, loop_factory=None):
    """Wrap the coroutine function ``func`` into a sync function that runs it
    to completion and returns its result, as a wrapper or a decorator.

    Called from a thread that ``sync_to_async`` is running for a loop, the
    coroutine runs on that loop (no second loop, no deadlock). Called from
    any other thread without a running loop, it runs on a new loop from
    ``loop_factory`` (default ``cxxloop.new_event_loop``) in a thread of its
    own, closed afterwards. Either way the calling thread runs the
    coroutine's thread-sensitive sync calls while it waits. Calling it from a
    thread with a running loop is an error: the loop would block on itself.
    """
    if func is None:
        return functools.partial(async_to_sync, loop_factory=loop_factory)
    if not callable(func):
        what = "a coroutine object" if asyncio.iscoroutine(func) else type(func).__name__
        raise TypeError(
            f"async_to_sync() expects a coroutine function, not {what}; "
            "pass the function, not the result of calling it"
        )
    if loop_factory is not None and not callable(loop_factory):
        raise TypeError(
            f"async_to_sync(): loop_factory must be callable, not {type(loop_factory).__name__}"
        )

    @functools.wraps(func)
    def run_to_completion(*args: Any, **kwargs: Any) -> Any:
        _refuse_running_loop(func)
        context = contextvars.copy_context()
        coro = _as_coroutine(func, context.run(func, *args, **kwargs))
        waiting = WaitingThreadExecutor()
        context.run(_thread_sensitive.bind, waiting)
        loop = _sync_calls.serving_loop()
        if loop is not None and loop.is_running():
            outcome = _run_on(loop, coro, context, waiting)
        else:
            outcome = _run_on_new_loop(loop_factory, coro, context, waiting)
        _sync_calls.copy_back(context)
        return outcome.result()

    return run_to_completion


def _refuse_running_loop(func: Callable[..., Any]) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    name = _name(func)
    raise RuntimeError(
        f"async_to_sync({name}) called from a thread running an event loop "
        f"({type(loop).__name__}): it would block that loop waiting for itself; "
        f"await {name}(...) directly instead"
    )


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def _as_coroutine(func: Callable[..., Any], awaitable: object) -> Coroutine[Any, Any, Any]:
    if asyncio.iscoroutine(awaitable):
        return awaitable
    if not isinstance(awaitable, Awaitable):
        raise TypeError(
            f"async_to_sync(): {_name(func)}() returned "
            f"{type(awaitable).__name__}, not an awaitable"
        )
    return _await(awaitable)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _run_on(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context,
    waiting: WaitingThreadExecutor,
) -> concurrent.futures.Future[Any]:
    """Run ``coro`` on the running ``loop`` from another thread, serving its
    thread-sensitive calls here until it is done."""
    outcome, cancel = _start(loop, coro, context)
    waiting.run_until(outcome, cancel)
    return outcome


def _start(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context,
) -> tuple[concurrent.futures.Future[Any], Callable[[], None]]:
    """Schedule ``coro`` as a task on ``loop`` (from any thread); return its
    outcome and a thread-safe way to cancel it."""
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
    task: list[asyncio.Task[Any]] = []

    def create() -> None:
        if not outcome.set_running_or_notify_cancel():
            coro.close()
            return
        task.append(loop.create_task(coro, context=context))
        task[0].add_done_callback(functools.partial(_settle, outcome))

    def cancel() -> None:
        # Queued after create(), so the task exists by the time this runs.
        if not outcome.cancel():
            loop.call_soon_threadsafe(lambda: task[0].cancel())

    loop.call_soon_threadsafe(create)
    return outcome, cancel


def _settle(outcome: concurrent.futures.Future[Any], task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        outcome.set_exception(asyncio.CancelledError())
    elif (exc := task.exception()) is not None:
        outcome.set_exception(exc)
    else:
        outcome.set_result(task.result())


def _run_on_new_loop(
    loop_factory: _LoopFactory | None,
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context,
    waiting: WaitingThreadExecutor,
) -> concurrent.futures.Future[Any]:
    """Run ``coro`` on a new loop in a new thread, closed as asyncio.run()
    closes its loop. This thread serves thread-sensitive calls until the
    loop thread has finished, its shutdown (cancelled tasks, async
    generators, default executor) included."""
    if loop_factory is None:
        from .. import new_event_loop as loop_factory
    started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]
    started = concurrent.futures.Future()
    finished: concurrent.futures.Future[None] = concurrent.futures.Future()

    def loop_thread() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                loop = runner.get_loop()
                stop = loop.create_future()
                started.set_result((loop, stop))
                runner.run(_until(stop))
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            finished.set_exception(exc)
        else:
            finished.set_result(None)

    thread = threading.Thread(target=loop_thread, name="cxxloop-async_to_sync", daemon=True)
    thread.start()
    try:
        loop, stop = started.result()
    except BaseException:
        coro.close()
        thread.join()
        raise
    outcome, cancel = _start(loop, coro, context)
    outcome.add_done_callback(lambda _: loop.call_soon_threadsafe(_resolve, stop))
    waiting.run_until(finished, cancel)
    thread.join()
    if outcome.exception() is None:
        finished.result()  # a failure closing the loop, if that was all
    return outcome


async def _until(stop: asyncio.Future[None]) -> None:
    await stop


def _resolve(stop: asyncio.Future[None]) -> None:
    if not stop.done():
        stop.set_result(None)
