"""sync_to_async / async_to_sync: each property the naive versions get wrong
(context variables, thread-sensitive threads, re-entry without deadlock,
misuse, loop resolution, fork, the executor used, cancellation)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import cxxloop
from cxxloop import ThreadSensitiveContext, async_to_sync, sync_to_async

pytestmark = pytest.mark.timeout(60)

LOOPS = {"cxxloop": cxxloop.new_event_loop, "asyncio": asyncio.new_event_loop}
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    """Runs a coroutine to completion on a fresh loop of each kind."""
    factory = LOOPS[request.param]

    def run(coro):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(coro, 30))

    return run


# --- wrapping ---------------------------------------------------------------


def test_forms_of_sync_to_async(run):
    def add(a, b=1):
        """Adds."""
        return a + b

    @sync_to_async
    def bare(a):
        return a * 2

    @sync_to_async(thread_sensitive=False)
    def with_args(a):
        return a * 3

    class Account:
        def __init__(self, balance):
            self.balance = balance

        @sync_to_async
        def deposit(self, amount):
            self.balance += amount
            return self.balance

    account = Account(10)

    async def main():
        return (
            await sync_to_async(add)(2, b=5),
            await bare(4),
            await with_args(4),
            await account.deposit(5),
            await sync_to_async(account.deposit.__wrapped__.__get__(account))(1),
        )

    assert run(main()) == (7, 8, 12, 15, 16)
    wrapped = sync_to_async(add)
    assert wrapped.__name__ == "add" and wrapped.__doc__ == "Adds."
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.iscoroutinefunction(Account(0).deposit)
    assert str(inspect.signature(wrapped)) == "(a, b=1)"


def test_forms_of_async_to_sync():
    async def mul(a, b=2):
        await asyncio.sleep(0)
        return a * b

    @async_to_sync
    async def bare(a):
        return a + 1

    @async_to_sync(loop_factory=asyncio.new_event_loop)
    async def on_asyncio():
        return type(asyncio.get_running_loop())

    class Service:
        def __init__(self):
            self.calls = 0

        @async_to_sync
        async def ping(self):
            self.calls += 1
            return "pong"

    service = Service()
    assert async_to_sync(mul)(3, b=4) == 12
    assert bare(1) == 2
    assert issubclass(on_asyncio(), asyncio.BaseEventLoop)
    assert not issubclass(on_asyncio(), cxxloop.Loop)
    assert service.ping() == "pong" and service.calls == 1
    assert not inspect.iscoroutinefunction(async_to_sync(mul))
    assert async_to_sync(mul).__name__ == "mul"


def test_async_to_sync_runs_on_cxxloop_by_default():
    async def loop_type():
        return type(asyncio.get_running_loop())

    assert async_to_sync(loop_type)() is cxxloop.Loop


def test_exceptions_pass_through_both_ways(run):
    class Boom(Exception):
        pass

    def fail():
        raise Boom("sync")

    async def afail():
        raise Boom("async")

    async def main():
        with pytest.raises(Boom, match="sync"):
            await sync_to_async(fail)()
        with pytest.raises(Boom, match="async"):
            await sync_to_async(async_to_sync(afail))()

    run(main())
    with pytest.raises(Boom, match="async"):
        async_to_sync(afail)()


# --- context variables --------------------------------------------------------


def test_contextvars_flow_into_and_out_of_sync_code(run):
    def handler():
        seen = request_id.get()
        request_id.set("set-in-sync")
        return seen

    async def main():
        request_id.set("set-in-async")
        seen = await sync_to_async(handler)()
        return seen, request_id.get()

    assert run(main()) == ("set-in-async", "set-in-sync")


def test_contextvars_flow_into_and_out_of_async_code():
    async def handler():
        seen = request_id.get()
        await asyncio.sleep(0)
        request_id.set("set-in-async")
        return seen

    def caller():
        request_id.set("set-in-sync")
        seen = async_to_sync(handler)()
        return seen, request_id.get()

    # A fresh context, so nothing leaks into other tests.
    assert contextvars.Context().run(caller) == ("set-in-sync", "set-in-async")


def test_contextvars_survive_a_round_trip(run):
    async def inner():
        request_id.set(request_id.get() + ">async")

    def middle():
        request_id.set(request_id.get() + ">sync")
        async_to_sync(inner)()
        request_id.set(request_id.get() + ">sync")

    async def main():
        request_id.set("async")
        await sync_to_async(middle)()
        return request_id.get()

    assert run(main()) == "async>sync>async>sync"


def test_concurrent_calls_keep_their_own_context(run):
    def read_after_pause(expected):
        time.sleep(0.01)
        return request_id.get() == expected

    async def one(i):
        request_id.set(f"task-{i}")
        return await sync_to_async(read_after_pause, thread_sensitive=False)(f"task-{i}")

    async def main():
        return await asyncio.gather(*(one(i) for i in range(20)))

    assert all(run(main()))


# --- thread-sensitive mode ------------------------------------------------------


def test_thread_sensitive_calls_from_sync_code_stay_on_the_calling_thread():
    connection_thread = threading.get_ident()

    def query():
        # What a thread-bound database connection demands.
        assert threading.get_ident() == connection_thread
        return threading.get_ident()

    async def view():
        first = await sync_to_async(query)()
        second = await asyncio.gather(*(sync_to_async(query)() for _ in range(5)))
        return [first, *second]

    assert set(async_to_sync(view)()) == {connection_thread}


def test_thread_sensitive_calls_from_async_code_share_one_thread(run):
    def ident():
        return threading.get_ident(), threading.current_thread().name

    async def main():
        loop_thread = threading.get_ident()
        results = await asyncio.gather(*(sync_to_async(ident)() for _ in range(10)))
        results.append(await sync_to_async(ident)())
        return loop_thread, results

    loop_thread, results = run(main())
    assert len({ident for ident, _ in results}) == 1
    assert results[0][0] != loop_thread
    assert results[0][1].startswith("cxxloop-thread-sensitive")


def test_thread_sensitive_context_gives_one_thread_per_context(run):
    def ident():
        return threading.get_ident()

    async def request():
        async with ThreadSensitiveContext():
            first = await sync_to_async(ident)()
            # A task started inside inherits the context's thread.
            second = await asyncio.create_task(sync_to_async(ident)())
            return first, second

    async def main():
        return await asyncio.gather(request(), request())

    (a1, a2), (b1, b2) = run(main())
    assert a1 == a2 and b1 == b2 and a1 != b1


def test_thread_insensitive_calls_run_in_parallel_on_a_bounded_pool(run):
    barrier = threading.Barrier(4, timeout=10)
    names = set()

    def meet():
        names.add(threading.current_thread().name)
        barrier.wait()  # deadlocks unless four run at once

    async def main():
        await asyncio.gather(*(sync_to_async(meet, thread_sensitive=False)() for _ in range(4)))
        loop = asyncio.get_running_loop()
        # The loop's default executor was not touched.
        return getattr(loop, "_default_executor", None)

    assert run(main()) is None
    assert all(name.startswith("cxxloop-sync_to_async") for name in names)


def test_bounded_pool_has_a_bound(run):
    from cxxloop.bridges import _sync_calls

    idents = set()
    lock = threading.Lock()

    def record():
        with lock:
            idents.add(threading.get_ident())
        time.sleep(0.002)

    async def main():
        await asyncio.gather(
            *(sync_to_async(record, thread_sensitive=False)() for _ in range(200))
        )

    run(main())
    assert len(idents) <= _sync_calls._POOL_SIZE


def test_custom_executor_is_used(run):
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mine") as pool:

        def name():
            return threading.current_thread().name

        async def main():
            return await sync_to_async(name, thread_sensitive=False, executor=pool)()

        assert run(main()).startswith("mine")


# --- re-entry -------------------------------------------------------------------


def test_sync_async_sync_reenters_without_deadlock(run):
    """async -> sync (thread-sensitive) -> async -> sync (thread-sensitive):
    the inner async part runs on the original loop and the inner sync part
    on the outer sync part's thread, which is the only thread it may use."""
    seen = {}

    def inner_sync():
        seen["inner_thread"] = threading.get_ident()

    async def inner_async():
        seen["inner_loop"] = asyncio.get_running_loop()
        await sync_to_async(inner_sync)()

    def outer_sync():
        seen["outer_thread"] = threading.get_ident()
        async_to_sync(inner_async)()

    async def main():
        seen["outer_loop"] = asyncio.get_running_loop()
        # Several at once on the one shared thread: still no deadlock.
        await asyncio.gather(*(sync_to_async(outer_sync)() for _ in range(3)))

    run(main())
    assert seen["inner_loop"] is seen["outer_loop"]
    assert seen["inner_thread"] == seen["outer_thread"]


