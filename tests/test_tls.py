"""TLS on cxxloop: which implementation takes a connection, and the parts
of the C++ TLS transport only cxxloop has.

Every ssl= path (create_connection / create_server, the Unix variants,
connect_accepted_socket, start_tls) runs on the C++ TLS transport, and
each falls back to asyncio's sslproto over the C++ socket transport where
the TLS transport cannot take the connection; both are checked here. What
the TLS transport does, compared with asyncio's, is in test_tls_parity.py.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import threading
import weakref

import pytest

import cxxloop
from cxxloop import _core
from parity import run, stream_echo


async def echo_round_trip(server_ctx, client_ctx, payload=b"hello", **connect):
    """Echoes `payload` over a TLS stream; returns (client transport type,
    server transport type)."""
    accepted = []

    async def handle(reader, writer):
        accepted.append(type(writer.transport))
        await stream_echo(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost", **connect)
    writer.write(payload)
    await writer.drain()
    assert await reader.readexactly(len(payload)) == payload
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return type(writer.transport), accepted[0]


@pytest.mark.parametrize("size", [1, 64 * 1024, 8 * 1024 * 1024])
def test_tls_echo_runs_on_the_cxx_tls_transport(contexts, size):
    server_ctx, client_ctx = contexts
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert run(echo_round_trip(server_ctx, client_ctx, data)) == (_core.SSLTransport, _core.SSLTransport)


def test_the_tls_library_is_found_here():
    # This machine's CPython links _ssl against a shared libssl: if the
    # transport cannot reach it, every TLS test here would silently test
    # the fallback instead.
    loop = cxxloop.new_event_loop()
    try:
        assert loop._tls_unavailable() is None
    finally:
        loop.close()


def test_environment_variable_selects_asyncios_tls(contexts, monkeypatch):
    monkeypatch.setenv("CXXLOOP_TLS", "sslproto")
    server_ctx, client_ctx = contexts
    client, accepted = run(echo_round_trip(server_ctx, client_ctx, b"x" * 100_000))
    assert client.__name__ == accepted.__name__ == "_SSLProtocolTransport"


def test_a_context_with_a_message_callback_gets_asyncios_tls(contexts):
    server_ctx, client_ctx = contexts
    seen = []
    client_ctx = ssl.create_default_context(cafile=None)
    client_ctx.load_verify_locations(cadata=contexts[1].get_ca_certs(binary_form=True)[0])
    client_ctx._msg_callback = lambda *args: seen.append(args[2])
    client, accepted = run(echo_round_trip(server_ctx, client_ctx))
    assert client.__name__ == "_SSLProtocolTransport"
    assert accepted is _core.SSLTransport
    assert seen  # the callback saw the handshake


def test_a_context_with_its_own_sslobject_class_gets_asyncios_tls(contexts):
    server_ctx, client_ctx = contexts
    made = []

    class Recording(ssl.SSLObject):
        def do_handshake(self):
            made.append(self)
            return super().do_handshake()

    client_ctx = ssl.create_default_context()
    client_ctx.load_verify_locations(cadata=contexts[1].get_ca_certs(binary_form=True)[0])
    client_ctx.sslobject_class = Recording
    client, _ = run(echo_round_trip(server_ctx, client_ctx))
    assert client.__name__ == "_SSLProtocolTransport"
    assert made


def test_a_socket_subclass_gets_asyncios_tls(contexts):
    server_ctx, client_ctx = contexts

    class Sock(socket.socket):
        pass

    async def main():
        server = await asyncio.start_server(stream_echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        sock = Sock(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, ssl=client_ctx, server_hostname="localhost")
        writer.write(b"sub")
        assert await reader.readexactly(3) == b"sub"
        kind = type(writer.transport).__name__
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return kind

    assert run(main()) == "_SSLProtocolTransport"


def test_an_unreachable_tls_library_gets_asyncios_tls(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        asyncio.get_running_loop()._tls_unavailable = lambda: "not here"
        return await echo_round_trip(server_ctx, client_ctx)

    client, accepted = run(main())
    assert client.__name__ == accepted.__name__ == "_SSLProtocolTransport"


def test_the_transport_refuses_ssl_objects_it_cannot_drive(contexts):
    """_make_tls_transport checks the SSLObject is one wrap_bio() made over
    exactly the two MemoryBIOs given; anything else is None, and the socket
    is left alone."""
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        bio_in, bio_out, other = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        sslobj = client_ctx.wrap_bio(bio_in, bio_out, server_hostname="localhost")
        args = (asyncio.Protocol(), None, None, None, client_ctx, None, None, None, 60.0, 30.0, None)
        refused = [
            (sslobj, bio_in, other),  # not its BIOs
            (sslobj, other, bio_out),
            (object(), bio_in, bio_out),  # not an SSLObject
            (sslobj, bio_in, object()),  # not a MemoryBIO
        ]
        results = []
        for obj, incoming, outgoing in refused:
            results.append(loop._make_tls_transport(
                a, args[0], obj, incoming, outgoing, *args[4:]))
        assert results == [None] * len(refused)
        a.send(b"still mine")
        assert b.recv(100) == b"still mine"
        a.close()
        b.close()

    run(main())


def test_start_tls_takes_the_socket_transport_over(contexts):
    server_ctx, client_ctx = contexts
    seen = {}

    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        plain = writer.transport
        await writer.start_tls(server_ctx)
        seen["server"] = (type(plain), type(writer.transport))
        assert await reader.readline() == b"secret\n"
        writer.write(b"over tls\n")
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        plain = writer.transport
        await writer.start_tls(client_ctx, server_hostname="localhost")
        seen["client"] = (type(plain), type(writer.transport))
        assert writer.get_extra_info("ssl_object") is not None
        # The plain transport is the connection under the TLS one: it
        # reports closing as the connection does.
        assert not plain.is_closing()
        writer.write(b"secret\n")
        assert await reader.readline() == b"over tls\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        assert plain.is_closing()
        server.close()
        await server.wait_closed()

    run(main())
    assert seen == {
        "client": (_core.StreamTransport, _core.SSLTransport),
        "server": (_core.StreamTransport, _core.SSLTransport),
    }


def test_closing_the_transport_under_start_tls_closes_the_connection(contexts):
    """As with asyncio, close() on the transport start_tls was given closes
    the connection the TLS transport runs over: the TLS protocol sees
    connection_lost, and a server's close_clients() reaches it."""
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        upgraded = loop.create_future()

        class Upgrading(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                self.upgrading = asyncio.ensure_future(self.upgrade())

            async def upgrade(self):
                tls = await loop.start_tls(self.transport, self, server_ctx, server_side=True)
                upgraded.set_result((self.transport, tls))

            def connection_lost(self, exc):
                self.lost = exc

        server = await loop.create_server(Upgrading, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await writer.start_tls(client_ctx, server_hostname="localhost")
        plain, tls = await upgraded
        assert type(tls) is _core.SSLTransport
        plain.close()
        assert await reader.read() == b""
        await asyncio.sleep(0.05)
        assert tls.is_closing()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_start_tls_over_a_tls_transport_is_tls_in_tls(contexts):
    """start_tls on a TLS transport (an HTTPS proxy's tunnel) runs asyncio's
    sslproto over the C++ TLS transport."""
    server_ctx, client_ctx = contexts

    async def inner_server(reader, writer):
        # The proxy end: TLS inside TLS.
        await writer.start_tls(server_ctx)
        await stream_echo(reader, writer)

    async def main():
        server = await asyncio.start_server(inner_server, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        outer = writer.transport
        await writer.start_tls(client_ctx, server_hostname="localhost")
        kinds = (type(outer), type(writer.transport).__name__)
        writer.write(b"inside" * 10000)
        assert await reader.readexactly(60000) == b"inside" * 10000
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return kinds

    assert run(main()) == (_core.SSLTransport, "_SSLProtocolTransport")


def test_unix_sockets_and_accepted_sockets_with_tls(contexts, tmp_path):
    """ssl= on create_unix_server / create_unix_connection and on
    connect_accepted_socket, each on the C++ TLS transport."""
    server_ctx, client_ctx = contexts
    path = str(tmp_path / "tls.sock")

    async def main():
        loop = asyncio.get_running_loop()
        server = await asyncio.start_unix_server(stream_echo, path, ssl=server_ctx)
        reader, writer = await asyncio.open_unix_connection(path, ssl=client_ctx, server_hostname="localhost")
        writer.write(b"over unix")
        assert await reader.readexactly(9) == b"over unix"
        assert type(writer.transport) is _core.SSLTransport
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]
        connecting = asyncio.ensure_future(
            asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"))
        accepted, _ = await loop.sock_accept(listener)
        listener.close()
        received = loop.create_future()

        class Server(asyncio.Protocol):
            def data_received(self, data):
                received.set_result(data)

        server_transport, _ = await loop.connect_accepted_socket(Server, accepted, ssl=server_ctx)
        reader, writer = await connecting
        writer.write(b"accepted")
        assert await received == b"accepted"
        assert type(server_transport) is _core.SSLTransport
        writer.close()
        server_transport.close()
        await writer.wait_closed()

    run(main())


def test_shutdown_does_not_hang_on_a_silent_peer(contexts):
    """The peer completes the handshake and then never answers close_notify:
    close() finishes within ssl_shutdown_timeout."""
    server_ctx, client_ctx = contexts
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    release = threading.Event()

    def silent_peer():
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True):
            release.wait(30)  # never reads the close_notify

    peer = threading.Thread(target=silent_peer)
    peer.start()

    async def main():
        loop = asyncio.get_running_loop()
        lost = loop.create_future()

        class Client(asyncio.Protocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

        transport, _ = await loop.create_connection(
            Client, "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost",
            ssl_shutdown_timeout=0.5)
        started = loop.time()
        transport.close()
        await asyncio.wait_for(lost, 10)  # not forever
        return loop.time() - started

    try:
        assert run(main()) > 0.4
    finally:
        release.set()
        peer.join()
        listener.close()


def test_handshake_timeout_against_a_silent_server(contexts):
    """A server that accepts and never answers the ClientHello: the client
    gives up after ssl_handshake_timeout with asyncio's error."""
    _, client_ctx = contexts

    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionAbortedError, match="SSL handshake is taking longer than 0.3 seconds"):
            await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost",
                                          ssl_handshake_timeout=0.3)
        assert 0.25 < loop.time() - started < 10
        listener.close()

    run(main())


def test_the_ssl_object_is_an_ordinary_one_after_the_connection(contexts):
    """The transport drives the SSL over BIOs of its own and gives it back
    its MemoryBIOs when done: the SSLObject get_extra_info returned keeps
    working (and failing) as the ssl module's own."""
    server_ctx, client_ctx = contexts

    async def main():
        server = await asyncio.start_server(stream_echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        sslobj = writer.get_extra_info("ssl_object")
        # Code that reaches for the context behind a TLS transport (aiohttp's
        # connector tests do) finds the one given: asyncio keeps it as
        # transport._ssl_protocol._sslcontext, the C++ transport as _sslcontext.
        assert type(writer.transport) is _core.SSLTransport
        assert writer.transport._sslcontext is client_ctx
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return sslobj

    sslobj = run(main())
    assert sslobj.getpeercert()["subject"] == ((("commonName", "localhost"),),)
    assert sslobj.pending() == 0
    with pytest.raises(ssl.SSLError):
        sslobj.read(10)  # the TLS session is over


@pytest.mark.parametrize("path", ["create_connection", "start_tls"])
def test_a_failed_certificate_leaves_no_cycle(contexts, path):
    """With the collector off, the transports of a connection whose
    certificate check failed are freed by reference counting alone."""
    server_ctx, _ = contexts
    untrusting = ssl.create_default_context()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def peer():
        conn, _ = listener.accept()
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except OSError:
            conn.close()

    thread = threading.Thread(target=peer)
    thread.start()
    refs = []

    async def main():
        loop = asyncio.get_running_loop()
        if path == "create_connection":
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=untrusting,
                                             server_hostname="localhost")
        else:
            tr, proto = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            refs.append(weakref.ref(tr))
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.start_tls(tr, proto, untrusting, server_hostname="localhost")
            del tr, proto
        # What the failure scheduled runs.
        await asyncio.sleep(0.05)
        refs.extend(weakref.ref(t) for t in list(loop._transports.values()))

    gc.collect()
    gc.disable()
    try:
        run(main())
        assert [r() for r in refs] == [None] * len(refs)
    finally:
        gc.enable()
        thread.join()
        listener.close()
