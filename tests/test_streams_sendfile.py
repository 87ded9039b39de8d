"""loop.sendfile() on the C++ StreamTransport: the native (zero-copy) path,
its fallback, and how it meets the rest of the transport (queued data,
write(), reading, close, abort, cancellation, a peer that goes away)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import struct

import pytest

import cxxloop
from parity import Recorder, payload, run, wait_until

FILE_SIZE = 4 * 1024 * 1024


@pytest.fixture
def data_file(tmp_path):
    data = payload(FILE_SIZE)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


class Sink(Recorder):
    """Server side: collects what arrives; the test finds it in `instances`
    to stop its reading and make the sender's socket fill up."""

    instances: list[Sink] = []

    def __init__(self):
        super().__init__()
        Sink.instances.append(self)


async def connect(sink_paused=False):
    """A cxxloop client transport connected to a Sink; returns both ends."""
    loop = asyncio.get_running_loop()
    Sink.instances = []
    server = await loop.create_server(Sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, client = await loop.create_connection(Recorder, "127.0.0.1", port)
    assert type(transport) is cxxloop._core.StreamTransport
    await wait_until(lambda: Sink.instances)
    sink = Sink.instances[0]
    if sink_paused:
        sink.transport.pause_reading()
    return server, transport, client, sink


async def finish(server, transport, client):
    transport.close()
    await client.lost
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("offset", "count"), [(0, None), (0, 1000), (12345, None), (FILE_SIZE - 10, 100), (FILE_SIZE, None)]
)
def test_native_sendfile_sends_the_range_and_moves_the_file_position(data_file, offset, count):
    f, data = data_file

    async def main():
        server, transport, client, sink = await connect()
        # fallback=False: only the native path may serve this.
        sent = await asyncio.get_running_loop().sendfile(transport, f, offset, count, fallback=False)
        expected = data[offset : offset + count if count else None]
        assert sent == len(expected)
        await wait_until(lambda: len(sink.data) >= len(expected))
        assert bytes(sink.data) == expected
        assert f.tell() == (offset + sent if sent else 0)  # untouched if nothing was sent
        await finish(server, transport, client)

    run(main())


def test_a_slow_reader_makes_sendfile_wait_for_the_socket(data_file):
    f, data = data_file

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        task = asyncio.ensure_future(asyncio.get_running_loop().sendfile(transport, f, fallback=False))
        await asyncio.sleep(0.05)
        assert not task.done()  # the socket is full, the job waits for it
        sink.transport.resume_reading()
        assert await task == FILE_SIZE
        await wait_until(lambda: len(sink.data) >= FILE_SIZE)
        assert bytes(sink.data) == data
        await finish(server, transport, client)

    run(main())


def test_queued_data_goes_first_and_write_is_refused_meanwhile(data_file):
    f, data = data_file
    chunk = payload(256 * 1024)

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        head = b""
        while transport.get_write_buffer_size() == 0:  # until the kernel's buffers are full
            transport.write(chunk)
            head += chunk
        task = asyncio.ensure_future(asyncio.get_running_loop().sendfile(transport, f, fallback=False))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.write(b"x")
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.writelines([b"x"])
        assert not transport.is_reading()
        sink.transport.resume_reading()
        assert await task == FILE_SIZE
        assert transport.is_reading()
        transport.write(b"tail")
        await wait_until(lambda: len(sink.data) >= len(head) + FILE_SIZE + 4)
        assert bytes(sink.data) == head + data + b"tail"
        await finish(server, transport, client)

    run(main())


def test_reading_resumes_only_if_it_was_on(data_file):
    f, _ = data_file

    async def main():
        server, transport, client, sink = await connect()
        transport.pause_reading()
        await asyncio.get_running_loop().sendfile(transport, f, 0, 10, fallback=False)
        assert not transport.is_reading()
        transport.resume_reading()
        sink.transport.write(b"still reading")
        await wait_until(lambda: client.data == b"still reading")
        await finish(server, transport, client)

    run(main())