def test_deep_reentry_from_sync_code():
    main_thread = threading.get_ident()
    depth = []

    def sync_level(n):
        assert threading.get_ident() == main_thread
        depth.append(n)
        if n < 6:
            async_to_sync(async_level)(n + 1)

    async def async_level(n):
        await sync_to_async(sync_level)(n)

    sync_level(0)
    assert depth == list(range(7))


# --- misuse -----------------------------------------------------------------------


def test_async_to_sync_in_a_running_loop_is_a_clear_error(run):
    async def work():
        return 1

    async def main():
        message = r"running an event loop .*await .*work\(\.\.\.\) directly"
        with pytest.raises(RuntimeError, match=message):
            async_to_sync(work)()

    run(main())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sync_to_async(42), "expects a callable, not int"),
        (lambda: sync_to_async(asyncio.sleep), "is async, await it directly"),
        (lambda: sync_to_async(print, executor=ThreadPoolExecutor(1)), "thread_sensitive=False"),
        (lambda: sync_to_async(print, thread_sensitive=False, executor="pool"), "Executor"),
        (lambda: async_to_sync(42), "not int"),
        (lambda: async_to_sync(print, loop_factory=3), "loop_factory must be callable"),
    ],
)
def test_bad_arguments_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_async_to_sync_of_a_coroutine_object_says_what_to_pass():
    coro = asyncio.sleep(0)
    try:
        with pytest.raises(TypeError, match="not a coroutine object; pass the function"):
            async_to_sync(coro)
    finally:
        coro.close()


