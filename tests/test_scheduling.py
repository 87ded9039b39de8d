"""call_soon, call_soon_threadsafe, call_later, call_at, time: order and input checks."""

import asyncio
import contextvars
import sys
import threading
import time

import pytest

import cxxloop
from parity import run_briefly

var = contextvars.ContextVar("var", default="unset")


def test_call_soon_fifo_with_args(loop):
    out = []
    for i in range(100):
        loop.call_soon(out.append, i)
    loop.call_soon(lambda *a: out.append(a), 1, "two", None)
    run_briefly(loop)
    assert out == list(range(100)) + [(1, "two", None)]


def test_callable_objects_get_their_arguments(loop):
    class Recorder:
        def __init__(self):
            self.calls = []

        def __call__(self, *args):
            self.calls.append(args)

    recorder = Recorder()
    assert not type(recorder).__flags__ & (1 << 11)  # no vectorcall: called with the tuple
    loop.call_soon(recorder)
    loop.call_soon(recorder, 1, "two")
    loop.call_later(0, recorder, 3)
    run_briefly(loop, 0.001)
    assert recorder.calls == [(), (1, "two"), (3,)]


def test_time_is_monotonic_clock(loop):
    before = time.monotonic()
    now = loop.time()
    after = time.monotonic()
    assert before <= now <= after


def test_call_later_order_and_never_early(loop):
    fired = []
    start = loop.time()
    for delay in (0.03, 0.01, 0.02, 0.01):
        loop.call_later(delay, lambda d=delay: fired.append((d, loop.time() - start)))
    run_briefly(loop, 0.05)
    assert [d for d, _ in fired] == [0.01, 0.01, 0.02, 0.03]
    for delay, elapsed in fired:
        assert elapsed >= delay


def test_sleep_never_ends_early(loop):
    async def measure(delay):
        t0 = time.monotonic()
        await asyncio.sleep(delay)
        return time.monotonic() - t0

    for delay in (0.0005, 0.001, 0.0123, 0.02):
        assert loop.run_until_complete(measure(delay)) >= delay


def test_call_at_uses_loop_time(loop):
    fired = []
    loop.call_at(loop.time() + 0.01, fired.append, "at")
    run_briefly(loop, 0.02)
    assert fired == ["at"]


def test_call_later_zero_returns_timer_handle_and_runs_after_ready(any_loop):
    # asyncio returns a TimerHandle for call_later(0) and runs it after the
    # callbacks already queued (uvloop returns a plain Handle).
    order = []
    h = any_loop.call_later(0, order.append, "timer")
    any_loop.call_soon(order.append, "soon")
    assert isinstance(h, asyncio.TimerHandle)
    any_loop.run_until_complete(asyncio.sleep(0.001))
    assert order == ["soon", "timer"]


def test_negative_delay_runs_promptly(loop):
    fired = []
    loop.call_later(-5, fired.append, 1)
    run_briefly(loop)
    assert fired == [1]


def test_infinite_delay_never_fires(loop):
    fired = []
    h = loop.call_later(float("inf"), fired.append, 1)
    run_briefly(loop, 0.005)
    assert fired == [] and not h.cancelled()
    h.cancel()


def test_cancelled_timers_do_not_fire_and_are_compacted(loop):
    fired = []
    handles = [loop.call_later(0.001, fired.append, i) for i in range(1000)]
    for h in handles[::2]:
        h.cancel()
    assert loop._timer_cancelled_count == 500
    run_briefly(loop, 0.01)
    assert fired == list(range(1, 1000, 2))
    assert loop._timer_cancelled_count == 0


def test_many_cancelled_far_timers_are_dropped(loop):
    handles = [loop.call_later(1000, print) for _ in range(500)]
    for h in handles:
        h.cancel()
    run_briefly(loop)
    # More than half cancelled and over 100 entries: the heap is compacted.
    assert loop._timer_cancelled_count == 0


def test_context_is_copied_by_default(loop):
    seen = []

    def read():
        seen.append(var.get())
        var.set("changed-in-callback")

    var.set("outer")
    try:
        loop.call_soon(read)
        loop.call_later(0, read)
        run_briefly(loop, 0.001)
        assert seen == ["outer", "outer"]
        assert var.get() == "outer"
    finally:
        var.set("unset")


def test_explicit_context_is_used_not_copied(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "in-ctx")

    def write():
        var.set(var.get() + "+cb")

    loop.call_soon(write, context=ctx)
    loop.call_later(0, write, context=ctx)
    loop.call_soon_threadsafe(write, context=ctx)
    run_briefly(loop, 0.001)
    assert ctx[var] == "in-ctx+cb+cb+cb"


def test_call_soon_threadsafe_from_many_threads(loop):
    got = []
    n_threads, per_thread = 8, 500
    done = loop.create_future()

    def add(x):
        got.append(x)
        if len(got) == n_threads * per_thread:
            done.set_result(None)

    def worker(k):
        for i in range(per_thread):
            loop.call_soon_threadsafe(add, (k, i))

    async def main():
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        await asyncio.wait_for(done, 10)
        for t in threads:
            t.join()

    loop.run_until_complete(main())
    assert len(got) == n_threads * per_thread
    for k in range(n_threads):
        assert [i for kk, i in got if kk == k] == list(range(per_thread))


def test_call_soon_threadsafe_wakes_a_sleeping_loop(loop):
    woke = loop.create_future()

    def later():
        time.sleep(0.02)
        loop.call_soon_threadsafe(woke.set_result, time.monotonic())

    threading.Thread(target=later).start()
    t0 = time.monotonic()
    # Nothing else is scheduled: only the eventfd can wake the poller.
    woken_at = loop.run_until_complete(woke)
    assert woken_at - t0 < 5


