"""TLS on cxxloop: asyncio's sslproto over the C++ StreamTransport, for
create_connection / create_server with ssl=, start_tls, large transfers
with flow control, and a shutdown that does not hang."""

from __future__ import annotations

import asyncio
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
