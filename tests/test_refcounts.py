"""Every path through the C++ core returns the references it takes.

Each check schedules with sentinel objects many times over one path and
asserts the sentinels' reference counts come back to where they started.
"""

import asyncio
import contextvars
import gc
import os
import socket
import sys

import pytest

import cxxloop

ROUNDS = 200


class Sentinel:
    def __call__(self, *args):
        return None


def _refs(*objs):
    gc.collect()
    return [sys.getrefcount(o) for o in objs]


def check_balanced(loop, path):
    callback, arg, ctx = Sentinel(), Sentinel(), contextvars.copy_context()
    path(loop, callback, arg, ctx)  # warm up caches and lazily built state
    before = _refs(callback, arg, ctx)
    for _ in range(ROUNDS):
        path(loop, callback, arg, ctx)
    assert _refs(callback, arg, ctx) == before


def spin(loop):
    loop.run_until_complete(asyncio.sleep(0))


def run_soon(loop, cb, arg, ctx):
    loop.call_soon(cb, arg, context=ctx)
    spin(loop)


def cancel_soon(loop, cb, arg, ctx):
    loop.call_soon(cb, arg, context=ctx).cancel()
    spin(loop)


def run_threadsafe(loop, cb, arg, ctx):
    loop.call_soon_threadsafe(cb, arg, context=ctx)
    spin(loop)


def run_timer(loop, cb, arg, ctx):
    loop.call_later(0, cb, arg, context=ctx)
    loop.run_until_complete(asyncio.sleep(0.0001))


def cancel_timer(loop, cb, arg, ctx):
    loop.call_at(loop.time() + 100, cb, arg, context=ctx).cancel()
    spin(loop)


def failing_callback(loop, cb, arg, ctx):
    def boom(a):
        raise ValueError(a)

    loop.set_exception_handler(lambda lp, context: None)
    loop.call_soon(boom, arg, context=ctx)
    spin(loop)
    loop.set_exception_handler(None)


def reader_replace_and_remove(loop, cb, arg, ctx):
    r, w = os.pipe()
    try:
        loop.add_reader(r, cb, arg)
        loop.add_reader(r, cb, arg)
        loop.add_writer(w, cb, arg)
        os.write(w, b"x")
        spin(loop)
        loop.remove_reader(r)
        loop.remove_writer(w)
    finally:
        os.close(r)
        os.close(w)


def task_and_future(loop, cb, arg, ctx):
    async def body(a):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, a)
        return await fut

    loop.run_until_complete(loop.create_task(body(arg), name="t", context=ctx))


def debug_mode_paths(loop, cb, arg, ctx):
    loop.set_debug(True)
    loop.call_soon(cb, arg, context=ctx).cancel()
    loop.call_soon(cb, arg, context=ctx)
    spin(loop)
    loop.set_debug(False)


def rejected_calls(loop, cb, arg, ctx):
    for call in (
        lambda: loop.call_soon(42, arg, context=ctx),
        lambda: loop.call_later(None, cb, arg),
        lambda: loop.call_at(float("nan"), cb, arg),
        lambda: loop.call_soon(cb, arg, context=arg),
        lambda: loop.add_reader(-1, cb, arg),
    ):
        with pytest.raises((TypeError, ValueError)):
            call()


PATHS = [
    run_soon,
    cancel_soon,
    run_threadsafe,
    run_timer,
    cancel_timer,
    failing_callback,
    reader_replace_and_remove,
    task_and_future,
    debug_mode_paths,
    rejected_calls,
]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__)
def test_references_balanced(loop, path):
    check_balanced(loop, path)


def test_close_with_pending_work_releases_everything():
    callback, arg, ctx = Sentinel(), Sentinel(), contextvars.copy_context()
    before = _refs(callback, arg, ctx)
    for _ in range(20):
        loop = cxxloop.new_event_loop()
        r, w = os.pipe()
        loop.call_soon(callback, arg, context=ctx)
        loop.call_later(10, callback, arg, context=ctx)
        loop.add_reader(r, callback, arg)
        loop.set_task_factory(callback)
        loop.close()
        os.close(r)
        os.close(w)
        del loop
    assert _refs(callback, arg, ctx) == before


def test_timer_compaction_releases_cancelled_timers(loop):
    callback, arg = Sentinel(), Sentinel()
    before = _refs(callback, arg)
    handles = [loop.call_later(1000, callback, arg) for _ in range(1000)]
    for h in handles:
        h.cancel()
    del handles, h
    spin(loop)
    assert loop._timer_cancelled_count == 0
    assert _refs(callback, arg) == before


class _Protocol(asyncio.Protocol):
    def connection_lost(self, exc):
        self.lost = exc


