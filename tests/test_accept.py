"""The C++ accept loop of plain servers (stream_accept.cpp): what each
accepted connection looks like, failures while setting one up, a burst of
connections, and real fd exhaustion (EMFILE) with asyncio's back-off."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap

import pytest

import cxxloop
from parity import run


class Keep(asyncio.Protocol):
    made: list[asyncio.Transport] = []

    def connection_made(self, transport):
        Keep.made.append(transport)


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_accepted_connections_are_plain_nonblocking_sockets(family, tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        Keep.made = []
        if family == "tcp":
            server = await loop.create_server(Keep, "127.0.0.1", 0)
            client = socket.create_connection(server.sockets[0].getsockname())
        else:
            path = str(tmp_path / "s")
            server = await loop.create_unix_server(Keep, path)
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
        with client:
            while not Keep.made:
                await asyncio.sleep(0.001)
            transport = Keep.made[0]
            assert type(transport) is cxxloop._core.StreamTransport
            conn = transport.get_extra_info("socket")
            assert conn.type == socket.SOCK_STREAM and conn.family == client.family
            assert conn.gettimeout() == 0
            assert not conn.get_inheritable()  # close-on-exec from accept4
            assert transport.get_extra_info("peername") == client.getsockname()
            transport.close()
        server.close()
        await server.wait_closed()

    run(main())


@pytest.mark.parametrize("debug", [False, True])
def test_failing_protocol_factory_closes_the_connection_and_keeps_serving(debug):
    async def main():
        loop = asyncio.get_running_loop()
        contexts = []
        loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
        calls = 0

        def factory():
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ZeroDivisionError("no protocol")
            return Keep()

        Keep.made = []
        server = await loop.create_server(factory, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*address)
        assert await reader.read() == b""  # closed by the server at once
        writer.close()
        reader, writer = await asyncio.open_connection(*address)
        while not Keep.made:
            await asyncio.sleep(0.001)
        writer.close()
        Keep.made[0].close()
        server.close()
        await server.wait_closed()
        return contexts

    contexts = run(main(), debug=debug)
    # Like asyncio's _accept_connection2: reported in debug mode only.
    if debug:
        assert [c["message"] for c in contexts] == ["Error on transport creation for incoming connection"]
        assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    else:
        assert contexts == []


def test_a_burst_larger_than_the_backlog_is_all_accepted():
    async def main():
        loop = asyncio.get_running_loop()
        Keep.made = []
        server = await loop.create_server(Keep, "127.0.0.1", 0, backlog=8)
        address = server.sockets[0].getsockname()
        clients = []
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            await loop.sock_connect(s, address)
            clients.append(s)
        while len(Keep.made) < 200:
            await asyncio.sleep(0.001)
        for t in Keep.made:
            t.close()
        for s in clients:
            s.close()
        server.close()
        await server.wait_closed()

    run(main())


EMFILE_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, resource, socket, time, cxxloop

    async def main():
        loop = asyncio.get_running_loop()
        contexts = []
        loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
        class Hello(asyncio.Protocol):
            def connection_made(self, transport):
                transport.write(b"hi")
                transport.close()
        server = await loop.create_server(Hello, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()
        # Use up every fd this process may open, then connect from outside
        # the limit's reach: a blocking client socket opened beforehand.
        client = socket.socket()
        hoard = []
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            while True:
                hoard.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        client.setblocking(False)
        try:
            client.connect(address)
        except BlockingIOError:
            pass
        cpu0 = time.process_time()
        await asyncio.sleep(0.3)  # accept fails: the loop must back off, not spin
        cpu = time.process_time() - cpu0
        for fd in hoard:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        # Served once the retry delay has passed.
        data = await asyncio.wait_for(loop.sock_recv(client, 2), 10)
        client.close()
        server.close()
        await server.wait_closed()
        messages = sorted({c["message"] for c in contexts})
        print(messages, contexts[0]["exception"].errno, data, cpu < 0.2)

    cxxloop.run(main())
    """
)


def test_real_emfile_backs_off_and_recovers():
    out = subprocess.run(
        [sys.executable, "-c", EMFILE_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['socket.accept() out of system resource'] 24 b'hi' True", out
