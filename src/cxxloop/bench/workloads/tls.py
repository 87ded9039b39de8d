"""TLS workloads, inside one process: server and clients on the loop under
test, over loopback, with the certificate and contexts of certificates.py.

Each workload opens its connections before the clock starts (the handshake
workload excepted, whose operation is the connection), keeps one operation
in flight on each of _CONNECTIONS connections until `size` are done, and
closes them after. The CPU time is therefore both ends': every byte is
encrypted and decrypted once on each side. Only public asyncio APIs are
used, so a loop's own TLS (or aiofastnet's) is what runs.
"""

from __future__ import annotations

import asyncio

from . import Workload, certificates
from .certificates import HOST
from .net import EchoProtocol, no_aiohttp, serve_aiohttp, stream_echo
from .timing import Measured, Stopwatch

_CONNECTIONS = 16


class _Budget:
    """The operations left to start, shared by the connections."""

    def __init__(self, ops: int) -> None:
        self.left = ops

    def take(self) -> bool:
        if self.left == 0:
            return False
        self.left -= 1
        return True


def _port(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


async def _closed(server: asyncio.AbstractServer) -> None:
    server.close()
    await server.wait_closed()


class _Pinger(asyncio.Protocol):
    """A client that sends a message, waits until all of it has come back,
    and sends it again while the budget lasts."""

    def __init__(self, message: bytes, budget: _Budget) -> None:
        loop = asyncio.get_running_loop()
        self.message = message
        self.budget = budget
        self.owed = 0
        self.finished = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def ping(self) -> None:
        if self.budget.take():
            self.owed = len(self.message)
            self.transport.write(self.message)
        else:
            self.finished.set_result(None)

    def data_received(self, data):
        self.owed -= len(data)
        if self.owed == 0:
            self.ping()

    def connection_lost(self, exc):
        if not self.finished.done():
            self.finished.set_exception(exc or ConnectionError("closed during the echo"))
        self.lost.set_result(None)


async def _echo_protocol(size: int, ops: int) -> Measured:
    loop = asyncio.get_running_loop()
    server_ctx, client_ctx = certificates.contexts()
    server = await loop.create_server(EchoProtocol, HOST, 0, ssl=server_ctx)
    budget = _Budget(ops)
    clients: list[_Pinger] = []
    try:
        for _ in range(_CONNECTIONS):
            _, client = await loop.create_connection(lambda: _Pinger(b"x" * size, budget), HOST, _port(server),
                                                     ssl=client_ctx)
            clients.append(client)
        clock = Stopwatch()
        for client in clients:
            client.ping()
        await asyncio.gather(*(client.finished for client in clients))
        return clock.measured(ops)
    finally:
        # Closed before the server: its wait_closed() waits for them.
        for client in clients:
            client.transport.close()
        await asyncio.gather(*(client.lost for client in clients))
        await _closed(server)


def _echo_protocol_run(size: int):
    def run(loop: asyncio.AbstractEventLoop, ops: int) -> Measured:
        return loop.run_until_complete(_echo_protocol(size, ops))

    return run


async def _stream_pinger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes,
                         budget: _Budget) -> None:
    while budget.take():
        writer.write(message)
        await writer.drain()
        await reader.readexactly(len(message))


async def _echo_streams(size: int, ops: int) -> Measured:
    server_ctx, client_ctx = certificates.contexts()
    server = await asyncio.start_server(stream_echo, HOST, 0, ssl=server_ctx)
    budget = _Budget(ops)
    message = b"x" * size
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(_CONNECTIONS):
            streams.append(await asyncio.open_connection(HOST, _port(server), ssl=client_ctx))
        clock = Stopwatch()
        await asyncio.gather(*(_stream_pinger(reader, writer, message, budget) for reader, writer in streams))
        return clock.measured(ops)
    finally:
        for _, writer in streams:
            writer.close()
        # An error in closing must not hide the one that ended the run.
        await asyncio.gather(*(writer.wait_closed() for _, writer in streams), return_exceptions=True)
        await _closed(server)


def echo_streams_1k(loop: asyncio.AbstractEventLoop, ops: int) -> Measured:
    return loop.run_until_complete(_echo_streams(1024, ops))


class _Closer(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc):
        self.lost.set_result(None)


async def _handshakes(ops: int) -> Measured:
    loop = asyncio.get_running_loop()
    server_ctx, client_ctx = certificates.contexts()
    server = await loop.create_server(asyncio.Protocol, HOST, 0, ssl=server_ctx)
    budget = _Budget(ops)

    async def connect_and_close() -> None:
        while budget.take():
            transport, protocol = await loop.create_connection(_Closer, HOST, _port(server), ssl=client_ctx)
            transport.close()
            await protocol.lost

    try:
        clock = Stopwatch()
        await asyncio.gather(*(connect_and_close() for _ in range(_CONNECTIONS)))
        return clock.measured(ops)
    finally:
        await _closed(server)


def handshake(loop: asyncio.AbstractEventLoop, ops: int) -> Measured:
    return loop.run_until_complete(_handshakes(ops))


async def _https_aiohttp(ops: int) -> Measured:
    import aiohttp

    server_ctx, client_ctx = certificates.contexts()
    runner = await serve_aiohttp(server_ctx)
    url = f"https://{HOST}:{runner.addresses[0][1]}/"
    connector = aiohttp.TCPConnector(ssl=client_ctx, limit=_CONNECTIONS)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            async def get() -> None:
                async with session.get(url) as response:
                    response.raise_for_status()
                    await response.read()

            async def client(budget: _Budget) -> None:
                while budget.take():
                    await get()

            # The keep-alive connections, handshakes and all, before the clock.
            await asyncio.gather(*(get() for _ in range(_CONNECTIONS)))
            budget = _Budget(ops)
            clock = Stopwatch()
            await asyncio.gather(*(client(budget) for _ in range(_CONNECTIONS)))
            return clock.measured(ops)
    finally:
        await runner.cleanup()


def https_aiohttp(loop: asyncio.AbstractEventLoop, ops: int) -> Measured:
    return loop.run_until_complete(_https_aiohttp(ops))


WORKLOADS = [
    Workload(
        "tls_echo_protocol_1k", "msgs", 10_000, 1_000,
        f"TLS echo between asyncio.Protocol client and server on the loop, 1 KiB messages, {_CONNECTIONS} connections",
        _echo_protocol_run(1024),
        transports=True,
        unavailable=certificates.missing,
    ),
    Workload(
        "tls_echo_protocol_16k", "msgs", 4_000, 400,
        f"the same with 16 KiB messages (one full TLS record each), {_CONNECTIONS} connections",
        _echo_protocol_run(16 * 1024),
        transports=True,
        unavailable=certificates.missing,
    ),
    Workload(
        "tls_echo_streams_1k", "msgs", 8_000, 800,
        f"TLS echo with asyncio streams (open_connection / start_server, ssl=), 1 KiB messages, "
        f"{_CONNECTIONS} connections",
        echo_streams_1k,
        transports=True,
        unavailable=certificates.missing,
    ),
    Workload(
        "tls_handshake", "handshakes", 500, 50,
        f"create_connection(ssl=) to a TLS server on the loop, handshake, close; {_CONNECTIONS} at a time",
        handshake,
        transports=True,
        unavailable=certificates.missing,
    ),
    Workload(
        "https_aiohttp", "reqs", 2_000, 200,
        f"aiohttp client GETs from an aiohttp hello-world server over TLS on the same loop, "
        f"{_CONNECTIONS} keep-alive connections",
        https_aiohttp,
        transports=True,
        unavailable=lambda: certificates.missing() or no_aiohttp(),
    ),
]
