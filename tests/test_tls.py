"""TLS on cxxloop: asyncio's sslproto over the C++ StreamTransport, for
create_connection / create_server, the Unix variants and
connect_accepted_socket with ssl=, start_tls, large transfers with flow
control, the handshake timeout, and a shutdown that does not hang."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess

import pytest

import cxxloop


@pytest.fixture(scope="module")
def contexts(tmp_path_factory):
    """A server context with a fresh self-signed certificate for
    'localhost', and a client context that trusts it."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def run(coro):
    return cxxloop.run(asyncio.wait_for(coro, 30))


def raw_transport(tls_transport):
    """The transport under asyncio's TLS layer."""
    return tls_transport._ssl_protocol._transport


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.parametrize("size", [1, 64 * 1024, 8 * 1024 * 1024])
def test_tls_echo_runs_on_the_cxx_transport(contexts, size):
    server_ctx, client_ctx = contexts

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        assert type(raw_transport(writer.transport)) is cxxloop._core.StreamTransport
        assert writer.get_extra_info("peercert")["subject"] == ((("commonName", "localhost"),),)
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        writer.write(data)
        await writer.drain()
        assert await reader.readexactly(len(data)) == data
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_start_tls_upgrades_a_plain_connection(contexts):
    server_ctx, client_ctx = contexts

    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
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
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"over tls\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_untrusted_certificate_fails_the_handshake(contexts):
    server_ctx, _ = contexts

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=ssl.create_default_context(),
                                          server_hostname="localhost")
        server.close()
        await server.wait_closed()

    run(main())


def test_shutdown_does_not_hang_on_a_silent_peer(contexts):
    """The peer completes the handshake and then never answers close_notify:
    close() finishes within ssl_shutdown_timeout."""
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        class Silent(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport)

            def connection_lost(self, exc):
                pass

        server = await loop.create_server(Silent, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        lost = loop.create_future()

        class Client(asyncio.Protocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

        transport, _ = await loop.create_connection(
            Client, "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost",
            ssl_shutdown_timeout=0.5)
        server_transport = await accepted
        # The server stops reading: the client's close_notify gets no answer.
        server_transport._ssl_protocol._transport.pause_reading()
        started = loop.time()
        transport.close()
        await asyncio.wait_for(lost, 10)  # not forever
        assert 0.4 < loop.time() - started
        server_transport.abort()
        server.close()
        await server.wait_closed()

    run(main())


def test_unix_sockets_and_accepted_sockets_with_tls(contexts, tmp_path):
    """ssl= on create_unix_server / create_unix_connection and on
    connect_accepted_socket, each over the C++ transport."""
    server_ctx, client_ctx = contexts
    path = str(tmp_path / "tls.sock")

    async def main():
        loop = asyncio.get_running_loop()
        server = await asyncio.start_unix_server(echo, path, ssl=server_ctx)
        reader, writer = await asyncio.open_unix_connection(path, ssl=client_ctx, server_hostname="localhost")
        writer.write(b"over unix")
        assert await reader.readexactly(9) == b"over unix"
        assert type(raw_transport(writer.transport)).__name__ == "StreamTransport"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

        # connect_accepted_socket: the server side takes a socket accepted
        # by hand and runs the TLS handshake over it.
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
        assert type(raw_transport(server_transport)).__name__ == "StreamTransport"
        writer.close()
        server_transport.close()
        await writer.wait_closed()

    run(main())


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