def test_stream_transport_returns_data_and_protocol_references(loop, tmp_path):
    """Writes queued by reference, writelines, a native sendfile behind
    queued data, close: the data, the protocol and the file end where they
    started."""
    data = bytes(300_000)  # more than one send takes: queued by reference
    protocol = _Protocol()
    path = tmp_path / "file"
    path.write_bytes(b"x" * 100_000)
    expected = 3 * len(data) + 100_000

    async def one_connection(f):
        a, b = socket.socketpair()
        with b:
            b.setblocking(False)
            transport, _ = await loop.create_connection(lambda: protocol, sock=a)
            transport.write(data)
            transport.writelines([data, data])
            sending = asyncio.ensure_future(loop.sendfile(transport, f, 0, fallback=False))
            got = 0
            while got < expected:
                got += len(await loop.sock_recv(b, 65536))
            assert await sending == 100_000
            transport.close()
            await asyncio.sleep(0)

    with open(path, "rb") as f:
        loop.run_until_complete(one_connection(f))  # warm up
        before = _refs(data, protocol, f)
        for _ in range(20):
            loop.run_until_complete(one_connection(f))
        assert _refs(data, protocol, f) == before


def test_sock_ops_return_socket_and_data_references(loop):
    """Immediate and waiting sock_* calls, a partial sendall, a cancelled
    wait: the sockets, the data and the buffers end where they started."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    data = bytes(3_000_000)  # more than the socket buffers: sendall waits
    buf = bytearray(100)

    async def rounds():
        b.send(b"now")
        await loop.sock_recv(a, 10)  # immediate
        waiting = asyncio.ensure_future(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0)
        b.send(b"later")
        await waiting
        send = asyncio.ensure_future(loop.sock_sendall(a, data))
        got = 0
        while got < len(data):
            got += len(await loop.sock_recv(b, 1 << 20))
        await send
        cancelled = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    with a, b:
        loop.run_until_complete(rounds())  # warm up
        before = _refs(a, b, data, buf)
        for _ in range(20):
            loop.run_until_complete(rounds())
        assert _refs(a, b, data, buf) == before


def test_datagram_transport_returns_data_address_and_protocol_references(loop, tmp_path):
    """Immediate and queued datagrams (to a Unix path the peer does not
    read yet), a connected IPv4 exchange, close: the data, the address and
    the protocol end where they started."""
    data = bytes(1000)
    protocol = asyncio.DatagramProtocol()
    reader_path = str(tmp_path / "reader")

    async def one_endpoint():
        received = []

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, d, addr):
                received.append(len(d))

        reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reader.bind(reader_path)
        with reader:
            reader.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: protocol, remote_addr=reader_path, family=socket.AF_UNIX)
            for _ in range(50):  # the peer's queue holds fewer: the rest wait
                transport.sendto(data)
            assert transport.get_write_buffer_size() > 0
            got = 0
            while got < 50:
                try:
                    got += len(reader.recv(2000)) // len(data)
                except BlockingIOError:
                    await asyncio.sleep(0)
            transport.close()
        os.unlink(reader_path)
        server, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        client, _ = await loop.create_datagram_endpoint(lambda: protocol,
                                                        remote_addr=server.get_extra_info("sockname"))
        for _ in range(10):
            client.sendto(data)
        while len(received) < 10:
            await asyncio.sleep(0)
        client.close()
        server.close()
        await asyncio.sleep(0)

    loop.run_until_complete(one_endpoint())  # warm up
    before = _refs(data, protocol)
    for _ in range(10):
        loop.run_until_complete(one_endpoint())
    assert _refs(data, protocol) == before


def test_pipe_transports_return_data_pipe_and_protocol_references(loop):
    """A write pipe with queued data closed after the flush, a read pipe
    read to EOF: the data, the protocol and the file objects end where
    they started."""
    data = bytes(300_000)  # more than a pipe holds: queued by reference
    protocol = asyncio.Protocol()

    async def one_pipe():
        r, w = os.pipe()
        rf, wf = os.fdopen(r, "rb", 0), os.fdopen(w, "wb", 0)
        reader = _Protocol()
        rt, _ = await loop.connect_read_pipe(lambda: reader, rf)
        wt, _ = await loop.connect_write_pipe(lambda: protocol, wf)
        wt.write(data)
        wt.close()
        while not rt.is_closing():
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        return rf, wf

    loop.run_until_complete(one_pipe())  # warm up
    before = _refs(data, protocol)
    for _ in range(20):
        files = loop.run_until_complete(one_pipe())
        assert all(f.closed for f in files)
    assert _refs(data, protocol) == before
