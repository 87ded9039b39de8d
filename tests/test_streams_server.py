"""Servers on cxxloop: asyncio's Server over the loop's accept hooks, Unix
sockets, connect_accepted_socket, accept back-off, 10,000 connections,
and aiohttp."""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import subprocess
import sys
import textwrap

import pytest

from parity import Echo, open_fds, require, run


def test_server_lifecycle():
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        assert server.get_loop() is loop
        await server.start_serving()
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        await writer.wait_closed()
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        assert not server.is_serving()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    run(main())


def test_server_async_with_and_multiple_hosts():
    async def main():
        loop = asyncio.get_running_loop()
        async with await loop.create_server(Echo, ["127.0.0.1", "127.0.0.2"], 0, reuse_address=True) as server:
            assert len(server.sockets) == 2
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(b"hi")
                assert await reader.readexactly(2) == b"hi"
                writer.close()
                await writer.wait_closed()
        assert not server.is_serving()

    run(main())


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Server.close_clients/abort_clients are 3.13+")
@pytest.mark.parametrize("method", ["close_clients", "abort_clients"])
def test_server_close_and_abort_clients(method):
    async def main():
        server_writers = []  # a dropped StreamWriter would close its transport
        server = await asyncio.start_server(lambda r, w: server_writers.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.01)
        server.close()
        wait = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.01)
        assert not wait.done()  # clients still attached
        getattr(server, method)()
        await wait
        for reader, writer in conns:
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                assert method == "abort_clients"
            writer.close()

    run(main())


def test_unix_server_and_connection(tmp_path):
    path = tmp_path / "echo.sock"

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(Echo, path)
        assert path.exists()
        reader, writer = await asyncio.open_unix_connection(path)
        assert writer.get_extra_info("peername") == str(path)
        writer.write(b"x" * 100_000)
        assert await reader.readexactly(100_000) == b"x" * 100_000
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        if sys.version_info >= (3, 13):
            assert not path.exists()  # cleanup_socket, new in 3.13
        else:
            assert path.exists()  # asyncio before 3.13 leaves the file
        # A stale socket file is replaced; errors have asyncio's messages.
        stale = socket.socket(socket.AF_UNIX)
        path.unlink(missing_ok=True)
        stale.bind(str(path))
        stale.close()
        keep = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
        server = await loop.create_unix_server(Echo, path, **keep)
        server.close()
        await server.wait_closed()
        assert path.exists()
        with socket.socket() as tcp, pytest.raises(ValueError, match="path and sock can not be specified"):
            await loop.create_unix_server(Echo, path, sock=tcp)
        with pytest.raises(ValueError, match="no path and sock were specified"):
            await loop.create_unix_connection(Echo)
        with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
            with socket.socket() as tcp:
                await loop.create_unix_connection(Echo, sock=tcp)
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(Echo, tmp_path / "missing")

    run(main())


def test_connect_accepted_socket():
    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        transport, proto = await loop.connect_accepted_socket(Echo, a)
        b.setblocking(False)
        await loop.sock_sendall(b, b"echo me")
        assert await loop.sock_recv(b, 100) == b"echo me"
        assert transport.get_extra_info("peername") == ""  # unnamed socketpair end
        transport.close()
        assert await loop.sock_recv(b, 100) == b""
        b.close()

    run(main())


def test_accept_backs_off_on_emfile(monkeypatch):
    monkeypatch.setattr(asyncio.constants, "ACCEPT_RETRY_DELAY", 0.05)

    class Exhausted(socket.socket):
        failures = 2

        def accept(self):
            if Exhausted.failures:
                Exhausted.failures -= 1
                raise OSError(errno.EMFILE, "Too many open files")
            return super().accept()

    async def main():
        loop = asyncio.get_running_loop()
        contexts = []
        loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
        listener = Exhausted(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = await loop.create_server(Echo, sock=listener)
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        writer.write(b"eventually")
        assert await reader.readexactly(10) == b"eventually"
        assert [c["message"] for c in contexts] == ["socket.accept() out of system resource"] * 2
        assert contexts[0]["exception"].errno == errno.EMFILE
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


CLIENTS = textwrap.dedent(
    """
    import asyncio, resource, sys, cxxloop
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, n = int(sys.argv[1]), int(sys.argv[2])
    async def one(i, sem):
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        msg = b"%d;" % i
        writer.write(msg)
        assert await reader.readexactly(len(msg)) == msg
        return writer
    async def main():
        sem = asyncio.Semaphore(500)
        writers = await asyncio.gather(*(one(i, sem) for i in range(n)))
        print(len(writers), flush=True)
        for w in writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in writers))
    cxxloop.run(main())
    """
)


def test_ten_thousand_concurrent_connections_no_fd_leak():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 10_000
    if hard < n + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {n + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:

        async def main():
            loop = asyncio.get_running_loop()
            live = 0
            peak = 0

            class Counting(Echo):
                def connection_made(self, transport):
                    nonlocal live, peak
                    super().connection_made(transport)
                    live += 1
                    peak = max(peak, live)

                def connection_lost(self, exc):
                    nonlocal live
                    live -= 1

            server = await loop.create_server(Counting, "127.0.0.1", 0, backlog=4096)
            port = server.sockets[0].getsockname()[1]
            # The clients run in a child process: 2 x 10,000 fds would not
            # fit one process's limit. The child is waited for in a thread,
            # so this test does not depend on the loop's subprocesses.
            child = subprocess.Popen([sys.executable, "-c", CLIENTS, str(port), str(n)], stdout=subprocess.PIPE)
            out, _ = await loop.run_in_executor(None, child.communicate)
            assert child.returncode == 0
            assert int(out) == n
            while live:
                await asyncio.sleep(0.01)
            assert peak == n
            server.close()
            await server.wait_closed()

        before = len(open_fds())
        run(main(), timeout=90)
        assert len(open_fds()) == before
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_aiohttp_server_and_client():
    aiohttp = require("aiohttp")
    from aiohttp import web

    async def main():
        async def hello(request):
            body = await request.read()
            return web.json_response({"echo": body.decode(), "path": request.path})

        app = web.Application()
        app.router.add_post("/{tail:.*}", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            for i in range(20):
                async with session.post(f"http://127.0.0.1:{port}/item/{i}", data=b"x" * (i * 1000)) as resp:
                    assert resp.status == 200
                    assert await resp.json() == {"echo": "x" * (i * 1000), "path": f"/item/{i}"}
        await runner.cleanup()

    run(main())
