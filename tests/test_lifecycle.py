"""run_forever, run_until_complete, stop, close, is_running, is_closed."""

import asyncio
import gc
import os
import subprocess
import sys
import threading
import warnings

import pytest

import cxxloop


def test_run_until_complete_coroutine(loop):
    async def coro():
        await asyncio.sleep(0.001)
        return "done"

    assert loop.run_until_complete(coro()) == "done"
    assert not loop.is_running()


def test_run_until_complete_future_and_exception(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_exception, KeyError("k"))
    with pytest.raises(KeyError):
        loop.run_until_complete(fut)


def test_run_until_complete_rejects_non_awaitables(loop):
    with pytest.raises(TypeError, match="awaitable is required"):
        loop.run_until_complete(42)


def test_run_until_complete_stopped_early(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed."):
        loop.run_until_complete(fut)


def test_run_until_complete_future_of_other_loop(loop):
    other = asyncio.SelectorEventLoop()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError, match="loop"):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_is_running_inside_and_outside(loop):
    seen = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [True]
    assert not loop.is_running()


def test_get_running_loop_is_set(loop):
    async def probe():
        return asyncio.get_running_loop()

    assert loop.run_until_complete(probe()) is loop
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_stop_finishes_the_current_batch_only(any_loop):
    # asyncio: callbacks already queued when stop() is called still run in
    # this iteration; ones they schedule wait for the next run_forever().
    order = []
    any_loop.call_soon(order.append, 1)
    any_loop.call_soon(any_loop.stop)
    any_loop.call_soon(order.append, 2)
    any_loop.call_soon(lambda: any_loop.call_soon(order.append, 3))
    any_loop.run_forever()
    assert order == [1, 2]
    any_loop.call_soon(any_loop.stop)
    any_loop.run_forever()
    assert order == [1, 2, 3]


def test_stop_before_run_forever_runs_one_iteration(any_loop):
    order = []
    any_loop.call_soon(order.append, "a")
    any_loop.stop()
    any_loop.run_forever()
    assert order == ["a"]


def test_run_forever_twice_and_nested(loop):
    def nested():
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_forever()
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_until_complete(coro)
        coro.close()
        loop.stop()

    loop.call_soon(nested)
    loop.run_forever()


def test_cannot_run_while_another_loop_runs(loop):
    other = cxxloop.new_event_loop()
    errors = []

    def inner():
        try:
            other.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(inner)
    loop.run_forever()
    other.close()
    assert errors == ["Cannot run the event loop while another loop is running"]


def test_closed_loop_rejects_everything():
    loop = cxxloop.new_event_loop()
    loop.close()
    loop.close()  # idempotent
    assert loop.is_closed()
    for call in (
        lambda: loop.call_soon(print),
        lambda: loop.call_later(1, print),
        lambda: loop.call_at(1, print),
        lambda: loop.call_soon_threadsafe(print),
        lambda: loop.run_forever(),
        lambda: loop.add_reader(0, print),
        lambda: loop.run_in_executor(None, print),
    ):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    for call in (loop.run_until_complete, loop.create_task):
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call(coro)
        coro.close()
    # Like asyncio: removing from a closed loop is not an error.
    assert loop.remove_reader(0) is False


def test_close_while_running_is_refused(loop):
    def try_close():
        with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
            loop.close()
        loop.stop()

    loop.call_soon(try_close)
    loop.run_forever()


def test_close_drops_pending_callbacks_and_releases_them():
    loop = cxxloop.new_event_loop()

    class Token:
        pass

    token = Token()
    import weakref

    ref = weakref.ref(token)
    loop.call_soon(print, token)
    loop.call_later(100, print, token)
    del token
    loop.close()
    gc.collect()
    assert ref() is None


def test_close_releases_file_descriptors():
    before = len(os.listdir("/proc/self/fd"))
    loops = [cxxloop.new_event_loop() for _ in range(20)]
    assert len(os.listdir("/proc/self/fd")) > before
    for lp in loops:
        lp.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_unclosed_loop_warns_resource_warning():
    loop = cxxloop.new_event_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del loop
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed event loop" in str(w.message) for w in caught)


def test_a_loop_left_open_at_interpreter_exit_closes_quietly():
    # Its __del__ then runs while modules are being torn down: close() must
    # not need a module global that is already gone.
    script = ("import asyncio, cxxloop\n"
              "loop = cxxloop.new_event_loop()\n"
              "asyncio.set_event_loop(loop)\n"
              "loop.run_until_complete(asyncio.sleep(0))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "Exception ignored" not in proc.stderr, proc.stderr


def test_run_in_thread(loop):
    results = []

    def worker():
        lp = cxxloop.new_event_loop()
        try:
            results.append(lp.run_until_complete(asyncio.sleep(0.001, "thread")))
        finally:
            lp.close()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert results == ["thread"]


def test_keyboard_interrupt_from_callback_leaves_loop_usable(loop):
    ran = []

    def boom():
        raise KeyboardInterrupt

    loop.call_soon(boom)
    loop.call_soon(ran.append, "later")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    # The remaining callback is still queued and runs next time.
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == ["later"]


def test_system_exit_from_task_propagates(loop):
    async def main():
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        loop.run_until_complete(main())


def test_run_once_and_queue_snapshots(loop):
    # BaseEventLoop's _run_once/_ready/_scheduled, as asyncio's tests and
    # step-by-step drivers use them; the snapshots are read-only.
    out = []
    h = loop.call_soon(out.append, 1)
    t = loop.call_later(100, out.append, 2)
    assert loop._ready == (h,)
    assert loop._scheduled == [t]
    loop._run_once()
    assert out == [1] and loop._ready == ()
    with pytest.raises(AttributeError):
        loop._ready = []
    t.cancel()
