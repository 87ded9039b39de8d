"""loop.stats(): the C++ core's counters count exactly what a known workload
does, the histograms put what they measure in the right bucket, and
set_stats / reset do what they say."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import socket
import threading
import time

import pytest

import cxxloop
from cxxloop import Histogram, LoopStats
from parity import noop, run_until_stopped


def test_callbacks_and_timers_are_counted_exactly(loop):
    loop.stats(reset=True)
    for _ in range(100):
        loop.call_soon(noop)
    loop.call_soon(noop).cancel()  # never runs: not counted
    timers = [loop.call_later(0.001 * i, noop) for i in range(5)]
    timers[3].cancel()
    timers[4].cancel()
    run_until_stopped(loop, 0.02)
    timers[0].cancel()  # already fired: not a timer cancellation
    s = loop.stats()
    assert s.timers_scheduled == 6  # five, and the stop
    assert s.timers_cancelled == 2
    assert s.timers_fired == 4  # three, and the stop
    assert s.callbacks == 100 + 4
    assert s.lag.count == s.timers_fired
    assert s.lag.sum >= 0
    assert s.ready == 0


def test_iterations_are_counted_exactly(loop):
    loop.stats(reset=True)
    for _ in range(7):
        loop.call_soon(noop)
        loop._run_once()
    s = loop.stats()
    assert (s.iterations, s.callbacks) == (7, 7)


def test_a_timer_due_since_forever_lands_in_the_last_lag_bucket(loop):
    loop.stats(reset=True)
    loop.call_at(float("-inf"), noop)
    loop._run_once()
    lag = loop.stats().lag
    assert lag.counts[-1] == lag.count == 1


def test_ready_is_the_queue_length_now(loop):
    for _ in range(7):
        loop.call_soon(noop)
    assert loop.stats().ready == 7
    loop._run_once()
    assert loop.stats().ready == 0


def test_reset_returns_the_figures_and_zeroes_them(loop):
    for _ in range(3):
        loop.call_soon(noop)
    loop.call_later(0, noop)
    run_until_stopped(loop, 0.01)
    before = loop.stats(reset=True)
    assert before.callbacks == 5 and before.timers_fired == 2 and before.lag.count == 2
    after = loop.stats()
    assert (after.iterations, after.callbacks, after.timers_scheduled, after.timers_fired, after.lag.count) == (
        0, 0, 0, 0, 0)
    assert after.enabled


def test_disabled_stats_count_nothing(loop):
    loop.set_stats(False)
    for _ in range(10):
        loop.call_soon(noop)
    loop.call_later(0, noop)
    run_until_stopped(loop, 0.01)
    s = loop.stats()
    assert not s.enabled
    assert (s.iterations, s.callbacks, s.timers_scheduled, s.timers_fired) == (0, 0, 0, 0)
    loop.set_stats(True)
    loop.call_soon(noop)
    loop._run_once()
    assert loop.stats().callbacks == 1


def test_new_event_loop_keywords_set_the_stats():
    off = cxxloop.new_event_loop(stats=False)
    timed = cxxloop.new_event_loop(timing=True)
    try:
        assert not off.stats().enabled
        assert timed.stats().enabled and timed.stats().timing
    finally:
        off.close()
        timed.close()


def test_set_stats_refuses_timing_without_stats(loop):
    with pytest.raises(ValueError):
        loop.set_stats(False, timing=True)
    with pytest.raises(TypeError):
        loop.set_stats()
    with pytest.raises(TypeError):
        loop.set_stats(True, timnig=True)
    assert loop.stats().enabled and not loop.stats().timing


def test_callback_durations_are_timed_into_their_bucket(loop):
    loop.set_stats(True, timing=True)
    loop.stats(reset=True)
    loop.call_soon(time.sleep, 0.02)
    for _ in range(5):
        loop.call_soon(noop)
    loop._run_once()
    d = loop.stats().callback_duration
    assert d.count == 6
    assert d.sum >= 0.02
    # 20 ms falls in (16.384 ms, 32.768 ms] unless the machine stalled it
    # past that; it can only be later, never earlier.
    slow_bucket = next(k for k, bound in enumerate(Histogram.bounds) if bound >= 0.02)
    assert sum(d.counts[slow_bucket:]) == 1
    assert sum(d.counts[:slow_bucket]) == 5


def test_durations_are_not_timed_unless_asked(loop):
    loop.call_soon(time.sleep, 0.01)
    loop._run_once()
    assert loop.stats().callback_duration.count == 0


def test_timer_lag_measures_how_late_a_timer_was_found_due(loop):
    loop.stats(reset=True)
    loop.call_later(0.001, noop)
    # The loop is busy for 50 ms when the timer falls due.
    loop.call_soon(time.sleep, 0.05)
    loop._run_once()  # runs the sleep
    loop._run_once()  # finds the timer 49 ms late
    lag = loop.stats().lag
    assert lag.count == 1
    assert lag.sum >= 0.045
    assert lag.quantile(1.0) >= 0.045


def test_stream_bytes_events_and_open_transports(loop):
    received = bytearray()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    class Client(asyncio.Protocol):
        def __init__(self):
            self.done = loop.create_future()

        def data_received(self, data):
            received.extend(data)
            if len(received) == 3000:
                self.done.set_result(None)

    async def main():
        a, b = socket.socketpair()
        await loop.create_connection(Echo, sock=a)
        transport, client = await loop.create_connection(Client, sock=b)
        assert loop.stats().transports == {"StreamTransport": 2}
        loop.stats(reset=True)
        for _ in range(3):
            transport.write(b"x" * 1000)
        await client.done
        s = loop.stats()
        transport.close()
        await asyncio.sleep(0.01)
        return s

    s = loop.run_until_complete(main())
    # Each byte is written and read twice: to the echo server and back.
    assert s.bytes_written == 6000
    assert s.bytes_read == 6000
    assert s.io_events >= 2
    assert loop.stats().transports == {}


def test_tls_counts_the_bytes_on_the_wire(loop, contexts):
    server_ctx, client_ctx = contexts
    payload = b"s" * 5000

    async def main():
        async def echo(reader, writer):
            writer.write(await reader.readexactly(len(payload)))
            await writer.drain()
            await reader.read()  # until the client closes
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        kinds = dict(loop.stats().transports)
        writer.write(payload)
        assert await reader.readexactly(len(payload)) == payload
        s = loop.stats()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return kinds, s

    kinds, s = loop.run_until_complete(main())
    assert kinds == {"SSLTransport": 2}
    # The encrypted records, the handshake's included, both ways; a record
    # just written may not have been read yet.
    assert s.bytes_written >= s.bytes_read > 2 * len(payload)


def test_datagram_bytes(loop):
    async def main():
        got = loop.create_future()

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if not got.done():
                    got.set_result(data)

        server, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        client, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        remote_addr=server.get_extra_info("sockname"))
        kinds = dict(loop.stats().transports)
        loop.stats(reset=True)
        client.sendto(b"y" * 77)
        await got
        s = loop.stats()
        client.close()
        server.close()
        await asyncio.sleep(0)
        return kinds, s

    kinds, s = loop.run_until_complete(main())
    assert kinds == {"DatagramTransport": 2}
    assert (s.bytes_written, s.bytes_read) == (77, 77)


def test_pipe_transports_are_counted_by_kind(loop):
    async def main():
        r, w = os.pipe()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, os.fdopen(w, "wb", 0))
        kinds = dict(loop.stats().transports)
        wt.write(b"abc")
        await asyncio.sleep(0.01)
        s = loop.stats()
        rt.close()
        wt.close()
        await asyncio.sleep(0)
        return kinds, s

    kinds, s = loop.run_until_complete(main())
    assert kinds == {"ReadPipeTransport": 1, "WritePipeTransport": 1}
    assert s.bytes_read >= 3 and s.bytes_written >= 3


def test_stats_can_be_read_from_another_thread_while_the_loop_runs(loop):
    seen: list[LoopStats] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(loop.stats())

    async def busy():
        for _ in range(2000):
            await asyncio.sleep(0)

    t = threading.Thread(target=reader)
    t.start()
    try:
        loop.run_until_complete(busy())
    finally:
        stop.set()
        t.join()
    assert seen
    counts = [s.callbacks for s in seen]
    assert counts == sorted(counts)  # never goes back: each snapshot is whole


def test_a_keyboard_interrupt_leaves_the_counters_consistent(loop):
    def interrupt():
        raise KeyboardInterrupt

    loop.stats(reset=True)
    loop.call_soon(noop)
    loop.call_soon(interrupt)
    loop.call_soon(noop)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    s = loop.stats()
    assert s.callbacks == 2  # the third never ran
    assert s.ready == 1
    run_until_stopped(loop, 0.01)
    assert loop.stats().callbacks == 4  # the third, and the stop


def test_histogram_helpers():
    bounds = Histogram.bounds
    assert bounds[0] == 1e-6 and all(b2 == 2 * b1 for b1, b2 in itertools.pairwise(bounds))
    counts = [0] * (len(bounds) + 1)
    counts[0], counts[3], counts[-1] = 2, 1, 1
    h = Histogram(tuple(counts), 100.0)
    assert h.count == 4
    cumulative = h.cumulative()
    assert cumulative[0] == (1e-6, 2) and cumulative[3] == (8e-6, 3) and cumulative[-1] == (math.inf, 4)
    assert h.quantile(0.5) == 1e-6
    assert h.quantile(0.75) == 8e-6
    assert h.quantile(1.0) == math.inf
    assert Histogram((0,) * len(counts), 0.0).quantile(0.5) is None
    with pytest.raises(ValueError):
        h.quantile(1.5)
