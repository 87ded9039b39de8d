"""StreamTransport over real loopback TCP sockets: data paths, flow control,
half-close, errors and the exactly-once connection_lost contract."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct

import pytest

import cxxloop
from parity import Echo, Recorder, echo_server, payload, run, wait_until

SIZES = [64, 1024, 10 * 1024, 100 * 1024]


class BufferedEcho(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(4096)

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.transport.write(self.buf[:nbytes])  # a mutable slice: copied if queued


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("server_factory", [Echo, BufferedEcho], ids=["protocol", "buffered"])
def test_echo(size, server_factory):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(server_factory)
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert type(transport) is cxxloop._core.StreamTransport
        data = payload(size)
        transport.write(data)
        await wait_until(lambda: len(proto.data) >= size)
        assert bytes(proto.data) == data
        transport.close()
        assert await proto.lost is None
        assert proto.events == ["made", "data", "lost"]
        server.close()
        await server.wait_closed()

    run(main())


@pytest.mark.parametrize("size", SIZES)
def test_buffered_protocol_client_reads_into_its_buffer(size):
    class Collect(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1000)  # smaller than the data: many reads
            self.got = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint):
            assert sizehint == -1
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]
            if len(self.got) >= size:
                self.done.set_result(None)

        def connection_lost(self, exc):
            pass

    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server()
        transport, proto = await loop.create_connection(Collect, "127.0.0.1", port)
        transport.write(payload(size))
        await proto.done
        assert bytes(proto.got) == payload(size)
        transport.close()
        server.close()
        await server.wait_closed()

    run(main())


@pytest.mark.parametrize("size", SIZES)
def test_streams_echo(size):
    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload(size))
        await writer.drain()
        assert await reader.readexactly(size) == payload(size)
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_writelines_and_mutable_buffers_are_copied():
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server()
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        big = bytearray(payload(300 * 1024))
        expected = bytes(big) + b"tail" + bytes(memoryview(b"view"))
        transport.writelines([big, b"tail", memoryview(b"view")])
        big[:] = b"\0" * len(big)  # must not change what is sent
        await wait_until(lambda: len(proto.data) >= len(expected))
        assert bytes(proto.data) == expected
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_flow_control_pauses_and_resumes_writing():
    async def main():
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        class Sink(asyncio.Protocol):
            def connection_made(self, transport):
                transport.pause_reading()
                assert not transport.is_reading()
                accepted.set_result(transport)

            def data_received(self, data):
                pass

        server = await loop.create_server(Sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        server_side = await accepted
        chunk = b"x" * 65536
        while not proto.paused:
            transport.write(chunk)
            await asyncio.sleep(0)
        assert proto.paused == 1 and proto.resumed == 0
        assert transport.get_write_buffer_size() > 64 * 1024
        server_side.resume_reading()
        assert server_side.is_reading()
        await wait_until(lambda: proto.resumed)
        assert transport.get_write_buffer_size() <= 16 * 1024
        assert (proto.paused, proto.resumed) == (1, 1)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_write_buffer_limits():
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server()
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        transport.set_write_buffer_limits(high=1000)
        assert transport.get_write_buffer_limits() == (250, 1000)
        transport.set_write_buffer_limits(low=100)
        assert transport.get_write_buffer_limits() == (100, 400)
        transport.set_write_buffer_limits()
        assert transport.get_write_buffer_limits() == (16384, 65536)
        with pytest.raises(ValueError, match=r"high \(1\) must be >= low \(2\) must be >= 0"):
            transport.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=-4)
        assert transport.get_write_buffer_size() == 0
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_half_close_keeps_write_side_open():
    async def main():
        loop = asyncio.get_running_loop()

        class Replier(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                self.got = b""

            def data_received(self, data):
                self.got += data

            def eof_received(self):
                self.transport.write(b"reply:" + self.got)
                self.transport.close()
                return True

        server = await loop.create_server(Replier, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert transport.can_write_eof()
        transport.write(b"question")
        transport.write_eof()
        with pytest.raises(RuntimeError, match="Cannot call write\\(\\) after write_eof\\(\\)"):
            transport.write(b"more")
        assert await proto.lost is None
        assert bytes(proto.data) == b"reply:question"
        assert proto.events == ["made", "data", "eof", "lost"]
        server.close()
        await server.wait_closed()

    run(main())


def test_eof_received_true_keeps_transport_open():
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def factory():
            p = Recorder()
            p.keep_open = True
            return p

        transport, proto = await loop.create_connection(factory, "127.0.0.1", port)
        peer, _ = listener.accept()
        peer.shutdown(socket.SHUT_WR)
        await wait_until(lambda: proto.eof)
        assert not transport.is_closing()
        transport.write(b"still here")
        peer.settimeout(5)
        assert peer.recv(100) == b"still here"
        transport.close()
        assert await proto.lost is None
        assert peer.recv(100) == b""
        peer.close()
        listener.close()

    run(main())


def test_peer_reset_mid_write_loses_connection_once():
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        peer, _ = listener.accept()
        transport.write(b"x" * (4 * 1024 * 1024))  # more than the socket buffers take
        assert transport.get_write_buffer_size() > 0
        # SO_LINGER 0: close() sends RST instead of FIN.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        exc = await proto.lost
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
        for _ in range(10):
            transport.write(b"after")  # dropped silently, then logged
        transport.close()
        transport.abort()
        await asyncio.sleep(0.05)
        assert proto.lost_calls == 1
        assert transport.is_closing()
        assert transport.get_extra_info("socket") is not None
        listener.close()

    run(main())


def test_close_flushes_but_abort_drops():
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        size = 4 * 1024 * 1024

        async def drain(peer):
            got = 0
            while chunk := await loop.sock_recv(peer, 1 << 20):
                got += len(chunk)
            return got

        # close(): everything queued still reaches the peer.
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        peer, _ = listener.accept()
        peer.setblocking(False)
        transport.write(b"y" * size)
        transport.close()
        assert transport.is_closing()
        assert not proto.lost.done()
        assert await drain(peer) == size
        assert await proto.lost is None
        peer.close()

        # abort(): the queue is dropped and connection_lost(None) is next.
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        peer, _ = listener.accept()
        peer.setblocking(False)
        transport.write(b"z" * size)
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        assert await proto.lost is None
        try:
            got = await drain(peer)
        except ConnectionResetError:
            got = 0
        assert got < size
        assert proto.lost_calls == 1
        peer.close()
        listener.close()

    run(main())


def test_extra_info_and_nodelay():
    async def main():
        loop = asyncio.get_running_loop()
        accepted = []

        def server_side():
            accepted.append(Recorder())
            return accepted[-1]

        server, port = await echo_server(server_side)
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        sock = transport.get_extra_info("socket")
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert transport.get_extra_info("sockname") == sock.getsockname()
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        assert transport.get_extra_info("peercert") is None
        assert transport.get_extra_info("nope", 42) == 42
        assert isinstance(transport, asyncio.Transport)
        assert transport.get_protocol() is proto
        assert "fd=" in repr(transport) and "read=polling" in repr(transport)
        assert transport.is_reading()
        transport.pause_reading()
        transport.pause_reading()
        assert not transport.is_reading()
        transport.resume_reading()
        assert transport.is_reading()
        transport.close()
        assert not transport.is_reading()
        transport.close()  # idempotent
        assert await proto.lost is None
        assert "closed" in repr(transport)
        assert transport.get_protocol() is None
        # Before 3.12, wait_closed() does not wait for the server's side of
        # the connection, which would then be left open when the loop closes.
        assert await accepted[0].lost is None
        server.close()
        await server.wait_closed()

    run(main())


def test_write_rejects_bad_input():
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server()
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
            transport.write("text")
        with pytest.raises(TypeError):
            transport.writelines(["text"])
        with pytest.raises(TypeError):
            transport.writelines(42)
        with pytest.raises(TypeError):
            transport.get_extra_info()
        transport.write(b"")  # no-op
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_fd_of_a_transport_cannot_be_watched():
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server()
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        fd = transport.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match=f"File descriptor {fd} is used by transport"):
            loop.add_reader(fd, print)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.remove_writer(fd)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop._make_socket_transport(transport._sock, Recorder())
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_protocol_error_is_fatal_and_reported():
    async def main():
        loop = asyncio.get_running_loop()
        contexts = []
        loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))

        class Broken(Recorder):
            def data_received(self, data):
                raise ZeroDivisionError

        server, port = await echo_server()
        transport, proto = await loop.create_connection(Broken, "127.0.0.1", port)
        transport.write(b"ping")
        exc = await proto.lost
        assert isinstance(exc, ZeroDivisionError)
        assert len(contexts) == 1
        assert contexts[0]["message"] == "Fatal error: protocol.data_received() call failed."
        assert contexts[0]["transport"] is transport and contexts[0]["protocol"] is proto
        assert proto.lost_calls == 1
        server.close()
        await server.wait_closed()

    run(main())


def test_unclosed_transport_warns_when_loop_closes():
    loop = cxxloop.new_event_loop()
    try:
        listener = socket.create_server(("127.0.0.1", 0))

        async def connect():
            return await loop.create_connection(asyncio.Protocol, *listener.getsockname())

        transport, _ = loop.run_until_complete(connect())
        del transport
    finally:
        # The warning comes from the transport's finalizer, which the
        # collector runs once the closed loop no longer holds it.
        with pytest.warns(ResourceWarning, match="unclosed transport"):  # noqa: PT031
            loop.close()
            gc.collect()
        listener.close()
