"""Stream transports in the corners real code reaches, each run on asyncio's
loop and on cxxloop: writes after loop.close(), buffers that change after
write(), water marks that are floats or huge, buffers the socket cannot
take, a patched asyncio.BaseTransport.get_extra_info, a socket.socket
subclass, and loop.sendfile's parameter checks.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import socket
import tempfile
import warnings
from unittest import mock

import pytest

from parity import LOOPS, agree, on_both, outcome


class Keeper(asyncio.Protocol):
    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()
        self.received = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += data

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def connected(protocol_factory=Keeper, sock_factory=None):
    """A client transport on the running loop and the accepted plain socket."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    if sock_factory is None:
        transport, protocol = await loop.create_connection(protocol_factory, *listener.getsockname())
    else:
        sock = sock_factory()
        sock.connect(listener.getsockname())
        sock.setblocking(False)
        transport, protocol = await loop.create_connection(protocol_factory, sock=sock)
    peer, _ = listener.accept()
    listener.close()
    return transport, protocol, peer


def drain(peer, seconds=0.5):
    peer.settimeout(seconds)
    got = bytearray()
    try:
        while chunk := peer.recv(65536):
            got += chunk
    except TimeoutError:
        pass
    return bytes(got)


@pytest.mark.parametrize("method", ["write", "writelines"])
@pytest.mark.parametrize("size", [10, 4 * 1024 * 1024])
def test_write_after_loop_close(size, method):
    # A write that goes out at once still works; one that would have to
    # wait for the socket raises, as asyncio's refuses the writer watch.
    def run(factory):
        loop = factory()
        transport, protocol, peer = loop.run_until_complete(connected())
        loop.close()
        data = b"x" * size
        result = outcome(functools.partial(transport.write, data) if method == "write"
                         else functools.partial(transport.writelines, [data]))
        peer.close()
        with warnings.catch_warnings():
            # A transport its closed loop still holds warns as unclosed, on
            # both loops, and its finalizer closes the socket.
            warnings.simplefilter("ignore", ResourceWarning)
            del transport, protocol
            gc.collect()
        return result

    results = {name: run(factory) for name, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"], results
    assert results["cxxloop"][0] == ("returned" if size == 10 else "RuntimeError")


@pytest.mark.parametrize("make", ["readonly bytearray view", "bytearray", "memoryview of bytearray"])
def test_what_is_sent_is_what_was_written(make):
    # A deliberate difference: cxxloop copies a buffer that can still
    # change when it has to queue it, so the bytes sent are those written;
    # asyncio from 3.12 queues a view and sends what the buffer holds later.
    async def main():
        transport, protocol, peer = await connected()
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport.write(b"f" * (64 * 1024))  # fills the socket: what follows is queued
        queued = transport.get_write_buffer_size() > 0
        buffer = bytearray(b"original")
        data = {
            "readonly bytearray view": memoryview(buffer).toreadonly(),
            "bytearray": buffer,
            "memoryview of bytearray": memoryview(buffer),
        }[make]
        transport.write(data)
        buffer[:] = b"mutated!"
        transport.close()
        got = await asyncio.get_running_loop().run_in_executor(None, drain, peer)
        peer.close()
        return queued, len(got), got[-8:]

    results = on_both(main)
    assert results["cxxloop"] == (True, 64 * 1024 + 8, b"original")
    assert results["asyncio"][:2] == results["cxxloop"][:2]


@pytest.mark.parametrize(
    "limits",
    [{"high": 1.5}, {"high": 10**30}, {"low": 2.5}, {"high": 10, "low": 20}, {"high": float("nan")}, {"low": -1}],
)
def test_write_buffer_limits_take_what_asyncio_takes(limits):
    async def main():
        transport, protocol, peer = await connected()
        result = outcome(lambda: transport.set_write_buffer_limits(**limits))
        marks = transport.get_write_buffer_limits()
        transport.close()
        await protocol.lost
        peer.close()
        return result, repr(marks)

    agree(main)


class LostRecorder(Keeper):
    def connection_lost(self, exc):
        super().connection_lost((type(exc).__name__, str(exc)) if exc else None)


def test_a_non_contiguous_memoryview_is_a_fatal_write_error():
    async def main():
        loop = asyncio.get_running_loop()
        reports = []
        loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))
        transport, protocol, peer = await connected(LostRecorder)
        result = outcome(lambda: transport.write(memoryview(b"abcdef")[::2]))
        lost = await protocol.lost
        peer.close()
        return result, lost, reports

    result, lost, reports = agree(main)
    assert result == ("returned", None) and lost[0] == "BufferError"