def test_async_to_sync_of_a_sync_function_is_a_type_error():
    with pytest.raises(TypeError, match="returned int, not an awaitable"):
        async_to_sync(len)("abc")


def test_async_to_sync_accepts_any_awaitable():
    class Ready:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "done"

    assert async_to_sync(Ready)() == "done"


# --- loop resolution ---------------------------------------------------------------


@sync_to_async
def decorated_at_import():
    return threading.get_ident()


@async_to_sync
async def decorated_at_import_async():
    return asyncio.get_running_loop()


def test_loop_is_resolved_at_call_time():
    async def main():
        return await decorated_at_import()

    # The same wrappers work under successive loops of either kind.
    for factory in (cxxloop.new_event_loop, asyncio.new_event_loop, cxxloop.new_event_loop):
        with asyncio.Runner(loop_factory=factory) as runner:
            assert isinstance(runner.run(main()), int)
    first, second = decorated_at_import_async(), decorated_at_import_async()
    assert first is not second
    assert first.is_closed() and second.is_closed()


def test_new_loop_is_shut_down_like_asyncio_run():
    events = []

    async def background():
        try:
            await asyncio.sleep(3600)
        finally:
            # Cleanup may still use thread-sensitive sync code.
            events.append(await sync_to_async(lambda: "cleaned")())

    async def gen():
        try:
            yield 1
        finally:
            events.append("agen closed")

    async def main():
        asyncio.get_running_loop().create_task(background())
        agen = gen()
        await agen.__anext__()
        main.agen = agen  # keep it alive, unfinished
        await asyncio.sleep(0)

    async_to_sync(main)()
    assert sorted(events) == ["agen closed", "cleaned"]


# --- cancellation -------------------------------------------------------------------


@pytest.mark.parametrize("thread_sensitive", [True, False])
def test_cancelling_waits_for_the_thread(run, thread_sensitive):
    started, release = threading.Event(), threading.Event()
    finished = []

    def blocking():
        started.set()
        release.wait(10)
        finished.append(True)

    async def main():
        task = asyncio.ensure_future(sync_to_async(blocking, thread_sensitive=thread_sensitive)())
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.05)
        still_waiting = not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return still_waiting, list(finished)

    assert run(main()) == (True, [True])


def test_cancelling_a_queued_call_never_runs_it(run):
    release = threading.Event()
    ran = []

    async def main():
        blocker = asyncio.ensure_future(sync_to_async(release.wait)(10))
        queued = asyncio.ensure_future(sync_to_async(ran.append)(1))
        await asyncio.sleep(0.02)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        await blocker

    run(main())
    assert ran == []


def test_cancellation_under_timeout_becomes_timeout_error(run):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await sync_to_async(time.sleep, thread_sensitive=False)(0.2)

    run(main())


def test_keyboard_interrupt_while_waiting_cancels_the_coroutine():
    script = textwrap.dedent(
        """
        import asyncio, signal, threading, cxxloop

        async def main():
            # What ^C does: SIGINT delivered to the main thread, blocked
            # in async_to_sync while this coroutine runs on another.
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                print("coroutine cancelled", flush=True)
                raise

        try:
            cxxloop.async_to_sync(main)()
        except KeyboardInterrupt:
            print("KeyboardInterrupt raised", flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.splitlines() == ["coroutine cancelled", "KeyboardInterrupt raised"], out


# --- fork ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Forking with threads alive is the very case under test.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_bridges_work_in_a_forked_child(run):
    def ident():
        return threading.get_ident()

    async def use_all():
        await sync_to_async(ident)()
        await sync_to_async(ident, thread_sensitive=False)()

    # The parent creates the shared thread and the pool first: the child
    # inherits those objects but not their threads.
    run(use_all())

    async def child_main():
        await use_all()
        return await sync_to_async(functools.partial(async_to_sync(asyncio.sleep), 0, "ok"))()

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if cxxloop.run(asyncio.wait_for(child_main(), 10)) == "ok" else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung using the bridges")
