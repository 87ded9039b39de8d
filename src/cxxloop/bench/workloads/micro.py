"""Micro workloads: one event loop primitive each, no network.

Every function takes a fresh loop and a size, and returns a Measured: the
operations, and the wall and CPU time of the loop-running part only. Work
is fed in batches from inside the running loop, so that the ready queue and
the timer heap stay the size a busy program has, not millions deep.
"""

from __future__ import annotations

import asyncio
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from . import Workload
from .timing import Measured, Stopwatch

_BATCH = 1000


def _noop(*args: object) -> None:
    pass


def _timed_forever(loop: asyncio.AbstractEventLoop, ops: int, start) -> Measured:
    """Run the loop from `start` until something calls loop.stop()."""
    loop.call_soon(start)
    clock = Stopwatch()
    loop.run_forever()
    return clock.measured(ops)


def _timed_until_complete(loop: asyncio.AbstractEventLoop, ops: int, coro) -> Measured:
    clock = Stopwatch()
    loop.run_until_complete(coro)
    return clock.measured(ops)


def _call_soon_feeder(loop, n, schedule_batch):
    """Feeds n callbacks in batches; schedule_batch(call_soon, count) queues
    one batch, spelling out its call, as a program would: a shared
    call_soon(callback, *args) would build a list and a tuple per call,
    and measure that along with the loop."""
    remaining = n

    def feed() -> None:
        nonlocal remaining
        count = min(_BATCH, remaining)
        remaining -= count
        schedule_batch(loop.call_soon, count)
        # Queued after this batch, so it runs once the batch has run.
        loop.call_soon(feed if remaining else loop.stop)

    return feed


def _no_args(call_soon, count: int) -> None:
    for _ in range(count):
        call_soon(_noop)


def _three_args(call_soon, count: int) -> None:
    for _ in range(count):
        call_soon(_noop, 1, "two", None)


def call_soon(loop, n):
    return _timed_forever(loop, n, _call_soon_feeder(loop, n, _no_args))


def call_soon_args(loop, n):
    return _timed_forever(loop, n, _call_soon_feeder(loop, n, _three_args))


def timers_cancel(loop, n):
    """Timeouts that never expire: armed, then cancelled an iteration later.

    That is what a server does with a per-request timeout. The delays are
    spread over a second so the heap has real ordering work to do.
    """
    remaining = n
    pending: list[asyncio.TimerHandle] = []

    def step() -> None:
        nonlocal remaining, pending
        for handle in pending:
            handle.cancel()
        count = min(_BATCH, remaining)
        remaining -= count
        call_later = loop.call_later
        pending = [call_later(1.0 + (i * 7919 % 1000) * 1e-3, _noop) for i in range(count)]
        loop.call_soon(step if count else loop.stop)

    return _timed_forever(loop, n, step)


def timers_firing(loop, n):
    """Timers that do fire: 10,000 in flight, each re-arming a successor.

    Delays are spread over 0-99 us, so the heap stays 10,000 deep with real
    ordering work and the loop never sits idle waiting for a deadline.
    """
    in_flight = min(10_000, n)
    to_arm = n - in_flight
    fired = 0

    def on_timer() -> None:
        nonlocal fired, to_arm
        fired += 1
        if to_arm:
            to_arm -= 1
            loop.call_later((to_arm % 100) * 1e-6, on_timer)
        elif fired == n:
            loop.stop()

    def start() -> None:
        for i in range(in_flight):
            loop.call_later((i % 100) * 1e-6, on_timer)

    return _timed_forever(loop, n, start)


async def _five_sleeps() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def gather(loop, n):
    """asyncio.gather over n tasks (creation included), each yielding 5 times."""

    async def main() -> None:
        await asyncio.gather(*[_five_sleeps() for _ in range(n)])

    return _timed_until_complete(loop, n, main())


def futures(loop, n):
    """Create a future, resolve it from a callback, await it: a full round
    trip through the ready queue, as every awaited I/O result makes."""

    async def main() -> None:
        create_future = loop.create_future
        call_soon = loop.call_soon
        for _ in range(n):
            fut = create_future()
            call_soon(fut.set_result, None)
            await fut

    return _timed_until_complete(loop, n, main())


def run_in_executor(loop, n):
    """Many tiny calls through a 4-thread pool, 32 in flight at a time.

    This measures the loop's cross-thread wake-up (call_soon_threadsafe),
    not the work, which is a no-op.
    """
    in_flight = 32
    executor = ThreadPoolExecutor(max_workers=4)
    # Start the worker threads before timing, not during.
    list(executor.map(time.sleep, [0.01] * 4))

    async def main() -> None:
        run = loop.run_in_executor
        for _ in range(n // in_flight):
            await asyncio.gather(*[run(executor, _noop) for _ in range(in_flight)])

    try:
        return _timed_until_complete(loop, n // in_flight * in_flight, main())
    finally:
        executor.shutdown(wait=True)


def socketpair_pingpong(loop, n):
    """A 64-byte message bounced n times between the ends of a socketpair,
    with add_reader callbacks and non-blocking send/recv: the cost of an fd
    watch's dispatch. The sock_* calls are measured by the echo_sock_*
    workloads."""
    message = b"x" * 64
    ping, pong = socket.socketpair()
    ping.setblocking(False)
    pong.setblocking(False)
    left = n
    received = 0

    def on_pong_readable() -> None:
        data = pong.recv(4096)
        if data:
            pong.send(data)

    def on_ping_readable() -> None:
        nonlocal left, received
        received += len(ping.recv(4096))
        if received < len(message):
            return  # a message can arrive in pieces; wait for the rest
        received = 0
        left -= 1
        if left:
            ping.send(message)
        else:
            loop.stop()

    loop.add_reader(pong.fileno(), on_pong_readable)
    loop.add_reader(ping.fileno(), on_ping_readable)
    try:
        return _timed_forever(loop, n, lambda: ping.send(message))
    finally:
        loop.remove_reader(pong.fileno())
        loop.remove_reader(ping.fileno())
        ping.close()
        pong.close()


WORKLOADS = [
    Workload(
        "call_soon", "callbacks", 1_000_000, 100_000,
        "loop.call_soon(f) of a no-op, fed 1,000 at a time from a callback",
        call_soon,
    ),
    Workload(
        "call_soon_args", "callbacks", 1_000_000, 100_000,
        "loop.call_soon(f, 1, 'two', None), fed like call_soon",
        call_soon_args,
    ),
    Workload(
        "timers_cancel", "timers", 500_000, 50_000,
        "call_later(1-2 s) then cancel() one iteration later, 1,000 per iteration",
        timers_cancel,
    ),
    Workload(
        "timers_firing", "timers", 500_000, 40_000,
        "call_later(0-99 us) that fire, 10,000 in flight, each re-arming one",
        timers_firing,
    ),
    Workload(
        "gather", "tasks", 100_000, 10_000,
        "asyncio.gather of 100,000 tasks, each doing await asyncio.sleep(0) 5 times",
        gather,
    ),
    Workload(
        "futures", "futures", 250_000, 30_000,
        "create_future(), set_result from call_soon, await it",
        futures,
    ),
    Workload(
        "run_in_executor", "calls", 30_000, 5_000,
        "run_in_executor of a no-op on 4 threads, 32 in flight",
        run_in_executor,
    ),
    Workload(
        "socketpair_pingpong", "round trips", 100_000, 10_000,
        "64 B ping-pong over socket.socketpair with add_reader + send/recv",
        socketpair_pingpong,
    ),
]
