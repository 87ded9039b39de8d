"""The contextvars.Context each protocol callback runs in.

asyncio runs a transport's callbacks in the context its handles were made
in: a copy of the one current when the transport was created (3.15 passes
the transport one explicitly), never the context of whoever runs the
loop. Each scenario records what a ContextVar holds in every callback and
must record the same on asyncio's loop and on cxxloop; the values set
inside callbacks must not leak to the next connection or to the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import socket
import sys
import weakref

from parity import LOOPS, agree

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class Tagging(asyncio.Protocol):
    """Records var in each callback, then sets it to name the callback."""

    def __init__(self, log, name):
        self.log = log
        self.name = name
        self.lost = asyncio.get_running_loop().create_future()

    def _see(self, callback):
        self.log.append((self.name, callback, var.get()))
        var.set(f"{self.name}:{callback}")

    def connection_made(self, transport):
        self.transport = transport
        self._see("made")

    def data_received(self, data):
        self._see("data")
        if data == b"bye":
            self.transport.close()

    def eof_received(self):
        self._see("eof")

    def connection_lost(self, exc):
        self._see("lost")
        self.lost.set_result(None)


def test_server_connections_do_not_share_what_their_callbacks_set():
    async def main():
        log = []
        loop = asyncio.get_running_loop()
        var.set("server-start")
        count = iter(range(100))
        server = await loop.create_server(lambda: Tagging(log, f"conn{next(count)}"), "127.0.0.1", 0)
        var.set("after-start")
        port = server.sockets[0].getsockname()[1]
        for message in (b"hello", b"bye"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(message)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return log, var.get()

    log, caller_sees = agree(main)
    assert caller_sees == "after-start"
    # Each connection starts from the server's context, not the last one's.
    assert ("conn1", "made", "server-start") in log
    assert var.get() == "unset"


def test_client_callbacks_run_in_a_copy_of_the_creating_context():
    async def main():
        log = []
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        var.set("creator")
        transport, protocol = await loop.create_connection(lambda: Tagging(log, "client"), *listener.getsockname())
        peer, _ = listener.accept()
        peer.sendall(b"one")
        await asyncio.sleep(0.05)
        peer.sendall(b"two")
        await asyncio.sleep(0.05)
        peer.shutdown(socket.SHUT_WR)  # eof_received, then close: connection_lost
        await protocol.lost
        peer.close()
        listener.close()
        return log, var.get()

    log, caller_sees = agree(main)
    assert caller_sees == "creator"
    assert log[1] == ("client", "data", log[1][2]) and log[1][2] != "unset"
    assert ("client", "data", "client:data") in log  # what the first read set, the second sees


class BufferedTagging(asyncio.BufferedProtocol):
    def __init__(self, log):
        self.log = log
        self.buf = bytearray(64)
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        self.log.append(("get_buffer", var.get()))
        var.set("get_buffer")
        return self.buf

    def buffer_updated(self, nbytes):
        self.log.append(("buffer_updated", var.get()))
        var.set("buffer_updated")

    def eof_received(self):
        self.log.append(("eof", var.get()))

    def connection_lost(self, exc):
        self.log.append(("lost", var.get()))
        self.lost.set_result(None)


def test_buffered_protocol_callbacks():
    async def main():
        log = []
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        var.set("creator")
        transport, protocol = await loop.create_connection(lambda: BufferedTagging(log), *listener.getsockname())
        peer, _ = listener.accept()
        for chunk in (b"a", b"b"):
            peer.sendall(chunk)
            await asyncio.sleep(0.05)
        peer.close()
        await protocol.lost
        listener.close()
        return log, var.get()

    log, caller_sees = agree(main)
    assert caller_sees == "creator"
    assert ("get_buffer", "buffer_updated") in log


class DatagramTagging(asyncio.DatagramProtocol):
    def __init__(self, log):
        self.log = log
        self.done = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        self.log.append(("datagram", var.get()))
        var.set("datagram")
        if data == b"2" and not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc):
        self.log.append(("error", var.get()))


def test_datagram_callbacks():
    async def main():
        log = []
        loop = asyncio.get_running_loop()
        var.set("creator")
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: DatagramTagging(log), local_addr=("127.0.0.1", 0)
        )
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for data in (b"1", b"2"):
            sender.sendto(data, transport.get_extra_info("sockname"))
            await asyncio.sleep(0.02)
        await protocol.done
        sender.close()
        transport.close()
        await asyncio.sleep(0)
        return log, var.get()

    log, caller_sees = agree(main)
    assert caller_sees == "creator"
    assert log == [("datagram", "creator"), ("datagram", "datagram")]


def test_pipe_callbacks():
    async def main():
        log = []
        loop = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        var.set("creator")
        transport, protocol = await loop.connect_read_pipe(lambda: Tagging(log, "pipe"), os.fdopen(rfd, "rb", 0))
        os.write(wfd, b"x")
        await asyncio.sleep(0.05)
        os.close(wfd)
        await protocol.lost
        return log, var.get()

    log, caller_sees = agree(main)
    assert caller_sees == "creator"
    assert ("pipe", "data", "creator") in log


class SubprocessTagging(asyncio.SubprocessProtocol):
    def __init__(self, log):
        self.log = log
        self.exited = asyncio.get_running_loop().create_future()

    def pipe_data_received(self, fd, data):
        self.log.append(("pipe_data", fd, var.get()))
        var.set("pipe_data")

    def process_exited(self):
        self.log.append(("exited", var.get()))
        self.exited.set_result(None)


def test_subprocess_protocol_callbacks():
    async def main():
        log = []
        loop = asyncio.get_running_loop()
        var.set("creator")
        transport, protocol = await loop.subprocess_exec(
            # One write, so one pipe_data_received.
            lambda: SubprocessTagging(log), sys.executable, "-c", "import os; os.write(1, b'hi')", stdin=None,
            stderr=None
        )
        await protocol.exited
        transport.close()
        return sorted(log), var.get()

    log, caller_sees = agree(main)
    assert caller_sees == "creator"
    assert ("pipe_data", 1, "creator") in log


def test_nothing_leaks_into_the_caller_of_run():
    import cxxloop

    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        log = []
        transport, protocol = await loop.create_connection(lambda: Tagging(log, "c"), *listener.getsockname())
        peer, _ = listener.accept()
        peer.sendall(b"bye")
        await protocol.lost
        peer.close()
        listener.close()

    cxxloop.run(main())
    assert var.get() == "unset"


def test_the_context_is_released_at_connection_lost():
    """The transport lets go of the connection's context (and what its
    variables hold) when asyncio's does: at connection_lost before 3.15,
    whose transports keep theirs for as long as they live."""
    holder = contextvars.ContextVar("holder")

    class Held:
        pass

    async def connect(loop, sock):
        return await loop.connect_accepted_socket(asyncio.Protocol, sock)

    def scenario(factory):
        loop = factory()
        try:
            a, b = socket.socketpair()
            held = Held()
            alive = weakref.ref(held)
            context = contextvars.copy_context()
            context.run(holder.set, held)
            del held
            task = loop.create_task(connect(loop, a), context=context)
            del context
            transport, _ = loop.run_until_complete(task)
            del task
            transport.close()
            loop.run_until_complete(asyncio.sleep(0.01))
            gc.collect()
            released = alive() is None  # the application still holds the closed transport
            b.close()
            return released
        finally:
            loop.close()

    results = {name: scenario(f) for name, f in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"]
    assert results["cxxloop"] is (sys.version_info < (3, 15))