class ReadOnlyBuffer(asyncio.BufferedProtocol):
    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint):
        return b"not writable"

    def buffer_updated(self, nbytes):
        pass

    def connection_lost(self, exc):
        self.lost.set_result((type(exc).__name__, str(exc)) if exc else None)


def test_get_buffer_returning_bytes():
    async def main():
        loop = asyncio.get_running_loop()
        reports = []
        loop.set_exception_handler(
            lambda _loop, context: reports.append((context["message"], type(context["exception"]).__name__))
        )
        transport, protocol, peer = await connected(ReadOnlyBuffer)
        peer.sendall(b"data")
        lost = await protocol.lost
        peer.close()
        return lost, reports

    lost, reports = agree(main)
    assert lost[0] == "TypeError"


def test_patching_base_transport_get_extra_info_reaches_the_transport():
    async def main():
        transport, protocol, peer = await connected()
        with mock.patch.object(asyncio.BaseTransport, "get_extra_info", return_value="patched"):
            seen = transport.get_extra_info("peername")
        real = transport.get_extra_info("peername") == peer.getsockname()
        transport.close()
        await protocol.lost
        peer.close()
        return seen, real

    assert agree(main) == ("patched", True)


class CountingSocket(socket.socket):
    """Counts the calls of the methods asyncio's transport makes."""

    calls: dict[str, int] = {}

    def _count(self, name):
        CountingSocket.calls[name] = CountingSocket.calls.get(name, 0) + 1

    def recv(self, *args):
        self._count("recv")
        return super().recv(*args)

    def recv_into(self, *args):
        self._count("recv_into")
        return super().recv_into(*args)

    def send(self, *args):
        self._count("send")
        return super().send(*args)


def test_a_socket_subclass_is_read_and_written_through_its_methods():
    async def main():
        CountingSocket.calls = {}
        transport, protocol, peer = await connected(sock_factory=lambda: CountingSocket(socket.AF_INET))
        transport.write(b"out")
        got = await asyncio.get_running_loop().run_in_executor(None, lambda: peer.recv(3))
        peer.sendall(b"in")
        while protocol.received != b"in":
            await asyncio.sleep(0.01)
        transport.close()
        await protocol.lost
        peer.close()
        return got, sorted(CountingSocket.calls)

    got, methods = agree(main)
    assert got == b"out" and {"recv", "send"} <= set(methods)


@pytest.mark.parametrize("case", ["text file", "count=0", "negative offset", "count='1'"])
def test_sendfile_parameter_checks(case):
    async def main():
        loop = asyncio.get_running_loop()
        transport, protocol, peer = await connected()
        with tempfile.TemporaryFile("w+b" if case != "text file" else "w+") as file:
            file.write(b"data" if case != "text file" else "data")
            file.flush()
            kwargs = {"count=0": {"count": 0}, "negative offset": {"offset": -1}, "count='1'": {"count": "1"}}.get(
                case, {}
            )
            try:
                result = ("returned", await loop.sendfile(transport, file, **kwargs))
            except Exception as exc:
                result = (type(exc).__name__, str(exc))
        transport.close()
        await protocol.lost
        peer.close()
        return result

    result = agree(main)
    assert result[0] in ("ValueError", "TypeError")
