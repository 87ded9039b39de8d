"""connect_read_pipe / connect_write_pipe on cxxloop's C++ pipe transports:
pipes, FIFOs, socketpairs and ttys; EOF, a reader that goes away, flow
control, errors; each compared with asyncio's own pipe transports."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import os
import socket
import tempfile

import pytest

import cxxloop
from parity import LifecycleRecorder, ReadRecorder, agree, open_fds


class Recorder(ReadRecorder, LifecycleRecorder, asyncio.Protocol):
    """Records the callbacks in order, and the data."""

    def __init__(self):
        super().__init__()
        self.data = bytearray()


def pipe_files():
    r, w = os.pipe()
    return os.fdopen(r, "rb", 0), os.fdopen(w, "wb", 0)


def test_read_pipe_reads_until_eof_then_loses_the_connection():
    async def main():
        loop = asyncio.get_running_loop()
        rf, wf = pipe_files()
        proto = Recorder()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rf)
        assert isinstance(tr, asyncio.ReadTransport) and not isinstance(tr, asyncio.WriteTransport)
        assert tr.get_extra_info("pipe") is rf and tr.is_reading()
        await loop.run_in_executor(None, wf.write, b"x" * 300_000)  # more than one read (256 KiB)
        wf.close()
        await proto.lost
        assert rf.closed and tr.is_closing()
        return proto.events, bytes(proto.data) == b"x" * 300_000

    before = open_fds()
    assert agree(main) == (["made", "data", "eof", ("lost", None)], True)
    assert open_fds() == before


def test_large_reads_are_capped_in_order_then_small_reads_follow():
    # A large read switches cxxloop's transport to reads sized by FIONREAD
    # (read_large); with more than 256 KiB waiting, they stop at 256 KiB,
    # as asyncio's reads do, and a small read afterwards works as before.
    big = bytes(range(256)) * (600 * 1024 // 256)

    async def main():
        loop = asyncio.get_running_loop()
        rf, wf = pipe_files()
        fcntl.fcntl(wf.fileno(), fcntl.F_SETPIPE_SZ, 1024 * 1024)
        wf.write(big)  # all of it waits in the pipe before the first read
        chunks = []
        proto = Recorder()
        proto.data_received = lambda data: chunks.append(data)
        await loop.connect_read_pipe(lambda: proto, rf)
        while sum(map(len, chunks)) < len(big):
            await asyncio.sleep(0.001)
        wf.write(b"tail")
        while len(chunks) < 4 or chunks[-1] != b"tail":
            await asyncio.sleep(0.001)
        wf.close()
        await proto.lost
        return [len(c) for c in chunks], b"".join(chunks) == big + b"tail"

    assert agree(main) == ([256 * 1024, 256 * 1024, 88 * 1024, 4], True)


def test_read_pipe_close_pause_and_resume():
    async def main():
        loop = asyncio.get_running_loop()
        rf, wf = pipe_files()
        proto = Recorder()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rf)
        tr.pause_reading()
        wf.write(b"held")
        await asyncio.sleep(0.05)
        held = bytes(proto.data)
        tr.resume_reading()
        await asyncio.sleep(0.05)
        tr.close()
        tr.close()  # a second close does nothing
        await proto.lost
        wf.close()
        return held, bytes(proto.data), proto.events, tr.is_reading()

    assert agree(main) == (b"", b"held", ["made", "data", ("lost", None)], False)


def test_write_pipe_flow_control_close_flushes_first():
    async def main():
        loop = asyncio.get_running_loop()
        rf, wf = pipe_files()
        proto = Recorder()
        tr, _ = await loop.connect_write_pipe(lambda: proto, wf)
        assert isinstance(tr, asyncio.WriteTransport) and tr.can_write_eof()
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        tr.write(b"a" * 200_000)  # a pipe holds 64 KiB: the rest is queued
        queued = tr.get_write_buffer_size()
        tr.close()
        tr.write(b"dropped")  # after close a pipe takes nothing more
        got = bytearray()
        while chunk := await loop.run_in_executor(None, rf.read, 65536):
            got += chunk
        await proto.lost
        rf.close()
        return queued > 64 * 1024, len(got), proto.events, tr.get_write_buffer_size()

    assert agree(main) == (True, 200_000, ["made", "pause", "resume", ("lost", None)], 0)


def test_write_eof_is_close():
    async def main():
        loop = asyncio.get_running_loop()
        rf, wf = pipe_files()
        proto = Recorder()
        tr, _ = await loop.connect_write_pipe(lambda: proto, wf)
        tr.write(b"last")
        tr.write_eof()
        assert tr.is_closing()
        await proto.lost
        data = rf.read()
        rf.close()
        return data, wf.closed, proto.events

    assert agree(main) == (b"last", True, ["made", ("lost", None)])


@pytest.mark.parametrize("queued", [False, True])
def test_write_pipe_notices_its_reader_leave(queued):
    async def main():
        loop = asyncio.get_running_loop()
        rf, wf = pipe_files()
        proto = Recorder()
        tr, _ = await loop.connect_write_pipe(lambda: proto, wf)
        if queued:
            tr.write(b"q" * 200_000)
        await asyncio.sleep(0)
        rf.close()
        exc = await proto.lost
        return type(exc).__name__ if exc else None, tr.get_write_buffer_size()

    # With data still queued the loss is a BrokenPipeError, as in asyncio.
    assert agree(main) == ("BrokenPipeError" if queued else None, 0)


def test_broken_pipe_on_write_ends_the_transport_quietly():
    async def main():
        loop = asyncio.get_running_loop()
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        rf, wf = pipe_files()
        proto = Recorder()
        tr, _ = await loop.connect_write_pipe(lambda: proto, wf)
        rf.close()
        tr.write(b"nobody reads this")  # EPIPE before the loop noticed
        exc = await proto.lost
        return (type(exc).__name__, [c["message"] for c in contexts],
                [type(c["exception"]).__name__ for c in contexts])

    # A write pipe's OSErrors are only logged in debug mode, as a socket's.
    assert agree(main) == ("BrokenPipeError", [], [])


def test_fifo_both_ways():
    async def main():
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "fifo")
            os.mkfifo(path)
            rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            wfd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            reader, writer = Recorder(), Recorder()
            await loop.connect_read_pipe(lambda: reader, os.fdopen(rfd, "rb", 0))
            wtr, _ = await loop.connect_write_pipe(lambda: writer, os.fdopen(wfd, "wb", 0))
            wtr.write(b"through the fifo")
            wtr.close()
            await reader.lost
            await writer.lost
            return bytes(reader.data), reader.events, writer.events

    assert agree(main) == (b"through the fifo", ["made", "data", "eof", ("lost", None)], ["made", ("lost", None)])


def test_socketpair_as_pipes():
    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        reader, writer = Recorder(), Recorder()
        rtr, _ = await loop.connect_read_pipe(lambda: reader, a)
        wtr, _ = await loop.connect_write_pipe(lambda: writer, b)
        wtr.write(b"over a socket")
        await asyncio.sleep(0.05)
        rtr.close()  # closes `a`: the write side learns its reader left
        await reader.lost
        exc = await writer.lost
        return bytes(reader.data), a.fileno(), b.fileno(), exc

    assert agree(main) == (b"over a socket", -1, -1, None)


def test_tty_input_does_not_close_a_write_pipe():
    async def main():
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        slave_file = os.fdopen(slave, "wb", 0)
        writer = Recorder()
        wtr, _ = await loop.connect_write_pipe(lambda: writer, slave_file)
        os.write(master, b"typed\n")  # the tty is readable now
        await asyncio.sleep(0.05)
        open_after_input = not wtr.is_closing()
        wtr.write(b"to the terminal\n")
        await asyncio.sleep(0.05)
        echoed = os.read(master, 1024)
        wtr.close()
        await writer.lost
        os.close(master)
        return open_after_input, b"to the terminal" in echoed, writer.events

    assert agree(main) == (True, True, ["made", ("lost", None)])


def test_tty_read_pipe_ends_quietly_on_eio():
    async def main():
        loop = asyncio.get_running_loop()
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        master, slave = os.openpty()
        reader = Recorder()
        await loop.connect_read_pipe(lambda: reader, os.fdopen(master, "rb", 0))
        os.write(slave, b"line\n")
        await asyncio.sleep(0.05)
        os.close(slave)  # reading the master now fails with EIO
        exc = await reader.lost
        return bytes(reader.data), isinstance(exc, OSError) and exc.errno == errno.EIO, contexts

    data, eio, contexts = agree(main)
    assert data == b"line\r\n" and eio and contexts == []


@pytest.mark.parametrize("direction", ["read", "write"])
def test_regular_file_is_refused(direction):
    async def main():
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryFile() as f:
            connect = loop.connect_read_pipe if direction == "read" else loop.connect_write_pipe
            try:
                await connect(asyncio.Protocol, f)
            except ValueError as exc:
                return str(exc)

    before = open_fds()
    message = agree(main)
    assert message.startswith("Pipe transport is")
    assert open_fds() == before


def test_pipe_attributes_and_repr(loop):
    async def main():
        rf, wf = pipe_files()
        rtr, rproto = await loop.connect_read_pipe(Recorder, rf)
        wtr, wproto = await loop.connect_write_pipe(Recorder, wf)
        assert rtr._pipe is rf and rtr._fileno == rf.fileno()
        assert repr(rtr).endswith(f"fd={rf.fileno()} polling>")
        assert repr(wtr).endswith(f"fd={wf.fileno()} idle bufsize=0>")
        wtr.marker = "instance attributes work, as on asyncio's transports"
        assert wtr.marker.startswith("instance")
        wtr.close()
        await wproto.lost
        await rproto.lost
        assert repr(wtr) == f"<cxxloop._core.WritePipeTransport closed fd={wtr._fileno} closed>"
        assert rtr._pipe is None and rtr.get_protocol() is None

    loop.run_until_complete(main())


def test_unclosed_pipe_transport_warns_and_closes_its_pipe():
    rf, wf = pipe_files()

    async def main():
        loop = asyncio.get_running_loop()
        tr, _ = await loop.connect_read_pipe(asyncio.Protocol, rf)
        return tr

    lp = cxxloop.new_event_loop()
    tr = lp.run_until_complete(main())
    lp.close()
    assert "open" in repr(tr)
    # The last reference or the collector frees it, whichever owns it last.
    with pytest.warns(ResourceWarning, match="unclosed transport"):  # noqa: PT031
        del tr
        gc.collect()
    assert rf.closed
    wf.close()


def test_a_read_pipe_has_no_abort():
    """asyncio's read pipe transport is a ReadTransport: close() only."""
    async def main():
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        transport, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        has_abort = hasattr(transport, "abort")
        transport.close()
        os.close(w)
        await asyncio.sleep(0.01)
        return has_abort

    assert agree(main) is False


def test_an_exception_in_a_read_pipes_data_received():
    """asyncio's read pipe calls data_received() from its reader callback:
    what it raises is reported as any callback's, and the pipe reads on."""
    async def main():
        loop = asyncio.get_running_loop()
        reports = []
        loop.set_exception_handler(lambda _loop, context: reports.append(context["message"].split(" ")[0]))
        events = []

        class Failing(asyncio.Protocol):
            def data_received(self, data):
                events.append(data)
                if len(events) == 1:
                    raise ZeroDivisionError("data_received failed")

            def connection_lost(self, exc):
                events.append(("lost", type(exc).__name__ if exc else None))

        r, w = os.pipe()
        transport, _ = await loop.connect_read_pipe(Failing, os.fdopen(r, "rb", 0))
        os.write(w, b"one")
        await asyncio.sleep(0.05)
        closing = transport.is_closing()
        try:
            os.write(w, b"two")
        except BrokenPipeError:
            events.append("EPIPE")
        await asyncio.sleep(0.05)
        transport.close()
        os.close(w)
        await asyncio.sleep(0.05)
        return closing, events, reports

    closing, events, reports = agree(main)
    assert (closing, events[:2], reports) == (False, [b"one", b"two"], ["Exception"])