def test_not_a_regular_file_falls_back_or_refuses():
    async def main():
        server, transport, client, sink = await connect()
        loop = asyncio.get_running_loop()
        with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
            await loop.sendfile(transport, io.BytesIO(b"abc"), fallback=False)
        assert transport.is_reading()  # nothing was started
        assert await loop.sendfile(transport, io.BytesIO(b"abc")) == 3
        await wait_until(lambda: sink.data == b"abc")
        await finish(server, transport, client)

    run(main())


class PipeSource:
    """A file-like reader over a pipe, without seek(), which the fallback
    would call and a pipe refuses."""

    def __init__(self, fd):
        self._file = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by close()

    def fileno(self):
        return self._file.fileno()

    def readinto(self, buffer):
        return self._file.readinto(buffer)

    def close(self):
        self._file.close()


def test_a_file_sendfile_cannot_read_falls_back():
    # A pipe has a descriptor, but sendfile(2) at an offset refuses it
    # (ESPIPE) before sending anything: SendfileNotAvailableError, so
    # loop.sendfile falls back to reading and writing.
    async def main():
        server, transport, client, sink = await connect()
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        os.write(w, b"0123456789" * 2)
        pipe = PipeSource(r)
        with contextlib.closing(pipe), open(w, "wb"):
            with pytest.raises(asyncio.SendfileNotAvailableError, match="os.sendfile call failed"):
                await loop.sendfile(transport, pipe, 0, 10, fallback=False)
            assert transport.is_reading()
            assert await loop.sendfile(transport, pipe, 0, 10) == 10
        await wait_until(lambda: sink.data == b"0123456789")
        await finish(server, transport, client)

    run(main())


def test_close_during_sendfile_lets_it_finish(data_file):
    f, data = data_file

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        task = asyncio.ensure_future(asyncio.get_running_loop().sendfile(transport, f, fallback=False))
        await asyncio.sleep(0.02)
        transport.close()
        assert transport.is_closing() and not client.lost.done()
        sink.transport.resume_reading()
        assert await task == FILE_SIZE
        assert await client.lost is None
        await wait_until(lambda: sink.lost.done())
        assert bytes(sink.data) == data
        assert client.lost_calls == 1
        server.close()
        await server.wait_closed()

    run(main())


def test_abort_during_sendfile_fails_it_once(data_file):
    f, _ = data_file

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        task = asyncio.ensure_future(asyncio.get_running_loop().sendfile(transport, f, fallback=False))
        await asyncio.sleep(0.02)
        transport.abort()
        with pytest.raises(ConnectionAbortedError, match="aborted during sendfile"):
            await task
        assert await client.lost is None
        assert client.lost_calls == 1
        assert 0 < f.tell() < FILE_SIZE  # where the transfer stopped
        sink.transport.resume_reading()  # to see the connection end
        await sink.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_cancelling_sendfile_leaves_a_working_transport(data_file):
    f, data = data_file

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        task = asyncio.ensure_future(asyncio.get_running_loop().sendfile(transport, f, fallback=False))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sent = f.tell()
        assert 0 < sent < FILE_SIZE
        assert transport.is_reading()
        transport.write(b"after")
        sink.transport.resume_reading()
        await wait_until(lambda: len(sink.data) >= sent + 5)
        assert bytes(sink.data) == data[:sent] + b"after"
        await finish(server, transport, client)

    run(main())


def test_peer_reset_mid_sendfile_raises_and_loses_the_connection_once(data_file):
    f, _ = data_file

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        task = asyncio.ensure_future(asyncio.get_running_loop().sendfile(transport, f, fallback=False))
        await asyncio.sleep(0.02)
        # The receiver closes with unread data and SO_LINGER 0: a reset.
        sock = sink.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sink.transport.abort()
        with pytest.raises(ConnectionError):
            await task
        transport.close()
        await client.lost
        assert client.lost_calls == 1
        server.close()
        await server.wait_closed()

    run(main())


def test_second_sendfile_at_once_is_refused(data_file):
    f, _ = data_file

    async def main():
        server, transport, client, sink = await connect(sink_paused=True)
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(loop.sendfile(transport, f, fallback=False))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already set"):
            await loop.sendfile(transport, f, fallback=False)
        sink.transport.resume_reading()
        assert await first == FILE_SIZE
        await finish(server, transport, client)

    run(main())
