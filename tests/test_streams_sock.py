"""loop.sock_* coroutines, sock_sendfile and loop.sendfile on cxxloop."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from parity import nonblocking_pair, run


def test_tcp_round_trip_with_every_stream_method():
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, addr = await accept
        assert addr == client.getsockname()
        assert conn.gettimeout() == 0
        data = bytes(range(256)) * 4096  # 1 MiB: sock_sendall must wait for room
        send = asyncio.ensure_future(loop.sock_sendall(client, data))
        got = bytearray()
        while len(got) < len(data):
            got += await loop.sock_recv(conn, 65536)
        await send
        assert got == data
        buf = bytearray(10)
        await loop.sock_sendall(conn, b"into")
        n = await loop.sock_recv_into(client, buf)
        assert buf[:n] == b"into"
        for s in (client, conn, listener):
            s.close()

    run(main())


def test_udp_recvfrom_and_sendto():
    async def main():
        loop = asyncio.get_running_loop()
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (a, b):
            s.setblocking(False)
            s.bind(("127.0.0.1", 0))
        recv = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
        await asyncio.sleep(0.01)  # make it wait for the datagram
        assert await loop.sock_sendto(a, b"hello", b.getsockname()) == 5
        assert await recv == (b"hello", a.getsockname())
        buf = bytearray(3)
        await loop.sock_sendto(b, b"abcdef", a.getsockname())
        assert await loop.sock_recvfrom_into(a, buf) == (3, b.getsockname())
        assert buf == b"abc"
        a.close()
        b.close()

    run(main())


def test_blocking_socket_is_rejected_in_debug_mode():
    # asyncio checks for a blocking socket only in debug mode; so do we.
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        a, b = socket.socketpair()
        with a, b:
            for call in (
                loop.sock_recv(a, 1),
                loop.sock_recv_into(a, bytearray(1)),
                loop.sock_sendall(a, b"x"),
                loop.sock_accept(a),
                loop.sock_connect(a, "nowhere"),
                loop.sock_recvfrom(a, 1),
                loop.sock_sendto(a, b"x", None),
            ):
                with pytest.raises(ValueError, match="the socket must be non-blocking"):
                    await call

    run(main())


def test_connect_refused():
    async def main():
        loop = asyncio.get_running_loop()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        addr = probe.getsockname()
        probe.close()  # nothing listens there now
        client = socket.socket()
        client.setblocking(False)
        with client, pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(client, addr)
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *addr)

    run(main())


def test_recv_on_closed_peer_returns_eof():
    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()
        with a:
            recv = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0.01)
            b.close()
            assert await recv == b""

    run(main())


def test_sock_sendfile_zero_copy_and_fallback(tmp_path):
    data = bytes(range(256)) * 8192  # 2 MiB
    path = tmp_path / "blob"
    path.write_bytes(data)

    async def main():
        loop = asyncio.get_running_loop()
        a, b = nonblocking_pair()

        async def receive(n):
            got = bytearray()
            while len(got) < n:
                got += await loop.sock_recv(b, 1 << 20)
            return bytes(got)

        with a, b, open(path, "rb") as f:
            recv = asyncio.ensure_future(receive(len(data) - 100))
            assert await loop.sock_sendfile(a, f, offset=100) == len(data) - 100
            assert await recv == data[100:]
            assert f.tell() == len(data)
            # A count and an offset; then a file object os.sendfile cannot use.
            recv = asyncio.ensure_future(receive(1000))
            assert await loop.sock_sendfile(a, f, offset=5, count=1000) == 1000
            assert await recv == data[5:1005]
            import io

            recv = asyncio.ensure_future(receive(len(data)))
            assert await loop.sock_sendfile(a, io.BytesIO(data)) == len(data)
            assert await recv == data
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sock_sendfile(a, io.BytesIO(data), fallback=False)
            with pytest.raises(ValueError, match="binary mode"):
                with open(path) as text:
                    await loop.sock_sendfile(a, text)

    run(main())


def test_loop_sendfile_over_a_transport(tmp_path):
    data = b"0123456789" * 100_000
    path = tmp_path / "blob"
    path.write_bytes(data)

    async def main():
        loop = asyncio.get_running_loop()
        received = bytearray()
        done = loop.create_future()

        class Sink(asyncio.Protocol):
            def data_received(self, chunk):
                received.extend(chunk)
                if len(received) >= len(data) and not done.done():
                    done.set_result(None)

        server = await loop.create_server(Sink, "127.0.0.1", 0)
        transport, _ = await loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname())
        with open(path, "rb") as f:
            assert await loop.sendfile(transport, f) == len(data)
        await done
        assert received == data
        transport.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_unix_socket_paths(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        path = str(tmp_path / "s")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen()
        listener.setblocking(False)
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        await loop.sock_connect(client, path)
        conn, _ = await loop.sock_accept(listener)
        await loop.sock_sendall(client, b"unix")
        assert await loop.sock_recv(conn, 10) == b"unix"
        for s in (client, conn, listener):
            s.close()
        bad = socket.socket(socket.AF_UNIX)
        bad.setblocking(False)
        with bad, pytest.raises(OSError) as info:
            await loop.sock_connect(bad, str(tmp_path / "missing"))
        assert info.value.errno == errno.ENOENT

    run(main())
