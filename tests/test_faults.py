"""Fault injection: errors from the kernel, signals, threads and user code,
each checked on cxxloop and, where the two must agree, on asyncio's loop.

Faults tested elsewhere: EMFILE on accept (test_accept.py, a real
RLIMIT_NOFILE exhaustion), ECONNRESET mid-write (test_streams_transport.py
and, during sendfile, test_streams_sendfile.py), KeyboardInterrupt from a
callback (test_lifecycle.py), ^C and signals while blocked in the poller
(test_signals.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import threading
import time
import warnings

import pytest

from parity import LOOPS, Recorder, on_both


class KeepsWriting(Recorder):
    def eof_received(self):
        return True  # half-close: stay open for writing


async def connected_pair(protocol_factory=Recorder):
    """A transport on the running loop, and the plain socket at the other end."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        transport, protocol = await loop.create_connection(protocol_factory, *listener.getsockname())
        peer, _ = listener.accept()
    return transport, protocol, peer


def test_epipe_after_the_peer_is_gone():
    async def main():
        transport, protocol, peer = await connected_pair(KeepsWriting)
        peer.close()
        # Writes succeed into the socket until the peer's RST comes back;
        # then the next one fails with EPIPE (or ECONNRESET).
        for _ in range(200):
            if protocol.lost.done():
                break
            transport.write(b"x" * 1024)
            await asyncio.sleep(0.005)
        exc = await protocol.lost
        transport.close()
        await asyncio.sleep(0.01)
        return type(exc).__name__ in ("BrokenPipeError", "ConnectionResetError"), protocol.lost_calls

    assert on_both(main) == {"asyncio": (True, 1), "cxxloop": (True, 1)}


def test_a_peer_that_never_reads_pauses_the_writer_without_spinning():
    async def main():
        transport, protocol, peer = await connected_pair()
        with peer:
            while not protocol.paused:
                transport.write(b"x" * 65536)
                await asyncio.sleep(0)
            queued = transport.get_write_buffer_size()
            # The socket stays full: every wake-up would be EAGAIN. The loop
            # must sleep instead of polling the fd over and over.
            cpu = time.process_time()
            await asyncio.sleep(0.5)
            cpu = time.process_time() - cpu
            still_queued = transport.get_write_buffer_size()
            transport.abort()
            await protocol.lost
        return protocol.paused, queued == still_queued, cpu < 0.1

    assert on_both(main) == {"asyncio": (1, True, True), "cxxloop": (1, True, True)}


@pytest.mark.parametrize("how", ["add_signal_handler", "signal.signal"])
def test_a_signal_storm_during_a_sleep(how):
    """SIGALRM every 10 ms while the loop sleeps 0.5 s in the poller: the
    handler runs each time, and the sleep is not cut short."""

    async def main():
        loop = asyncio.get_running_loop()
        hits = []
        if how == "add_signal_handler":
            loop.add_signal_handler(signal.SIGALRM, hits.append, 1)
        else:
            signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
        try:
            start = loop.time()
            await asyncio.sleep(0.5)
            elapsed = loop.time() - start
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            if how == "add_signal_handler":
                loop.remove_signal_handler(signal.SIGALRM)
            else:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
        return elapsed >= 0.5, len(hits) >= 20

    assert on_both(main) == {"asyncio": (True, True), "cxxloop": (True, True)}