# --- bad input: asyncio's exception types and messages ---------------------


async def a_coroutine_function():
    pass


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_coroutine_is_rejected(loop, method):
    coro = a_coroutine_function()
    with pytest.raises(TypeError, match=f"coroutines cannot be used with {method}\\(\\)"):
        getattr(loop, method)(coro)
    coro.close()


def test_coroutine_is_rejected_by_timers(loop):
    coro = a_coroutine_function()
    with pytest.raises(TypeError, match="coroutines cannot be used with call_at"):
        loop.call_later(1, coro)
    with pytest.raises(TypeError, match="coroutines cannot be used with call_at"):
        loop.call_at(1, coro)
    coro.close()


def test_coroutine_function_is_rejected_in_debug(loop):
    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        loop.call_soon(a_coroutine_function)


def test_non_callable_is_rejected(loop):
    with pytest.raises(TypeError, match=r"a callable object was expected by call_soon\(\), got 42"):
        loop.call_soon(42)
    with pytest.raises(TypeError, match="a callable object was expected"):
        loop.call_later(1, "nope")


def test_missing_arguments(loop):
    with pytest.raises(TypeError, match="callback"):
        loop.call_soon()
    with pytest.raises(TypeError, match="delay"):
        loop.call_later()
    with pytest.raises(TypeError, match="callback"):
        loop.call_at(1)


def test_bad_delays_and_deadlines(loop):
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)
    with pytest.raises(TypeError):
        loop.call_later("1", print)
    with pytest.raises(ValueError, match="NaN"):
        loop.call_later(float("nan"), print)


def test_keyword_names_need_not_be_interned(loop):
    # _asyncio's Task passes such a "context" to every call_soon; cxxloop
    # remembers the last one, and must still tell it from other names.
    def built(name):
        return "".join(list(name))  # equal, but a new, uninterned str

    ctx = contextvars.Context()
    ctx.run(var.set, "in-ctx")
    context = built("context")
    assert context is not sys.intern(context)
    for _ in range(2):
        loop.call_soon(lambda: var.set(var.get() + "+cb"), **{context: ctx})
    loop.call_later(0, lambda: var.set(var.get() + "+timer"), **{context: ctx})
    run_briefly(loop, 0.001)
    assert ctx[var] == "in-ctx+cb+cb+timer"

    # The remembered string is "context" still, not "name", where a task
    # factory's create_task looks for both.
    seen = []

    def factory(loop, coro, **kwargs):
        seen.append(kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    loop.call_soon(lambda: None, **{context: ctx})  # remembered from here
    task = loop.create_task(asyncio.sleep(0), **{context: ctx})
    assert seen == [{"context": ctx}]
    loop.set_task_factory(None)
    loop.run_until_complete(task)

    task = loop.create_task(asyncio.sleep(0), **{built("name"): "named"})
    assert task.get_name() == "named"
    loop.run_until_complete(task)
    with pytest.raises(TypeError, match="unexpected keyword argument 'name'"):
        loop.call_soon(print, **{built("name"): None})
    with pytest.raises(TypeError, match="unexpected keyword argument 'contex'"):
        loop.call_soon(print, **{built("contex"): None})


def test_bad_context_and_keywords(loop):
    with pytest.raises(TypeError, match="context must be a contextvars.Context"):
        loop.call_soon(print, context={})
    with pytest.raises(TypeError, match="unexpected keyword argument 'ctx'"):
        loop.call_soon(print, ctx=None)


def test_wrong_thread_is_detected_in_debug_mode(loop):
    loop.set_debug(True)
    errors = []

    def from_thread():
        try:
            loop.call_soon(print)
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main():
        t = threading.Thread(target=from_thread)
        t.start()
        await loop.run_in_executor(None, t.join)

    loop.run_until_complete(main())
    assert errors == ["Non-thread-safe operation invoked on an event loop other than the current one"]


def test_exception_in_callback_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def boom():
        raise ZeroDivisionError("x")

    h = loop.call_soon(boom)
    loop.call_later(0, boom)
    run_briefly(loop, 0.001)
    assert len(contexts) == 2
    assert contexts[0]["handle"] is h
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert contexts[0]["message"].startswith("Exception in callback ")
    assert "boom" in contexts[0]["message"]


def test_default_exception_handler_logs(loop, caplog):
    loop.call_soon(lambda: 1 / 0)
    with caplog.at_level("ERROR", logger="asyncio"):
        run_briefly(loop)
    assert "Exception in callback" in caplog.text
    assert "ZeroDivisionError" in caplog.text


def test_failing_exception_handler_is_reported_not_fatal(loop, caplog):
    def bad_handler(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(bad_handler)
    loop.call_soon(lambda: 1 / 0)
    with caplog.at_level("ERROR", logger="asyncio"):
        run_briefly(loop)
    assert "Unhandled error in exception handler" in caplog.text


def test_base_exception_in_callback_is_not_swallowed(loop):
    class Custom(BaseException):
        pass

    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    loop.call_soon(lambda: (_ for _ in ()).throw(Custom()))
    run_briefly(loop)
    # asyncio reports BaseExceptions other than SystemExit/KeyboardInterrupt.
    assert isinstance(contexts[0]["exception"], Custom)


def test_cxxloop_loop_class_is_used(loop):
    assert type(loop) is cxxloop.Loop
