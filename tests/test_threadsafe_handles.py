"""The handles call_soon_threadsafe returns.

From 3.14 asyncio returns an events._ThreadSafeHandle, whose cancel() and
cancelled() wait, from another thread, for a callback that is already
running. cxxloop's handle behaves so on every version; on 3.14 and later
the same scenario also runs on asyncio's loop and must agree.
"""

import asyncio
import sys
import threading
import time

import pytest

from parity import LOOPS

ON_BOTH = pytest.mark.parametrize(
    "factory",
    [pytest.param(LOOPS["cxxloop"], id="cxxloop")]
    + ([pytest.param(LOOPS["asyncio"], id="asyncio")] if sys.version_info >= (3, 14) else []),
)


def _run_with_thread(loop, target):
    """Runs the loop until `target`, in a thread, stops it; re-raises what
    the thread raised."""
    failure = []

    def guarded():
        try:
            target()
        except BaseException as exc:  # reported below, in the test's thread
            failure.append(exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=guarded)
    thread.start()
    loop.run_forever()
    thread.join()
    if failure:
        raise failure[0]


@ON_BOTH
def test_is_an_asyncio_handle_of_the_threadsafe_kind(factory):
    loop = factory()
    try:
        handle = loop.call_soon_threadsafe(print)
        assert isinstance(handle, asyncio.Handle)
        if sys.version_info >= (3, 14):
            from asyncio import events

            assert isinstance(handle, events._ThreadSafeHandle)
        assert repr(handle).startswith(f"<{type(handle).__name__} print()")
        handle.cancel()
    finally:
        loop.close()


@ON_BOTH
@pytest.mark.parametrize("ask", ["cancel", "cancelled"])
def test_from_another_thread_waits_for_a_running_callback(factory, ask):
    loop = factory()
    started, finished = threading.Event(), threading.Event()
    ran = []

    def callback():
        started.set()
        ran.append(1)
        time.sleep(0.3)  # releases the GIL: the other thread runs meanwhile
        finished.set()

    def other_thread():
        handle = loop.call_soon_threadsafe(callback)
        started.wait()
        answer = getattr(handle, ask)()
        assert finished.is_set(), f"{ask}() returned while the callback still ran"
        if ask == "cancelled":
            assert answer is False

    try:
        _run_with_thread(loop, other_thread)
    finally:
        loop.close()
    assert ran == [1]


@ON_BOTH
def test_the_callback_cancelling_itself_does_not_wait(factory):
    loop = factory()
    box = {}
    done = threading.Event()

    def callback():
        box["handle"].cancel()  # the loop's own thread: must not deadlock
        box["cancelled"] = box["handle"].cancelled()
        done.set()

    def other_thread():
        box["handle"] = handle = loop.call_soon_threadsafe(lambda: None)
        handle.cancel()
        box["handle"] = loop.call_soon_threadsafe(callback)
        assert done.wait(5)

    try:
        _run_with_thread(loop, other_thread)
    finally:
        loop.close()
    assert box["cancelled"] is True


@ON_BOTH
def test_cancelled_before_it_runs_does_not_run(factory):
    loop = factory()
    gate = threading.Event()
    ran = []

    def other_thread():
        handle = loop.call_soon_threadsafe(ran.append, 1)
        handle.cancel()
        assert handle.cancelled()
        gate.set()

    loop.call_soon(gate.wait, 5)  # the loop is busy until the thread cancelled
    try:
        _run_with_thread(loop, other_thread)
    finally:
        loop.close()
    assert ran == []


@ON_BOTH
def test_run_of_a_cancelled_handle(factory):
    # Handle._run() after cancel(): a threadsafe handle does nothing, from
    # 3.14 as asyncio's does (before, asyncio's is a plain Handle).
    loop = factory()
    reports = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))
    try:
        handle = loop.call_soon_threadsafe(print)
        handle.cancel()
        assert handle._run() is None
    finally:
        loop.close()
    assert reports == []


@pytest.mark.parametrize("factory", [pytest.param(f, id=n) for n, f in LOOPS.items()])
def test_threads_flooding_call_soon_threadsafe_do_not_starve_a_due_timer(factory):
    # Six threads call call_soon_threadsafe as fast as they can until a
    # timer fires; the loop must get to the timer while they still run.
    loop = factory()
    stop = threading.Event()

    def flood():
        noop = lambda: None  # noqa: E731
        while not stop.is_set():
            loop.call_soon_threadsafe(noop)

    async def main():
        threads = [threading.Thread(target=flood) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            await asyncio.sleep(0.05)  # the timer is due while the flood runs
            return "fired"
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    try:
        assert loop.run_until_complete(asyncio.wait_for(main(), 60)) == "fired"
    finally:
        loop.close()
