"""The awaitables of loop.sock_*() (C++ SockOp): coroutine behaviour,
the would-block path of each call, cancellation, errors and misuse, each
compared with asyncio's own loop where the two must agree."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl

import pytest

import cxxloop
from parity import nonblocking_pair

LOOPS = {"asyncio": asyncio.SelectorEventLoop, "cxxloop": cxxloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    def run(main, *, debug=False):
        with asyncio.Runner(loop_factory=LOOPS[request.param], debug=debug) as runner:
            return runner.run(asyncio.wait_for(main(), 30))

    return run


def udp_pair():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
    return a, b


def test_sock_calls_are_coroutines_that_start_when_awaited():
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        with a, b:
            b.send(b"hello")
            op = loop.sock_recv(a, 100)
            assert asyncio.iscoroutine(op)
            # Nothing happened yet: the data is still in the socket.
            assert a.recv(100, socket.MSG_PEEK) == b"hello"
            assert await asyncio.create_task(op) == b"hello"
            assert op.__qualname__ == "Loop.sock_recv"

    cxxloop.run(main())


def test_a_sock_call_never_awaited_warns_and_consumes_nothing():
    loop = cxxloop.new_event_loop()
    a, b = nonblocking_pair()
    with a, b:
        b.send(b"x")
        # The warning comes from the coroutine's finalizer, whichever of the two runs it.
        with pytest.warns(RuntimeWarning, match="coroutine 'sock_recv' was never awaited"):  # noqa: PT031
            loop.sock_recv(a, 1)
            gc.collect()
        assert a.recv(1) == b"x"
    loop.close()


def test_coroutine_protocol_by_hand():
    loop = cxxloop.new_event_loop()
    a, b = nonblocking_pair()
    with a, b:
        b.send(b"ready")
        op = loop.sock_recv(a, 10)
        with pytest.raises(StopIteration) as stop:
            op.send(None)
        assert stop.value.value == b"ready"
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            op.send(None)
        # Waiting: send() yields the future; throw() ends the wait.
        op = loop.sock_recv(a, 10)
        future = op.send(None)
        assert isinstance(future, asyncio.Future) and future._asyncio_future_blocking
        assert loop._watched_events(a) == 1
        with pytest.raises(KeyError):
            op.throw(KeyError("thrown in"))
        assert loop._watched_events(a) == 0
        op = loop.sock_recv(a, 10)
        op.send(None)
        op.close()
        assert loop._watched_events(a) == 0
        with pytest.raises(TypeError, match="non-None value to a just-started"):
            loop.sock_recv(a, 10).send(1)
    loop.close()


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into", "sock_accept"])
def test_waiting_then_data(run, method):
    async def main():
        loop = asyncio.get_running_loop()
        if method == "sock_accept":
            listener = socket.create_server(("127.0.0.1", 0))
            listener.setblocking(False)
            task = asyncio.ensure_future(loop.sock_accept(listener))
            await asyncio.sleep(0.01)
            assert not task.done()
            client = socket.create_connection(listener.getsockname())
            conn, address = await task
            assert conn.gettimeout() == 0 and address == client.getsockname()
            for s in (conn, client, listener):
                s.close()
            return
        a, b = nonblocking_pair()
        with a, b:
            buf = bytearray(8)
            call = loop.sock_recv(a, 8) if method == "sock_recv" else loop.sock_recv_into(a, buf)
            task = asyncio.ensure_future(call)
            await asyncio.sleep(0.01)
            assert not task.done()
            b.send(b"late")
            got = await task
            assert (got if method == "sock_recv" else bytes(buf[:got])) == b"late"

    run(main)


def test_datagram_calls(run):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = udp_pair()
        with a, b:
            recv = asyncio.ensure_future(loop.sock_recvfrom(a, 100))
            await asyncio.sleep(0.01)
            assert not recv.done()
            assert await loop.sock_sendto(b, b"one", a.getsockname()) == 3
            assert await recv == (b"one", b.getsockname())
            buf = bytearray(100)
            into = asyncio.ensure_future(loop.sock_recvfrom_into(a, buf))
            await loop.sock_sendto(b, b"two", a.getsockname())
            assert await into == (3, b.getsockname())
            assert buf[:3] == b"two"
            # nbytes limits what is read; the rest of the datagram is dropped.
            await loop.sock_sendto(b, b"three", a.getsockname())
            assert await loop.sock_recvfrom_into(a, buf, 2) == (2, b.getsockname())
            assert buf[:2] == b"th"

    run(main)


def test_sendall_waits_for_room_and_keeps_the_callers_buffer(run):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        with a, b:
            data = bytearray(range(256)) * 8192  # 2 MiB
            send = asyncio.ensure_future(loop.sock_sendall(a, data))
            await asyncio.sleep(0.01)
            assert not send.done()  # the peer has not read: the socket is full
            with pytest.raises(BufferError):
                data.append(0)  # held by reference while it waits, as asyncio's memoryview
            got = bytearray()
            while len(got) < len(data):
                got += await loop.sock_recv(b, 1 << 20)
            assert await send is None
            assert got == data

    run(main)


def test_reader_and_writer_on_one_socket_at_once(run):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        with a, b:
            big = bytes(4 << 20)
            reader = asyncio.ensure_future(loop.sock_recv(a, 10))
            writer = asyncio.ensure_future(loop.sock_sendall(a, big))
            await asyncio.sleep(0.01)
            assert not reader.done() and not writer.done()
            b.send(b"ping")
            assert await reader == b"ping"
            got = 0
            while got < len(big):
                got += len(await loop.sock_recv(b, 1 << 20))
            await writer

    run(main)


def test_cancelled_recv_loses_no_data_and_stops_watching(run):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        with a, b:
            task = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not loop.remove_reader(a)  # nothing left watching
            b.send(b"kept")
            assert await loop.sock_recv(a, 10) == b"kept"

    run(main)


def test_timeout_around_a_sock_call(run):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        with a, b:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await loop.sock_recv(a, 10)
            b.send(b"after")
            assert await loop.sock_recv(a, 10) == b"after"

    run(main)


def outcome(coro_factory, loop_factory, debug=False):
    async def main():
        try:
            return ("ok", await coro_factory(asyncio.get_running_loop()))
        except Exception as exc:
            return (type(exc), str(exc))

    with asyncio.Runner(loop_factory=loop_factory, debug=debug) as runner:
        return runner.run(main())


def closed_socket():
    s = socket.socket()
    s.close()
    return s


def blocking_pair():
    return socket.socketpair()


BAD_CALLS = {
    "negative size": lambda loop, a: loop.sock_recv(a, -1),
    "size not an int": lambda loop, a: loop.sock_recv(a, "10"),
    "recv_into bytes": lambda loop, a: loop.sock_recv_into(a, b"immutable"),
    "sendall str": lambda loop, a: loop.sock_sendall(a, "text"),
    "sendto no address": lambda loop, a: loop.sock_sendto(a, b"x", None),
    "recvfrom_into bad nbytes": lambda loop, a: loop.sock_recvfrom_into(a, bytearray(4), 10),
    "accept on a connected socket": lambda loop, a: loop.sock_accept(a),
    "closed socket": lambda loop, a: loop.sock_recv(closed_socket(), 1),
    "not a socket": lambda loop, a: loop.sock_recv(object(), 1),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_input_raises_what_asyncio_raises(name):
    def attempt(loop):
        a, b = nonblocking_pair()
        b.send(b"data")

        async def go():
            try:
                return await BAD_CALLS[name](loop, a)
            finally:
                a.close()
                b.close()

        return go()

    results = {loop: outcome(attempt, factory) for loop, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"]
    assert results["cxxloop"][0] != "ok"


def test_blocking_socket_is_refused_in_debug_mode_only():
    def attempt(loop):
        a, b = blocking_pair()
        b.send(b"x")

        async def go():
            with a, b:
                return await loop.sock_recv(a, 1)

        return go()

    for debug, expected in [(True, (ValueError, "the socket must be non-blocking")), (False, ("ok", b"x"))]:
        results = {name: outcome(attempt, factory, debug) for name, factory in LOOPS.items()}
        assert results == {"asyncio": expected, "cxxloop": expected}


def test_ssl_sockets_are_refused():
    context = ssl.create_default_context()

    def attempt(loop):
        raw = socket.socket()
        wrapped = context.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)

        async def go():
            with wrapped:
                return await loop.sock_recv(wrapped, 1)

        return go()

    results = {name: outcome(attempt, factory) for name, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"] == (TypeError, "Socket cannot be of type SSLSocket")


def test_a_transports_socket_is_refused_once_the_call_would_block():
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        with b, pytest.raises(RuntimeError, match="is used by transport"):
            await loop.sock_recv(a, 1)
        transport.close()

    cxxloop.run(main())


def test_loop_closed_while_a_call_waits(caplog):
    loop = cxxloop.new_event_loop()
    a, b = nonblocking_pair()
    with a, b:
        task = loop.create_task(loop.sock_recv(a, 1))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert not task.done()
        loop.close()
        del task
        gc.collect()
    assert "Task was destroyed but it is pending" in caplog.text
