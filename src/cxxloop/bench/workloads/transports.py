"""Datagram and pipe transports, inside one process: both ends on the loop
under test, so each workload measures that loop's transport twice over.

`udp_pingpong` bounces 64-byte datagrams between two create_datagram_endpoint
transports on loopback, 16 in flight; `pipe_stream` pushes 64 KiB writes
through os.pipe() from a connect_write_pipe transport to a connect_read_pipe
one, with the writer waiting whenever more than 1 MiB is queued.
"""

from __future__ import annotations

import asyncio
import os

from . import Workload
from .timing import Measured, Stopwatch

_IN_FLIGHT = 16
_CHUNK = 64 * 1024


async def _udp_pingpong(n: int) -> Measured:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    remaining = n

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(data, addr)

    class Client(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                done.set_result(None)
            elif remaining >= _IN_FLIGHT:
                self.transport.sendto(data)

    server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    client, _ = await loop.create_datagram_endpoint(Client, remote_addr=server.get_extra_info("sockname"))
    try:
        clock = Stopwatch()
        for _ in range(min(_IN_FLIGHT, n)):
            client.sendto(b"x" * 64)
        await done
        return clock.measured(n)
    finally:
        client.close()
        server.close()


def udp_pingpong(loop: asyncio.AbstractEventLoop, n: int) -> Measured:
    return loop.run_until_complete(_udp_pingpong(n))


async def _pipe_stream(mib: int) -> Measured:
    loop = asyncio.get_running_loop()
    total = mib * 1024 * 1024
    received = 0
    finished = loop.create_future()

    class Reader(asyncio.Protocol):
        def data_received(self, data):
            nonlocal received
            received += len(data)

        def connection_lost(self, exc):
            finished.set_result(None)

    class Writer(asyncio.Protocol):
        def __init__(self):
            self.resumed: asyncio.Future[None] | None = None

        def pause_writing(self):
            self.resumed = loop.create_future()

        def resume_writing(self):
            assert self.resumed is not None  # set by the pause_writing() before
            self.resumed.set_result(None)
            self.resumed = None

    r, w = os.pipe()
    await loop.connect_read_pipe(Reader, os.fdopen(r, "rb", 0))
    writer, protocol = await loop.connect_write_pipe(Writer, os.fdopen(w, "wb", 0))
    writer.set_write_buffer_limits(high=1024 * 1024)
    chunk = b"y" * _CHUNK
    clock = Stopwatch()
    for _ in range(total // _CHUNK):
        writer.write(chunk)
        if protocol.resumed is not None:
            await protocol.resumed
    writer.close()
    await finished
    measured = clock.measured(mib)
    if received != total:
        raise RuntimeError(f"pipe_stream received {received} of {total} bytes")
    return measured


def pipe_stream(loop: asyncio.AbstractEventLoop, mib: int) -> Measured:
    return loop.run_until_complete(_pipe_stream(mib))


WORKLOADS = [
    Workload(
        "udp_pingpong", "round trips", 50_000, 5_000,
        "64 B datagrams between two create_datagram_endpoint transports on loopback, 16 in flight",
        udp_pingpong,
        transports=True,
    ),
    Workload(
        "pipe_stream", "MiB", 400, 40,
        "64 KiB writes through os.pipe() from connect_write_pipe to connect_read_pipe, flow-controlled at 1 MiB",
        pipe_stream,
        transports=True,
    ),
]