def test_call_soon_threadsafe_from_eight_threads_at_once():
    threads, per_thread = 8, 20_000

    async def main():
        loop = asyncio.get_running_loop()
        seen = [[] for _ in range(threads)]
        done = loop.create_future()
        remaining = threads * per_thread
        start = threading.Barrier(threads)

        def record(t, i):
            nonlocal remaining
            seen[t].append(i)
            remaining -= 1
            if remaining == 0:
                done.set_result(None)

        def post(t):
            start.wait()
            for i in range(per_thread):
                loop.call_soon_threadsafe(record, t, i)

        workers = [threading.Thread(target=post, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        await done
        for w in workers:
            w.join()
        # Exactly once each, in each thread's order.
        return all(s == list(range(per_thread)) for s in seen)

    assert on_both(main) == {"asyncio": True, "cxxloop": True}


CALLBACKS = ["connection_made", "data_received", "eof_received", "pause_writing", "resume_writing",
             "connection_lost", "get_buffer", "buffer_updated"]


@pytest.mark.parametrize("failing", CALLBACKS)
def test_an_exception_in_each_protocol_callback(failing):
    """Whatever asyncio does when a protocol callback raises (report it,
    close or not), cxxloop does too."""

    def fail(name):
        if name == failing:
            raise ZeroDivisionError(f"{name} failed")

    class Faulty(asyncio.BufferedProtocol):
        def __init__(self):
            self.buffer = bytearray(65536)
            self.lost = asyncio.get_running_loop().create_future()

        def connection_made(self, transport):
            self.transport = transport
            fail("connection_made")

        def get_buffer(self, sizehint):
            fail("get_buffer")
            return self.buffer

        def buffer_updated(self, nbytes):
            fail("buffer_updated")

        def eof_received(self):
            fail("eof_received")

        def pause_writing(self):
            fail("pause_writing")

        def resume_writing(self):
            fail("resume_writing")

        def connection_lost(self, exc):
            if not self.lost.done():
                self.lost.set_result(exc)
            fail("connection_lost")

    class Plain(asyncio.Protocol):
        connection_made = Faulty.connection_made
        eof_received = Faulty.eof_received
        pause_writing = Faulty.pause_writing
        resume_writing = Faulty.resume_writing
        connection_lost = Faulty.connection_lost

        def __init__(self):
            self.lost = asyncio.get_running_loop().create_future()

        def data_received(self, data):
            fail("data_received")

    factory = Plain if failing == "data_received" else Faulty

    async def main():
        loop = asyncio.get_running_loop()
        reports = []
        loop.set_exception_handler(lambda loop, ctx: reports.append(ctx))
        transport, protocol, peer = await connected_pair(factory)
        with peer:
            peer.setblocking(False)
            await asyncio.sleep(0.01)
            transport.set_write_buffer_limits(high=1024)
            for _ in range(1000):  # until the kernel's buffers are full: writing pauses
                transport.write(b"x" * 65536)
                if transport.get_write_buffer_size():
                    break
            peer.send(b"hello")
            for _ in range(200):  # drain, so that writing resumes
                try:
                    peer.recv(1 << 20)
                except BlockingIOError:
                    pass
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.01)
            closing = transport.is_closing()  # what the failure did
            with contextlib.suppress(OSError):  # gone already if the failure closed it
                peer.shutdown(socket.SHUT_WR)  # EOF
            await asyncio.sleep(0.05)
            transport.close()
            await asyncio.wait_for(protocol.lost, 5)
            await asyncio.sleep(0.01)
        messages = sorted({str(r.get("message")).split(" ")[0] for r in reports})
        kinds = sorted({type(r.get("exception")).__name__ for r in reports})
        return closing, messages, kinds

    results = on_both(main)
    assert results["cxxloop"] == results["asyncio"]
    assert results["cxxloop"][2] == ["ZeroDivisionError"]  # the failure was reported


def test_loop_closed_with_open_transports_warns_and_frees_the_fds():
    def scenario(factory):
        loop = factory()
        fds = len(os.listdir("/proc/self/fd"))

        async def main():
            transport, protocol, peer = await connected_pair()
            peer.close()
            return transport

        transport = loop.run_until_complete(main())
        loop.close()  # the transport is still open
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del transport
            gc.collect()
        unclosed = sorted({str(w.message).split(" ")[1] for w in caught if w.category is ResourceWarning})
        return unclosed, len(os.listdir("/proc/self/fd")) <= fds

    # The transport and its socket (collected together) both warn; nothing stays open.
    expected = (["<socket.socket", "transport"], True)
    assert {name: scenario(f) for name, f in LOOPS.items()} == {"asyncio": expected, "cxxloop": expected}


def test_a_pending_task_that_is_garbage_collected(caplog):
    def scenario(factory):
        loop = factory()
        reports = []
        loop.set_exception_handler(lambda loop, ctx: reports.append(ctx["message"]))

        async def waits_forever():
            await loop.create_future()

        loop.create_task(waits_forever())  # no reference kept
        loop.run_until_complete(asyncio.sleep(0.01))
        gc.collect()
        loop.close()
        return reports

    assert {n: scenario(f) for n, f in LOOPS.items()} == {
        "asyncio": ["Task was destroyed but it is pending!"],
        "cxxloop": ["Task was destroyed but it is pending!"],
    }
