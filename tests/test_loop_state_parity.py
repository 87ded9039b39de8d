"""The loop's own state in the corners real code reaches: watches on
sockets closed while watched, fds that are not open, a replaced
loop.time, call_at's deadline type, _run_once after close(), close() from
another thread, and timers re-entered from a __del__. Each scenario runs
on asyncio's loop and on cxxloop and must come out the same.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import signal
import socket
import threading
from unittest import mock

import pytest

from parity import LOOPS, agree, outcome


def on_each_loop(scenario):
    """scenario(loop) on a fresh loop of each kind; {name: result}."""
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        try:
            results[name] = scenario(loop)
        finally:
            if not loop.is_closed():
                loop.close()
    return results


def same_on_each_loop(scenario):
    results = on_each_loop(scenario)
    assert results["cxxloop"] == results["asyncio"], results
    return results["cxxloop"]


@pytest.mark.parametrize("watches", [("reader",), ("writer",), ("reader", "writer")])
def test_remove_a_watch_whose_socket_was_closed(watches):
    # The watch is found by the socket object (its fileno() is -1 once
    # closed), as a selector finds its key. Removing one of two watches
    # then fails in the poller, which drops the fd's whole registration.
    def scenario(loop):
        a, b = socket.socketpair()
        for kind in watches:
            getattr(loop, f"add_{kind}")(a, print)
        a.close()
        removed = [outcome(lambda kind=kind: getattr(loop, f"remove_{kind}")(a)) for kind in watches]
        again = outcome(lambda: loop.remove_reader(a))
        b.close()
        return removed, again

    removed, again = same_on_each_loop(scenario)
    assert removed[0] == (("returned", True) if len(watches) == 1 else ("OSError", "[Errno 9] Bad file descriptor"))


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.parametrize("fd", [100_000_000, 65_000])
def test_add_reader_of_an_fd_that_is_not_open(fd):
    # Refused without growing anything: a table sized to the fd number
    # would be gigabytes for 100,000,000.
    def scenario(loop):
        before = resident_bytes()
        result = outcome(lambda: loop.add_reader(fd, print))
        return result[0], resident_bytes() - before < 64 << 20

    assert same_on_each_loop(scenario) == ("OSError", True)


def test_a_patched_loop_time_drives_the_timers():
    # aiohttp's tests patch loop.time; asyncio's run loop asks self.time().
    def scenario(loop):
        fired = []
        now = loop.time()
        loop.call_at(now + 1000, fired.append, "far")
        with mock.patch.object(loop, "time", return_value=now + 2000):
            later = loop.call_later(5, fired.append, "later")
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(asyncio.sleep(0))
        later.cancel()
        return fired, later.when() == now + 2005

    assert same_on_each_loop(scenario) == (["far"], True)


def test_a_subclass_time_is_honoured():
    def scenario(loop):
        class Shifted(type(loop)):
            def time(self):
                return super().time() + 1000

        shifted = Shifted()
        try:
            fired = []
            shifted.call_at(super(Shifted, shifted).time() + 500, fired.append, "due")
            shifted.run_until_complete(asyncio.sleep(0))
            return fired
        finally:
            shifted.close()

    assert same_on_each_loop(scenario) == ["due"]


@pytest.mark.parametrize("when", [10**9, 5, 2.5])
def test_call_at_keeps_the_deadline_it_was_given(when):
    def scenario(loop):
        handle = loop.call_at(when, print)
        handle.cancel()
        return type(handle.when()).__name__, handle.when()

    assert same_on_each_loop(scenario) == (type(when).__name__, when)


def test_run_once_after_close():
    def scenario(loop):
        loop.close()
        return outcome(loop._run_once)

    assert same_on_each_loop(scenario)[0] == "AttributeError"


def test_close_from_another_thread_with_a_signal_handler():
    def scenario(loop):
        loop.add_signal_handler(signal.SIGUSR1, print)
        result = []
        thread = threading.Thread(target=lambda: result.append(outcome(loop.close)))
        thread.start()
        thread.join()
        closed = loop.is_closed()
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        return result[0][0], closed

    assert same_on_each_loop(scenario) == ("ValueError", True)


class Reentrant:
    """Schedules a timer on the loop when it is released."""

    def __init__(self, loop, fired):
        self.loop = loop
        self.fired = fired

    def __del__(self):
        self.loop.call_later(0, self.fired.append, "from __del__")


def test_a_del_that_schedules_a_timer_while_cancelled_timers_are_dropped():
    # Enough cancelled timers that the loop compacts its heap; each
    # cancelled handle's context holds an object whose __del__ schedules a
    # timer. Every live timer still fires, once.
    def scenario(loop):
        fired = []
        import contextvars

        keep = [loop.call_later(0.01, fired.append, i) for i in range(5)]
        for _ in range(300):
            context = contextvars.copy_context()
            context.run(contextvars.ContextVar("holder").set, Reentrant(loop, fired))
            loop.call_later(100, print, context=context).cancel()
            del context
        gc.collect()
        loop.run_until_complete(asyncio.sleep(0.05))
        loop.run_until_complete(asyncio.sleep(0.01))
        del keep
        return sorted(f for f in fired if isinstance(f, int)), fired.count("from __del__")

    live, reentered = same_on_each_loop(scenario)
    assert live == [0, 1, 2, 3, 4] and reentered == 300


def test_add_reader_then_a_transport_on_the_same_socket():
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        sock = socket.create_connection(listener.getsockname())
        sock.setblocking(False)
        peer, _ = listener.accept()
        loop.add_reader(sock, print)
        got = loop.create_future()

        class Receiver(asyncio.Protocol):
            def data_received(self, data):
                if not got.done():
                    got.set_result(data)

        transport, _ = await loop.create_connection(Receiver, sock=sock)
        peer.sendall(b"to the transport")
        data = await asyncio.wait_for(got, 2)
        transport.close()
        await asyncio.sleep(0)
        peer.close()
        listener.close()
        return data

    assert agree(main) == b"to the transport"
