"""The executor that runs on the thread blocked in ``async_to_sync``.

While a sync thread waits for its coroutine, the coroutine's thread-sensitive
``sync_to_async`` calls are handed back to that thread, which runs them
between waits. Without this, sync code that calls async code that calls sync
code would either change threads or, with a one-thread executor, deadlock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WaitingThreadExecutor(Executor):
    def __init__(self) -> None:
        # None wakes the waiting thread to look at what it waits for.
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._open = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if not self._open:
                raise RuntimeError(
                    "thread-sensitive sync_to_async() call after the async_to_sync() "
                    "call whose thread runs it has returned (a task outlived it?)"
                )
            self._queue.put((future, fn, args, kwargs))
        return future

    def run_until(self, finished: Future[Any], cancel: Callable[[], None]) -> None:
        """Run submitted calls until ``finished`` is done.

        A first KeyboardInterrupt (or other exception raised while blocked)
        asks the coroutine to cancel, keeps serving it until it has unwound,
        then is re-raised; a second one is raised at once.
        """
        finished.add_done_callback(lambda _: self._queue.put(None))
        interrupted: BaseException | None = None
        try:
            while not finished.done():
                try:
                    item = self._queue.get()
                except BaseException as exc:
                    if interrupted is not None:
                        raise
                    interrupted = exc
                    cancel()
                    continue
                if item is not None:
                    _run(item)
        finally:
            self._close()
        if interrupted is not None:
            raise interrupted

    def _close(self) -> None:
        with self._lock:
            self._open = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[0].set_running_or_notify_cancel():
                item[0].set_exception(
                    RuntimeError("the async_to_sync() call that would run this has returned")
                )


def _run(item: _Item) -> None:
    future, fn, args, kwargs = item
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)
