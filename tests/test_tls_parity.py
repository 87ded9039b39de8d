"""TLS connections on asyncio's loop and on cxxloop, compared.

Each scenario runs on both loops (parity.agree) and records what a user
of the API can observe: the protocol callbacks in order, the bytes
received, exceptions (type and text), get_extra_info's values, what
reaches the loop's exception handler and what asyncio's logger logs.
Both loops must record the same. What is recorded leaves out what
differs between any two runs (ports, descriptors, object reprs), and
data_received/buffer_updated calls count as one "data" event per run of
them, since how the bytes are split depends on the kernel.

The peer is another TLS transport of the same loop, or a peer driven by
hand (HandPeer: an SSLObject over memory BIOs on a plain socket) where
the scenario needs the wire to carry something a transport never sends.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextvars
import functools
import gc
import logging
import socket
import ssl
import struct
import sys
import weakref

import pytest

from parity import LOOPS, agree, asyncio_leaks_dropped, on_both, payload, tls_contexts

# ---------------------------------------------------------------------------
# What is recorded


def describe(exc):
    """An exception as comparable data: its type's name and its text."""
    if exc is None:
        return None
    if isinstance(exc, type):
        return exc.__name__
    return (type(exc).__name__, str(exc))


class Seen:
    """What the running loop reports while a scenario runs: the exception
    handler's contexts (message, exception, which keys) and the records of
    asyncio's logger (level, text)."""

    def __init__(self):
        self.errors = []
        self.logs = []
        asyncio.get_running_loop().set_exception_handler(self._handle)
        self._handler = logging.Handler(logging.DEBUG)
        self._handler.emit = lambda record: self.logs.append((record.levelname, record.getMessage()))
        logging.getLogger("asyncio").addHandler(self._handler)

    def _handle(self, loop, context):
        self.errors.append((context["message"], describe(context.get("exception")), sorted(context)))

    def result(self):
        logging.getLogger("asyncio").removeHandler(self._handler)
        return {"errors": self.errors, "logs": self.logs}


class Recorder(asyncio.Protocol):
    """Records its callbacks in `events` (pause/resume_writing apart, in
    `flow`) and the bytes it receives; echoes them back if `echo`."""

    eof_result = None

    def __init__(self, echo=False):
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.events = []
        self.flow = []
        self.received = bytearray()
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self._wanted = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        self._got(data)

    def _got(self, data):
        self.received += data
        if self.events[-1:] != ["data"]:
            self.events.append("data")
        if self.echo:
            self.transport.write(bytes(data))
        if self._wanted and len(self.received) >= self._wanted[0] and not self._wanted[1].done():
            self._wanted[1].set_result(None)

    def eof_received(self):
        self.events.append("eof")
        return self.eof_result

    def pause_writing(self):
        self.flow.append("pause")

    def resume_writing(self):
        self.flow.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", describe(exc)))
        if not self.lost.done():
            self.lost.set_result(exc)

    async def receive(self, n, timeout=10):
        """Waits until `n` bytes came in all."""
        if len(self.received) < n:
            self._wanted = (n, asyncio.get_running_loop().create_future())
            await asyncio.wait_for(asyncio.shield(self._wanted[1]), timeout)
        return bytes(self.received[:n])


class BufferedRecorder(asyncio.BufferedProtocol, Recorder):
    """A Recorder reading into its own buffer of `size` bytes, which
    get_buffer gives as a memoryview (or as the bytearray itself)."""

    def __init__(self, size, echo=False, view=True):
        Recorder.__init__(self, echo)
        self.buf = bytearray(size)
        self.view = view
        self.largest = 0

    def get_buffer(self, sizehint):
        return memoryview(self.buf) if self.view else self.buf

    def buffer_updated(self, nbytes):
        self.largest = max(self.largest, nbytes)
        self._got(self.buf[:nbytes])


# ---------------------------------------------------------------------------
# Connections


def tcp_pair():
    """A connected pair of non-blocking TCP sockets: (client, server)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    client.setblocking(False)
    server.setblocking(False)
    return client, server


async def tls_pair(contexts, server_factory=Recorder, client_factory=Recorder, client_kw=None, server_kw=None):
    """A TLS connection between two transports of the running loop, over
    TCP; returns (client protocol, server protocol), both connected."""
    loop = asyncio.get_running_loop()
    server_ctx, client_ctx = contexts
    c, s = tcp_pair()
    (_, server), (_, client) = await asyncio.gather(
        loop.connect_accepted_socket(server_factory, s, ssl=server_ctx, **(server_kw or {})),
        loop.create_connection(client_factory, sock=c, ssl=client_ctx, server_hostname="localhost",
                               **(client_kw or {})),
    )
    return client, server


async def closed(*protocols, timeout=10):
    """Closes each protocol's transport and waits for connection_lost."""
    for p in protocols:
        if not p.lost.done():
            p.transport.close()
    await asyncio.wait_for(asyncio.gather(*(p.lost for p in protocols)), timeout)


class HandPeer:
    """One end of a TLS connection driven by hand: an SSLObject over memory
    BIOs on a plain socket, read and written with the loop's sock_* calls,
    so the test decides what goes on the wire and when."""

    def __init__(self, sock, ctx, server_side, hostname=None):
        self.loop = asyncio.get_running_loop()
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side, server_hostname=hostname)

    async def flush(self):
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def _more(self):
        data = await self.loop.sock_recv(self.sock, 1 << 18)
        if not data:
            raise EOFError("TCP EOF")
        self.incoming.write(data)

    async def _until(self, op):
        while True:
            try:
                result = op()
            except ssl.SSLWantReadError:
                await self.flush()
                await self._more()
                continue
            await self.flush()
            return result

    async def handshake(self):
        await self._until(self.obj.do_handshake)

    async def send(self, data):
        self.obj.write(data)
        await self.flush()

    async def recv(self, n):
        """n bytes of application data (fewer if the peer shuts down)."""
        out = bytearray()
        while len(out) < n:
            chunk = await self._until(functools.partial(self.obj.read, n - len(out)))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    async def read_to_end(self):
        """Everything until the peer's close_notify or TCP EOF, and which."""
        out = bytearray()
        try:
            while chunk := await self._until(lambda: self.obj.read(1 << 18)):
                out += chunk
        except EOFError:
            return bytes(out), "tcp-eof"
        except ssl.SSLZeroReturnError:  # after a close_notify of its own
            return bytes(out), "close_notify"
        except ssl.SSLError as exc:
            return bytes(out), describe(exc)
        return bytes(out), "close_notify"

    async def send_close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        await self.flush()

    async def wire_until_eof(self, timeout=5):
        """The raw bytes the other end sends until its TCP EOF."""
        out = bytearray()
        while data := await asyncio.wait_for(self.loop.sock_recv(self.sock, 1 << 18), timeout):
            out += data
        return bytes(out)

    def reset(self):
        """Closes the socket with an RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


async def hand_server(contexts, client_factory=Recorder, client_kw=None):
    """A client transport of the running loop connected to a HandPeer
    server, handshake done; returns (client protocol, peer)."""
    loop = asyncio.get_running_loop()
    c, s = tcp_pair()
    peer = HandPeer(s, contexts[0], server_side=True)
    (_, client), _ = await asyncio.gather(
        loop.create_connection(client_factory, sock=c, ssl=contexts[1], server_hostname="localhost",
                               **(client_kw or {})),
        peer.handshake(),
    )
    return client, peer


# ---------------------------------------------------------------------------
# Echo and data integrity

KINDS = {
    "protocol": lambda echo=False: Recorder(echo),
    "buffered-1MiB": lambda echo=False: BufferedRecorder(1 << 20, echo),
    # smaller than one TLS record (16 KiB of plaintext)
    "buffered-100B": lambda echo=False: BufferedRecorder(100, echo),
}
ECHO_CASES = [
    ("protocol", 1), ("protocol", 16 * 1024 + 1), ("protocol", 1 << 20), ("protocol", 8 << 20),
    ("buffered-1MiB", 1), ("buffered-1MiB", 100_000), ("buffered-1MiB", 8 << 20),
    ("buffered-100B", 1), ("buffered-100B", 16 * 1024 + 1), ("buffered-100B", 100_000),
]


@pytest.mark.parametrize(("kind", "size"), ECHO_CASES)
def test_echo(contexts, kind, size):
    async def main():
        make = KINDS[kind]
        client, server = await tls_pair(contexts, lambda: make(echo=True), make)
        data = payload(size)
        client.transport.write(data)
        got = await client.receive(size, timeout=20)
        await closed(client, server)
        largest = [p.largest <= len(p.buf) for p in (client, server) if isinstance(p, BufferedRecorder)]
        return client.events, server.events, got == data, len(client.received), largest

    client_events, server_events, intact, n, _ = agree(main)
    assert intact and n == size
    assert client_events[:2] == ["made", "data"] and client_events[-1] == ("lost", None)


@pytest.mark.parametrize("size", [1, 65537, 8 << 20])
def test_stream_echo(contexts, size):
    async def main():
        server_ctx, client_ctx = contexts

        async def handle(reader, writer):
            while chunk := await reader.read(1 << 16):
                writer.write(chunk)
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        data = payload(size)
        reading = asyncio.ensure_future(reader.readexactly(size))
        writer.write(data)
        await writer.drain()
        got = await reading
        writer.close()
        await writer.wait_closed()
        rest = await reader.read()
        server.close()
        await server.wait_closed()
        return got == data, rest, reader.at_eof()

    assert agree(main) == (True, b"", True)


def test_many_small_writes_arrive_in_order(contexts):
    async def main():
        client, server = await tls_pair(contexts)
        chunks = [b"%d," % i for i in range(5000)]
        for chunk in chunks:
            client.transport.write(chunk)
        client.transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
        expected = b"".join(chunks) + b"abc"
        got = await server.receive(len(expected))
        await closed(client, server)
        return got == expected, server.events

    intact, _ = agree(main)
    assert intact


# ---------------------------------------------------------------------------
# get_extra_info

EXTRA_NAMES = ("sslcontext", "peercert", "cipher", "compression", "ssl_object", "socket", "sockname", "peername",
               "no such name")


def extra_info(transport, ctx):
    """What get_extra_info(name, "default") gives for each name, as data."""
    seen = {}
    for name in EXTRA_NAMES:
        try:
            value = transport.get_extra_info(name, "default")
        except Exception as exc:
            seen[name] = ("raises", describe(exc))
            continue
        if name == "sslcontext" and value is ctx:
            value = "the context"
        elif isinstance(value, ssl.SSLObject):
            value = (type(value).__name__, value.version(), value.server_side, value.server_hostname)
        elif name == "socket" and value != "default":
            value = (type(value).__name__, value.family, value.type)
        elif name in ("sockname", "peername") and isinstance(value, tuple):
            value = (value[0], type(value[1]).__name__)
        seen[name] = value
    return seen


class ExtraInConnectionMade(Recorder):
    def __init__(self, ctx):
        super().__init__()
        self.ctx = ctx

    def connection_made(self, transport):
        self.extra_at_made = extra_info(transport, self.ctx)
        super().connection_made(transport)


def test_get_extra_info_through_the_connection(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        client, server = await tls_pair(contexts, lambda: ExtraInConnectionMade(server_ctx),
                                        lambda: ExtraInConnectionMade(client_ctx))
        seen = {"made": (client.extra_at_made, server.extra_at_made),
                "connected": (extra_info(client.transport, client_ctx), extra_info(server.transport, server_ctx))}
        obj = client.transport.get_extra_info("ssl_object")
        seen["same ssl_object"] = obj is client.transport.get_extra_info("ssl_object")
        seen["peercert matches ssl_object"] = client.transport.get_extra_info("peercert") == obj.getpeercert()
        seen["no default"] = client.transport.get_extra_info("no such name")
        client.transport.close()
        seen["after close"] = extra_info(client.transport, client_ctx)
        seen["closing"] = client.transport.is_closing()
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        seen["after connection_lost"] = (extra_info(client.transport, client_ctx),
                                         extra_info(server.transport, server_ctx))
        return seen

    seen = agree(main)
    assert seen["made"][0]["sslcontext"] == "the context"
    assert seen["connected"][0]["ssl_object"][0] == "SSLObject"
    assert seen["after connection_lost"][0]["socket"] == "default"


@pytest.mark.xfail(strict=True, reason="after a second close() asyncio's methods raise AttributeError on None; "
                                       "cxxloop's answer with defaults")
def test_get_extra_info_after_a_second_close(contexts):
    """asyncio's TLS transport lets go of its SSLProtocol on a second
    close(); its methods then fail on None."""
    _, client_ctx = contexts

    async def main():
        client, server = await tls_pair(contexts)
        t = client.transport
        t.close()
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        t.close()
        seen = {"extra": extra_info(t, client_ctx), "is_closing": t.is_closing()}
        for call in ("get_write_buffer_size", "is_reading", "get_write_buffer_limits", "get_read_buffer_size",
                     "get_protocol", "pause_reading", "resume_reading", "abort", "close"):
            try:
                result = getattr(t, call)()
                seen[call] = result if not isinstance(result, asyncio.BaseProtocol) else "the protocol"
            except Exception as exc:
                seen[call] = ("raises", describe(exc))
        try:
            t.write(b"late")
            seen["write"] = "ok"
        except Exception as exc:
            seen["write"] = ("raises", describe(exc))
        return seen

    agree(main)


def test_get_extra_info_keyword_arguments(contexts):
    async def main():
        client, server = await tls_pair(contexts)
        t = client.transport
        seen = {}
        for label, call in (("default=", lambda: t.get_extra_info("no such name", default=5)),
                            ("name=", lambda: t.get_extra_info(name="compression", default=5))):
            try:
                seen[label] = call()
            except Exception as exc:
                seen[label] = describe(exc)
        await closed(client, server)
        return seen

    assert agree(main) == {"default=": 5, "name=": None}


def test_get_extra_info_with_wrong_arguments(contexts):
    """A TypeError either way; its text names the method's class."""
    async def main():
        client, server = await tls_pair(contexts)
        raised = []
        for args in ((), ("a", 1, 2)):
            try:
                client.transport.get_extra_info(*args)
                raised.append(None)
            except Exception as exc:
                raised.append(type(exc).__name__)
        await closed(client, server)
        return raised

    assert agree(main) == ["TypeError", "TypeError"]


def test_get_extra_info_after_abort(contexts):
    _, client_ctx = contexts

    async def main():
        client, server = await tls_pair(contexts)
        client.transport.abort()
        seen = {"after abort": extra_info(client.transport, client_ctx)}
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        seen["after connection_lost"] = extra_info(client.transport, client_ctx)
        seen["events"] = (client.events, server.events)
        return seen

    agree(main)


def test_a_bytearray_from_get_buffer_gets_every_byte(contexts):
    """get_buffer() may return any writable buffer. asyncio's sslproto
    fills a bytearray through bytearray slices, which are copies: every
    read after the first of a batch lands in a copy, and the protocol sees
    whatever the buffer held before (a difference from asyncio in which
    cxxloop keeps the bytes; asyncio's result is recorded, not required)."""
    async def main():
        client, server = await tls_pair(contexts, lambda: BufferedRecorder(1 << 20, echo=True, view=False),
                                        lambda: BufferedRecorder(1 << 20, view=False))
        data = payload(100_000)
        client.transport.write(data)
        got = await client.receive(len(data))
        await closed(client, server)
        return got == data

    results = on_both(main)
    assert results["cxxloop"] is True


class OddBuffer(BufferedRecorder):
    """get_buffer() gives `buffer`, whatever it is."""

    def __init__(self, buffer):
        super().__init__(10)
        self.odd = buffer

    def get_buffer(self, sizehint):
        return self.odd


@pytest.mark.parametrize("buffer", [
    pytest.param(b"read-only", id="bytes"),
    pytest.param(None, id="None"),
    pytest.param(bytearray(), id="empty"),
])
def test_get_buffer_gives_an_unusable_buffer(contexts, buffer):
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts, lambda: OddBuffer(buffer))
        client.transport.write(b"hello")
        await asyncio.wait([server.lost], timeout=0.3)
        result = server.events[:], client.events[:], bytes(server.received), seen.result()
        client.transport.abort()
        server.transport.abort()
        await asyncio.sleep(0.01)
        return result

    agree(main)


# ---------------------------------------------------------------------------
# Closing


@pytest.mark.parametrize("side", ["client", "server"])
def test_close_after_data(contexts, side):
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts)
        closer, other = (client, server) if side == "client" else (server, client)
        closer.transport.write(b"last words")
        closer.transport.close()
        closing = closer.transport.is_closing()
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        return closer.events, other.events, bytes(other.received), closing, seen.result()

    closer_events, other_events, received, closing, _ = agree(main)
    assert received == b"last words" and closing
    assert other_events == ["made", "data", "eof", ("lost", None)]


@pytest.mark.parametrize("stall", ["transport pauses reading", "hand peer stalls"])
def test_close_flushes_buffered_data_first(contexts, stall):
    """close() right after a large write: every byte reaches the peer
    before close_notify, also when the peer stops reading for a while."""
    size = 4 << 20

    async def main():
        seen = Seen()
        data = payload(size)
        if stall == "transport pauses reading":
            client, server = await tls_pair(contexts)
            server.transport.pause_reading()
            client.transport.write(data)
            client.transport.close()
            await asyncio.sleep(0.2)
            paused_with = len(server.received)
            server.transport.resume_reading()
            await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
            return (client.events, server.events, paused_with, bytes(server.received) == data,
                    seen.result())
        client, peer = await hand_server(contexts)
        client.transport.write(data)
        client.transport.close()
        await asyncio.sleep(0.2)
        got, how = await peer.read_to_end()
        await peer.send_close_notify()
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return client.events, got == data, how, seen.result()

    result = agree(main)
    if stall == "transport pauses reading":
        assert result[2] == 0 and result[3]
    else:
        assert result[1:3] == (True, "close_notify")


def test_abort_drops_what_was_buffered(contexts):
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts)
        server.transport.pause_reading()
        client.transport.write(payload(4 << 20))
        client.transport.abort()
        closing = client.transport.is_closing()
        await asyncio.wait_for(client.lost, 10)
        server.transport.resume_reading()
        await asyncio.wait_for(server.lost, 10)
        return client.events, server.events[-2:], len(server.received) < 4 << 20, closing, seen.result()

    client_events, server_end, partial, closing, _ = agree(main)
    assert client_events == ["made", ("lost", None)] and partial and closing


def test_close_during_the_handshake(contexts):
    """The create_connection() is cancelled while the server has not
    answered the ClientHello: the transport closes, the peer sees the
    connection end (no close_notify, since no TLS session exists)."""
    async def main():
        seen = Seen()
        loop = asyncio.get_running_loop()
        c, s = tcp_pair()
        connecting = asyncio.ensure_future(
            loop.create_connection(Recorder, sock=c, ssl=contexts[1], server_hostname="localhost"))
        hello = await loop.sock_recv(s, 1 << 16)
        connecting.cancel()
        try:
            await connecting
            outcome = "connected"
        except asyncio.CancelledError:
            outcome = "cancelled"
        rest = await HandPeer(s, contexts[0], True).wire_until_eof()
        s.close()
        return hello[:1], outcome, rest, seen.result()

    assert agree(main)[:3] == (b"\x16", "cancelled", b"")


@pytest.mark.parametrize("with_data", [False, True])
@pytest.mark.parametrize("eof_result", [None, True])
def test_peer_sends_close_notify(contexts, eof_result, with_data):
    """eof_received, then close_notify back, then connection_lost(None);
    eof_received returning True only gets asyncio's warning."""
    class Client(Recorder):
        pass

    Client.eof_result = eof_result

    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts, Client)
        if with_data:
            peer.obj.write(b"goodbye")
        await peer.send_close_notify()
        answer = await peer.read_to_end()
        rest = await peer.wire_until_eof()
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return client.events, bytes(client.received), answer, rest, seen.result()

    events, received, answer, rest, seen = agree(main)
    assert events[-2:] == ["eof", ("lost", None)] and answer == (b"", "close_notify")
    assert received == (b"goodbye" if with_data else b"")
    assert (("WARNING", "returning true from eof_received() has no effect when using ssl") in seen["logs"]) is bool(
        eof_result)


def test_peer_tcp_eof_without_close_notify(contexts):
    """asyncio takes a TCP EOF for a clean end: eof_received, then
    connection_lost(None), and sends no close_notify of its own."""
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts)
        await peer.send(b"unterminated")
        await client.receive(12)
        peer.sock.shutdown(socket.SHUT_WR)
        rest = await peer.wire_until_eof()
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return client.events, rest, seen.result()

    events, rest, _ = agree(main)
    assert events == ["made", "data", "eof", ("lost", None)]


def test_peer_resets_the_connection(contexts):
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts)
        peer.reset()
        await asyncio.wait_for(client.lost, 10)
        return client.events, client.transport.is_closing(), seen.result()

    events, closing, _ = agree(main)
    assert events[-1][0] == "lost" and events[-1][1][0] == "ConnectionResetError"


def test_writes_after_close_are_dropped_with_a_warning(contexts):
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts)
        client.transport.close()
        for _ in range(7):
            client.transport.write(b"x")
        after_close = list(seen.logs)
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        for _ in range(3):
            client.transport.write(b"y")
        client.transport.writelines([b"z"])
        return after_close, seen.result(), bytes(server.received)

    after_close, seen, received = agree(main)
    assert ("WARNING", "SSL connection is closed") in after_close and received == b""


def test_write_eof_is_not_supported(contexts):
    async def main():
        client, server = await tls_pair(contexts)
        seen = {"can_write_eof": client.transport.can_write_eof()}
        for moment in ("open", "closed"):
            try:
                client.transport.write_eof()
                seen[moment] = "ok"
            except Exception as exc:
                seen[moment] = describe(exc)
            client.transport.close()
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        return seen

    assert agree(main) == {"can_write_eof": False, "open": ("NotImplementedError", ""),
                           "closed": ("NotImplementedError", "")}


class Greeter(Recorder):
    """Writes a greeting from connection_made, and closes from there if
    `close_at_once`."""

    close_at_once = False

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(b"220 hello\r\n")
        if self.close_at_once:
            transport.close()


class CloseOnData(Recorder):
    def data_received(self, data):
        super().data_received(data)
        self.transport.write(b"bye")
        self.transport.close()


class ClosingGreeter(Greeter):
    close_at_once = True


@pytest.mark.parametrize("server_kind", [Greeter, ClosingGreeter])
def test_write_and_close_from_the_callbacks(contexts, server_kind):
    async def main():
        client, server = await tls_pair(contexts, server_kind, CloseOnData)
        await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 10)
        return client.events, bytes(client.received), server.events, bytes(server.received)

    client_events, greeting, _, _ = agree(main)
    assert greeting == b"220 hello\r\n" and client_events[-1] == ("lost", None)


class EofClosing(Recorder):
    """Records is_closing() where the end shows."""

    def eof_received(self):
        self.events.append(("closing at eof", self.transport.is_closing()))
        return super().eof_received()

    def connection_lost(self, exc):
        self.events.append(("closing at lost", self.transport.is_closing()))
        super().connection_lost(exc)


@pytest.mark.parametrize("end", ["close_notify", "tcp eof"])
def test_is_closing_as_the_peer_ends_the_connection(contexts, end):
    async def main():
        client, peer = await hand_server(contexts, EofClosing)
        if end == "close_notify":
            await peer.send_close_notify()
        else:
            peer.sock.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return client.events

    events = agree(main)
    assert events[-1] == ("lost", None)


def test_set_protocol_switches_between_protocol_kinds(contexts):
    async def main():
        client, server = await tls_pair(contexts)
        client.transport.write(b"one")
        await server.receive(3)
        buffered = BufferedRecorder(7)
        buffered.transport = server.transport
        buffered.events.append("made")
        server.transport.set_protocol(buffered)
        same = server.transport.get_protocol() is buffered
        client.transport.write(b"two" * 10)
        await buffered.receive(30)
        plain = Recorder()
        plain.transport = server.transport
        plain.events.append("made")
        server.transport.set_protocol(plain)
        client.transport.write(b"three")
        await plain.receive(5)
        await closed(client, plain)
        return same, bytes(server.received), bytes(buffered.received), bytes(plain.received), plain.events

    same, first, second, third, _ = agree(main)
    assert same and (first, second, third) == (b"one", b"two" * 10, b"three")


def test_sendfile_over_tls(contexts, tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(payload(300_000))

    async def main():
        loop = asyncio.get_running_loop()
        client, server = await tls_pair(contexts)
        with open(path, "rb") as f:
            sent = await loop.sendfile(client.transport, f, offset=1000, count=200_000)
            position = f.tell()
        got = await server.receive(200_000)
        await closed(client, server)
        return sent, position, got == payload(300_000)[1000:201_000]

    assert agree(main) == (200_000, 201_000, True)


def test_tls_over_a_unix_socket_pair(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        c, s = socket.socketpair()
        (_, server), (_, client) = await asyncio.gather(
            loop.connect_accepted_socket(Recorder, s, ssl=server_ctx),
            loop.create_connection(Recorder, sock=c, ssl=client_ctx, server_hostname="localhost"))
        client.transport.write(b"over unix")
        await server.receive(9)
        seen = extra_info(client.transport, client_ctx), extra_info(server.transport, server_ctx)
        await closed(client, server)
        return seen

    client_extra, _ = agree(main)
    assert client_extra["peername"] == ""


# ---------------------------------------------------------------------------
# Errors


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory):
    """Where the certificate of `fresh`'s contexts is (cert.pem, key.pem)."""
    return tmp_path_factory.mktemp("tls-parity")


@pytest.fixture(scope="module")
def fresh(cert_dir):
    """Makes new (server, client) contexts over one certificate, for the
    tests that change a context."""
    return lambda: tls_contexts(cert_dir)


def outcome(result):
    """A connection attempt's result as data: "connected", or what it raised
    (with an SSLError's reason and library and a verification failure's
    code and message)."""
    if not isinstance(result, BaseException):
        return "connected"
    details = [describe(result)]
    for name in ("reason", "library", "verify_code", "verify_message"):
        if hasattr(result, name):
            details.append((name, getattr(result, name)))
    return details


async def attempt(awaitable):
    """outcome() of awaiting a connection attempt."""
    try:
        result = await awaitable
    except Exception as exc:
        result = exc
    return outcome(result)


async def handshake_both(server_ctx, client_ctx, hostname="localhost", client_kw=None, server_kw=None):
    """A handshake between two transports that may fail: what each side's
    call returned or raised, with each transport closed."""
    loop = asyncio.get_running_loop()
    c, s = tcp_pair()
    results = await asyncio.gather(
        loop.connect_accepted_socket(Recorder, s, ssl=server_ctx, **(server_kw or {})),
        loop.create_connection(Recorder, sock=c, ssl=client_ctx, server_hostname=hostname, **(client_kw or {})),
        return_exceptions=True,
    )
    for result in results:
        if not isinstance(result, BaseException):
            result[0].close()
    await asyncio.sleep(0.01)
    c.close()
    s.close()
    return [outcome(r) for r in results]


def test_certificate_verification_failure(contexts):
    async def main():
        seen = Seen()
        untrusting = ssl.create_default_context()
        server, client = await handshake_both(contexts[0], untrusting)
        return server, client, seen.result()

    server, client, seen = agree(main)
    assert client[0][0] == "SSLCertVerificationError" and ("verify_code", 18) in client
    assert seen == {"errors": [], "logs": []}  # an SSLError is an OSError: only debug mode logs it


def test_hostname_mismatch(contexts):
    async def main():
        seen = Seen()
        server, client = await handshake_both(*contexts, hostname="elsewhere.example")
        return server, client, seen.result()

    server, client, _ = agree(main)
    assert client[0][0] == "SSLCertVerificationError" and "Hostname mismatch" in client[0][1]


@pytest.mark.parametrize("side", ["client", "server"])
def test_handshake_timeout(contexts, side):
    """The peer never answers: ConnectionAbortedError after
    ssl_handshake_timeout, with asyncio's message; the socket goes."""
    async def main():
        seen = Seen()
        loop = asyncio.get_running_loop()
        c, s = tcp_pair()
        if side == "client":
            connecting = loop.create_connection(Recorder, sock=c, ssl=contexts[1], server_hostname="localhost",
                                                ssl_handshake_timeout=0.1)
            silent = s
        else:
            connecting = loop.connect_accepted_socket(Recorder, s, ssl=contexts[0], ssl_handshake_timeout=0.1)
            silent = c
        result = await attempt(connecting)
        wire = await HandPeer(silent, contexts[0], True).wire_until_eof()
        silent.close()
        return result, wire[:1], seen.result()

    result, wire, _ = agree(main)
    assert result == [("ConnectionAbortedError",
                       "SSL handshake is taking longer than 0.1 seconds: aborting the connection")]
    assert wire == (b"\x16" if side == "client" else b"")


def test_shutdown_timeout(contexts):
    """The peer never answers close_notify: connection_lost(TimeoutError)
    after ssl_shutdown_timeout."""
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts, client_kw={"ssl_shutdown_timeout": 0.1})
        client.transport.close()
        wire = await peer.wire_until_eof()
        peer.incoming.write(wire)
        notified = peer.obj.read(10) == b""  # the close_notify
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return client.events, notified, seen.result()

    events, notified, _ = agree(main)
    assert events[-1] == ("lost", ("TimeoutError", "SSL shutdown timed out")) and notified


def test_shutdown_timeout_with_a_peer_that_does_not_read(contexts):
    """Data still queued for a peer that reads nothing: close() gives up
    after ssl_shutdown_timeout."""
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts, client_kw={"ssl_shutdown_timeout": 0.2})
        client.transport.write(payload(8 << 20))
        client.transport.close()
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return client.events, seen.result()

    events, _ = agree(main)
    assert events[-1] == ("lost", ("TimeoutError", "SSL shutdown timed out"))


def test_peer_sends_data_after_our_close_notify(contexts):
    """close() sent close_notify; the peer still sends data, then its own
    close_notify."""
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts)
        client.transport.close()
        got, how = await peer.read_to_end()
        await peer.send(b"too late")
        await peer.send_close_notify()
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return how, client.events, bytes(client.received), seen.result()

    how, events, received, _ = agree(main)
    assert how == "close_notify" and events[-1][0] == "lost"


def test_a_client_without_the_certificate_the_server_requires(fresh):
    """TLS 1.3: the client's handshake is done before the server checks
    its certificate, so the client is connected when the server fails."""
    async def main():
        seen = Seen()
        server_ctx, client_ctx = fresh()
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        c, s = tcp_pair()
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            loop.connect_accepted_socket(Recorder, s, ssl=server_ctx),
            loop.create_connection(Recorder, sock=c, ssl=client_ctx, server_hostname="localhost"),
            return_exceptions=True)
        client = results[1][1] if not isinstance(results[1], BaseException) else None
        if client is not None:
            await asyncio.wait_for(client.lost, 10)
        c.close()
        s.close()
        return [outcome(r) for r in results], client.events if client else None, seen.result()

    results, events, _ = agree(main)
    assert results[0][0][0] == "SSLError"


TIMEOUT_CASES = [(api, name, value) for api in ("create_connection", "connect_accepted_socket", "start_tls")
                 for name in ("ssl_handshake_timeout", "ssl_shutdown_timeout") for value in (0, -1)]


@pytest.mark.parametrize(("api", "name", "value"), TIMEOUT_CASES)
def test_timeouts_must_be_positive(contexts, api, name, value):
    async def main():
        loop = asyncio.get_running_loop()
        c, s = tcp_pair()
        try:
            if api == "create_connection":
                await loop.create_connection(Recorder, sock=c, ssl=contexts[1], server_hostname="localhost",
                                             **{name: value})
            elif api == "connect_accepted_socket":
                await loop.connect_accepted_socket(Recorder, s, ssl=contexts[0], **{name: value})
            else:
                transport, _ = await loop.create_connection(Recorder, sock=c)
                try:
                    await loop.start_tls(transport, transport.get_protocol(), contexts[1],
                                         server_hostname="localhost", **{name: value})
                finally:
                    transport.close()
            result = "accepted"
        except Exception as exc:
            result = describe(exc)
        await asyncio.sleep(0)
        sockets_open = (c.fileno() != -1, s.fileno() != -1)
        c.close()
        s.close()
        return result, sockets_open

    result, _ = agree(main)
    assert result == ("ValueError", f"{name} should be a positive number, got {value}")


def test_a_server_with_a_timeout_of_zero(contexts):
    """create_server does not check the timeout: each accepted connection's
    transport fails to be made, which only debug mode reports."""
    async def main():
        seen = Seen()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Recorder, "127.0.0.1", 0, ssl=contexts[0], ssl_handshake_timeout=0)
        port = server.sockets[0].getsockname()[1]
        try:
            await loop.create_connection(Recorder, "127.0.0.1", port, ssl=contexts[1], server_hostname="localhost",
                                         ssl_handshake_timeout=0.2)
            result = "connected"
        except Exception as exc:
            result = describe(exc)
        server.close()
        return result, seen.result()

    with asyncio_leaks_dropped():  # the accepted socket nobody closes
        result, seen = agree(main)
    assert result[0] in ("ConnectionAbortedError", "ConnectionResetError")


def test_ssl_true_without_server_hostname(contexts):
    async def main():
        loop = asyncio.get_running_loop()
        results = {}
        c, s = tcp_pair()
        try:
            await loop.create_connection(Recorder, sock=c, ssl=True)
        except Exception as exc:
            results["sock, no hostname"] = describe(exc)
        # An empty hostname: a default context with no hostname check,
        # which still verifies the (self-signed) certificate.
        peer = asyncio.ensure_future(HandPeer(s, contexts[0], True).handshake())
        results["empty hostname"] = await attempt(
            loop.create_connection(Recorder, sock=c, ssl=True, server_hostname=""))
        results["peer"] = await attempt(peer)
        c.close()
        s.close()
        return results

    results = agree(main)
    assert results["sock, no hostname"] == ("ValueError", "You must set server_hostname when using ssl without a host")
    assert results["empty hostname"][0][0] == "SSLCertVerificationError"


def test_server_side_without_a_context(contexts):
    async def main():
        loop = asyncio.get_running_loop()
        c, s = tcp_pair()
        try:
            await loop.connect_accepted_socket(Recorder, s, ssl=True)
            result = "connected"
        except Exception as exc:
            result = describe(exc)
        open_after = s.fileno() != -1
        c.close()
        s.close()
        return result, open_after

    assert agree(main)[0] == ("ValueError", "Server side SSL needs a valid SSLContext")


def test_write_type_errors(contexts):
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts)
        results = {}
        for name, data in (("str", "text"), ("int", 1), ("None", None), ("list", [b"a"])):
            try:
                client.transport.write(data)
                results[name] = "ok"
            except Exception as exc:
                results[name] = describe(exc)
        client.transport.write(b"")
        client.transport.write(b"still open")
        await server.receive(10)
        results["connection"] = (bytes(server.received), client.transport.is_closing())
        await closed(client, server)
        return results, seen.result()

    results, seen = agree(main)
    assert results["str"] == ("TypeError", "data: expecting a bytes-like instance, got str")
    assert results["int"] == ("TypeError", "data: expecting a bytes-like instance, got int")


def test_write_type_error_names_the_type(contexts):
    async def main():
        client, server = await tls_pair(contexts)
        raised = []
        for data in (array.array("b", b"x"), collections.deque()):
            try:
                client.transport.write(data)
            except TypeError as exc:
                raised.append(str(exc))
        await closed(client, server)
        return raised

    assert agree(main) == ["data: expecting a bytes-like instance, got array",
                           "data: expecting a bytes-like instance, got deque"]


def test_a_failing_writelines_leaves_what_came_before_it(contexts):
    """asyncio queues each item as the iterable gives it: what came before
    the failure goes out with the next write."""
    async def main():
        client, server = await tls_pair(contexts)

        def items():
            yield b"partial "
            raise ValueError("from the generator")

        try:
            client.transport.writelines(items())
            raised = None
        except ValueError as exc:
            raised = describe(exc)
        client.transport.write(b"after")
        got = await server.receive(13)
        await closed(client, server)
        return raised, got

    assert agree(main) == (("ValueError", "from the generator"), b"partial after")


@pytest.mark.parametrize("bad", ["str in writelines", "non-contiguous memoryview"])
def test_data_the_ssl_object_refuses(contexts, bad):
    """Data write() lets through but SSLObject.write() refuses: asyncio
    calls that a fatal error on the SSL protocol and drops the connection."""
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts)
        try:
            if bad == "str in writelines":
                client.transport.writelines([b"before", "text"])
            else:
                client.transport.write(memoryview(b"abcdef")[::2])
            raised = None
        except Exception as exc:
            raised = describe(exc)
        await asyncio.sleep(0.1)
        result = raised, client.events[:], server.events[:], bytes(server.received), seen.result()
        await closed(client, server)
        return result

    agree(main)


@pytest.mark.parametrize("side", ["client", "server"])
def test_garbage_instead_of_a_hello(contexts, side):
    """The peer answers (or opens) the handshake with plain text."""
    async def main():
        seen = Seen()
        loop = asyncio.get_running_loop()
        c, s = tcp_pair()
        if side == "client":
            connecting = asyncio.ensure_future(
                loop.create_connection(Recorder, sock=c, ssl=contexts[1], server_hostname="localhost"))
            await loop.sock_recv(s, 1 << 16)
            peer = HandPeer(s, contexts[0], True)
            await loop.sock_sendall(s, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        else:
            connecting = loop.connect_accepted_socket(Recorder, s, ssl=contexts[0])
            peer = HandPeer(c, contexts[1], False, hostname="localhost")
            await loop.sock_sendall(c, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        result = await attempt(connecting)
        wire = await peer.wire_until_eof()
        c.close()
        s.close()
        return result, wire, seen.result()

    result, wire, seen = agree(main)
    assert result[0][0] == "SSLError" and wire == b""
    assert ("WRONG_VERSION_NUMBER" if side == "client" else "HTTP_REQUEST") in result[0][1]


@pytest.mark.parametrize("garbage", [b"not a TLS record at all", b"\x17\x03\x03\x00\x10" + b"\x00" * 16])
def test_garbage_after_the_handshake(contexts, garbage):
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts)
        await peer.send(b"fine")
        await client.receive(4)
        await peer.loop.sock_sendall(peer.sock, garbage)
        await asyncio.wait_for(client.lost, 10)
        wire = await peer.wire_until_eof()
        peer.sock.close()
        return client.events, bytes(client.received), wire, seen.result()

    events, received, wire, seen = agree(main)
    assert events[-1][0] == "lost" and events[-1][1][0] == "SSLError" and received == b"fine"


def test_a_client_hello_of_a_refused_version(fresh):
    """The server takes TLS 1.3 only, the client offers TLS 1.2 at most."""
    async def main():
        seen = Seen()
        server_ctx, client_ctx = fresh()
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        server, client = await handshake_both(server_ctx, client_ctx)
        return server, client, seen.result()

    server, client, _ = agree(main)
    assert server[0][0] == "SSLError" and "UNSUPPORTED_PROTOCOL" in server[0][1]


class DebugSeen(Seen):
    """Seen, for debug mode: each record of asyncio's logger as its level,
    its format string and the arguments that are text (the others are
    reprs), and its exception's type; the loop's slow-callback warnings
    are left out (they depend on the machine's speed)."""

    def __init__(self):
        super().__init__()
        asyncio.get_running_loop().slow_callback_duration = 60
        self._handler.emit = self._emit
        self._level = logging.getLogger("asyncio").level
        logging.getLogger("asyncio").setLevel(logging.DEBUG)

    def result(self):
        logging.getLogger("asyncio").setLevel(self._level)
        return super().result()

    def _emit(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        text = tuple(a for a in args if isinstance(a, str))
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        self.logs.append((record.levelname, record.msg, text, exc))


@pytest.mark.parametrize("how", ["closed", "failed handshake"])
def test_debug_mode_logs(contexts, how):
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        seen = DebugSeen()
        if how == "failed handshake":
            result = await handshake_both(contexts[0], ssl.create_default_context())
        else:
            client, server = await tls_pair(contexts)
            await closed(client)
            await asyncio.wait_for(server.lost, 10)
            result = client.events, server.events
        await asyncio.sleep(0.01)
        return result, seen.result()

    agree(main)


# ---------------------------------------------------------------------------
# Flow control


LIMIT_CASES = [
    (name, args) for name in ("write", "read")
    for args in ({"high": 1000}, {"low": 10}, {"high": 100, "low": 50}, {"high": 0}, {}, {"high": 100, "low": 200},
                 {"high": -1}, {"high": 1000.5})
]


def test_buffer_limit_defaults(contexts):
    async def main():
        client, server = await tls_pair(contexts)
        t = client.transport
        seen = (t.get_write_buffer_limits(), t.get_read_buffer_limits(), t.get_write_buffer_size(),
                t.get_read_buffer_size())
        await closed(client, server)
        return seen

    assert agree(main) == ((128 * 1024, 512 * 1024), (64 * 1024, 256 * 1024), 0, 0)


@pytest.mark.parametrize(("name", "args"),
                         [pytest.param(name, args, id=f"{name}-{args}") for name, args in LIMIT_CASES])
def test_set_buffer_limits(contexts, name, args):
    async def main():
        client, server = await tls_pair(contexts)
        t = client.transport
        setter, getter = ((t.set_write_buffer_limits, t.get_write_buffer_limits) if name == "write"
                          else (t.set_read_buffer_limits, t.get_read_buffer_limits))
        try:
            setter(**args)
            seen = getter()
        except Exception as exc:
            seen = describe(exc)
        await closed(client, server)
        return seen

    agree(main)


def test_one_large_write(contexts):
    """What get_write_buffer_size() says right after one 8 MiB write to a
    peer that does not read yet, and whether the protocol is paused."""
    async def main():
        client, peer = await hand_server(contexts)
        client.transport.write(payload(8 << 20))
        seen = (client.transport.get_write_buffer_size() > 0, client.flow[:])
        got = await peer.recv(8 << 20)
        await asyncio.sleep(0.05)
        client.transport.abort()
        await client.lost
        peer.sock.close()
        return seen, got == payload(8 << 20), client.flow

    agree(main)


def test_pause_and_resume_writing_to_a_peer_that_does_not_read(contexts):
    async def main():
        client, peer = await hand_server(contexts)
        chunk = payload(1 << 16)
        written = 0
        while not client.flow and written < 256 << 20:
            client.transport.write(chunk)
            written += len(chunk)
            await asyncio.sleep(0)
        paused_at = (client.flow[:], client.transport.get_write_buffer_size() > 0)
        got = await peer.recv(written)
        await asyncio.sleep(0.05)
        result = paused_at, got == chunk * (written // len(chunk)), client.flow[:], \
            client.transport.get_write_buffer_size()
        client.transport.abort()
        await client.lost
        peer.sock.close()
        return result

    paused_at, intact, flow, size = agree(main)
    assert paused_at == (["pause"], True) and intact and flow == ["pause", "resume"] and size == 0


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize(("where", "end"), [("eof_received", "tcp eof"), ("data_received", "close_notify"),
                                            ("data_received", "tcp eof")])
def test_a_callback_raises_as_the_peer_ends(contexts, where, end, exc_type):
    """The peer's last data and its end come together; the callback that
    sees the data (or the end) raises."""
    async def main():
        seen = Seen()
        client, peer = await hand_server(contexts, lambda: Raising(where, exc_type))
        peer.obj.write(b"last words")
        if end == "close_notify":
            await peer.send_close_notify()
        else:
            await peer.flush()
            peer.sock.shutdown(socket.SHUT_WR)
        try:  # no answer comes where the end was lost
            answer = await asyncio.wait_for(peer.read_to_end(), 0.5)
        except TimeoutError:
            answer = "no answer"
        await asyncio.wait([client.lost], timeout=0.3)
        result = client.events[:], bytes(client.received), answer, seen.result()
        client.transport.abort()
        peer.sock.close()
        await asyncio.sleep(0.01)
        return result

    results = {name: run_through_interrupts(factory, main) for name, factory in LOOPS.items()}
    (events, received, answer, seen), interrupts = results["cxxloop"]
    assert received == b"last words"
    if (where, end, exc_type) == ("data_received", "close_notify", KeyboardInterrupt):
        # asyncio's SSL has read the close_notify when the interrupt
        # unwinds, and nothing takes it up again: the connection hangs.
        # cxxloop keeps it for its next read, so the connection ends as if
        # nothing had been raised.
        assert results["asyncio"][0][:3] == (["made", "data"], b"last words", "no answer")
        assert (events, answer) == (["made", "data", "eof", ("lost", None)], (b"", "close_notify"))
        assert interrupts == results["asyncio"][1]
    else:
        assert results["cxxloop"] == results["asyncio"], results


class RaisingFlow(Recorder):
    """Raises from its first pause_writing and its first resume_writing."""

    def __init__(self, exc_type):
        super().__init__()
        self.exc_type = exc_type

    def pause_writing(self):
        super().pause_writing()
        if self.flow == ["pause"]:
            raise self.exc_type("from pause_writing")

    def resume_writing(self):
        super().resume_writing()
        if self.flow == ["pause", "resume"]:
            raise self.exc_type("from resume_writing")


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_pause_and_resume_writing_raise(contexts, exc_type):
    """A high-water mark of 0 pauses the protocol at once (the buffer is
    not above it, but at it); the write, sent at once, resumes it. What
    each raises goes to the exception handler, or (a KeyboardInterrupt)
    out of set_write_buffer_limits() and write()."""
    async def main():
        seen = Seen()
        client, server = await tls_pair(contexts, client_factory=lambda: RaisingFlow(exc_type))
        raised = []
        calls = (lambda: client.transport.set_write_buffer_limits(high=0), lambda: client.transport.write(b"first"))
        for call in calls:
            try:
                call()
                raised.append(None)
            except BaseException as exc:
                raised.append(describe(exc))
        got = await server.receive(5)
        await closed(client, server)
        # How often the protocol pauses differs (test_one_large_write):
        # the first pause and resume are compared.
        return raised, got, client.flow[:2], seen.result()["errors"][:2]

    if exc_type is RuntimeError:
        raised, got, flow, errors = agree(main)
        assert raised == [None, None] and got == b"first" and [e[:2] for e in errors] == [
            ("protocol.pause_writing() failed", ("RuntimeError", "from pause_writing")),
            ("protocol.resume_writing() failed", ("RuntimeError", "from resume_writing"))]
    else:
        results = {name: run_through_interrupts(factory, main) for name, factory in LOOPS.items()}
        assert results["cxxloop"] == results["asyncio"], results
        (raised, got, flow, errors), interrupts = results["cxxloop"]
        assert raised == [("KeyboardInterrupt", "from pause_writing"), ("KeyboardInterrupt", "from resume_writing")]
        assert got == b"first" and interrupts == []


@pytest.mark.parametrize("size", [10_000, 1 << 20])
def test_pause_reading_holds_back_data(contexts, size):
    """Nothing is delivered while reading is paused; everything after."""
    async def main():
        client, server = await tls_pair(contexts)
        t = server.transport
        t.pause_reading()
        t.pause_reading()
        seen = {"is_reading paused": t.is_reading()}
        data = payload(size)
        client.transport.write(data)
        await asyncio.sleep(0.1)
        seen["while paused"] = (bytes(server.received), t.get_read_buffer_size() > 0,
                                t.get_read_buffer_size() >= 256 * 1024)
        t.resume_reading()
        t.resume_reading()
        seen["is_reading resumed"] = t.is_reading()
        got = await server.receive(size)
        seen["after"] = (got == data, t.get_read_buffer_size())
        await closed(client, server)
        seen["events"] = server.events
        return seen

    seen = agree(main)
    assert seen["while paused"][0] == b"" and seen["after"] == (True, 0)


@pytest.mark.parametrize("end", ["close_notify", "tcp eof"])
def test_the_end_of_the_connection_waits_for_resume_reading(contexts, end):
    async def main():
        client, peer = await hand_server(contexts)
        client.transport.pause_reading()
        await peer.send(b"before the end")
        if end == "close_notify":
            await peer.send_close_notify()
        else:
            peer.sock.shutdown(socket.SHUT_WR)
        await asyncio.sleep(0.1)
        while_paused = client.events[:], bytes(client.received)
        client.transport.resume_reading()
        await asyncio.wait_for(client.lost, 10)
        peer.sock.close()
        return while_paused, client.events, bytes(client.received)

    while_paused, events, received = agree(main)
    assert while_paused == (["made"], b"") and received == b"before the end"


# ---------------------------------------------------------------------------
# Faults in the protocol's callbacks


class Raising(Recorder):
    """Raises `exc_type` out of the callback named `where`, once, after
    recording what it was given."""

    def __init__(self, where, exc_type):
        super().__init__()
        self.where = where
        self.exc_type = exc_type

    def _maybe_raise(self, name):
        if name == self.where:
            self.where = None
            raise self.exc_type(f"from {name}")

    def connection_made(self, transport):
        super().connection_made(transport)
        self._maybe_raise("connection_made")

    def data_received(self, data):
        super().data_received(data)
        self._maybe_raise("data_received")

    def eof_received(self):
        super().eof_received()
        self._maybe_raise("eof_received")


class RaisingBuffered(BufferedRecorder, Raising):
    def __init__(self, where, exc_type):
        BufferedRecorder.__init__(self, 1000)
        self.where = where
        self.exc_type = exc_type

    def get_buffer(self, sizehint):
        self._maybe_raise("get_buffer")
        return super().get_buffer(sizehint)

    def buffer_updated(self, nbytes):
        super().buffer_updated(nbytes)
        self._maybe_raise("buffer_updated")


FAULT_CHUNKS = [payload(3000), payload(20_000), payload(5)]


def run_through_interrupts(factory, scenario):
    """scenario() as a task on a fresh loop; each KeyboardInterrupt or
    SystemExit out of the loop is counted and the loop run again, until the
    task is done. Returns (the task's result or what it raised, how many
    times the loop was interrupted)."""
    loop = factory()
    try:
        task = loop.create_task(scenario())
        interrupts = []
        while not task.done() and len(interrupts) < 10:
            try:
                loop.run_until_complete(task)
            except (KeyboardInterrupt, SystemExit) as exc:
                interrupts.append(describe(exc))
            except RuntimeError:
                # An interrupted run_until_complete() leaves its stop()
                # behind if the loop had already scheduled it: the next
                # run stops early. The task is still running.
                pass
        return (task.result() if not task.exception() else describe(task.exception())), interrupts
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("where", ["connection_made", "data_received", "eof_received", "get_buffer",
                                   "buffer_updated"])
def test_a_callback_raises(contexts, where, exc_type):
    """An Exception from a callback reaches the exception handler and ends
    the connection; a KeyboardInterrupt or SystemExit unwinds the loop, and
    once it runs again, the connection carries on: nothing lost, nothing
    twice, the end still comes."""
    buffered = where in ("get_buffer", "buffer_updated")
    expected = b"".join(FAULT_CHUNKS)

    async def scenario():
        seen = Seen()
        steps = []
        made = []

        def make():
            made.append(RaisingBuffered(where, exc_type) if buffered else Raising(where, exc_type))
            return made[-1]

        try:
            client, server = await asyncio.wait_for(
                tls_pair(contexts, make, client_kw={"ssl_shutdown_timeout": 0.3}), 0.5)
        except Exception as exc:
            for protocol in made:  # connected, as far as the transport knows
                protocol.transport.abort()
            await asyncio.sleep(0.01)
            return ["connect", describe(exc), [p.events for p in made]], seen.result()
        for chunk in FAULT_CHUNKS:
            client.transport.write(chunk)
            await asyncio.sleep(0.01)
        receiving = asyncio.ensure_future(server.receive(len(expected), timeout=1))
        await asyncio.wait([receiving, server.lost], return_when=asyncio.FIRST_COMPLETED)
        steps.append("received" if receiving.done() and not receiving.exception() else "not all received")
        receiving.cancel()
        client.transport.close()
        try:
            await asyncio.wait_for(asyncio.gather(client.lost, server.lost), 2)
            steps.append("closed")
        except TimeoutError:
            steps.append("not closed")
            client.transport.abort()
            server.transport.abort()
            await asyncio.sleep(0.01)
        steps += [server.events, client.events, bytes(server.received) == expected, len(server.received)]
        return steps, seen.result()

    results = {name: run_through_interrupts(factory, scenario) for name, factory in LOOPS.items()}
    if where == "connection_made" and exc_type is not RuntimeError:
        # A deliberate difference: sslproto skips setting the connection's
        # waiter when connection_made() unwinds the loop, and the connect
        # waits for ever (here: times out); cxxloop sets it first, and the
        # connection carries on like the others.
        (steps, seen), interrupts = results["asyncio"]
        assert steps[:2] == ["connect", ("TimeoutError", "")], results
        (steps, seen), interrupts = results["cxxloop"]
        assert steps[:2] == ["received", "closed"] and steps[-2:] == [True, len(expected)], results
        assert interrupts == [(exc_type.__name__, "from connection_made")], results
        return
    assert results["cxxloop"] == results["asyncio"], results


# ---------------------------------------------------------------------------
# start_tls


async def starttls_stream_server(server_ctx, results, **start_tls_kw):
    """A plain server that answers "STARTTLS\\n" with "OK\\n", upgrades,
    then echoes; what its side saw goes into `results`."""
    async def handle(reader, writer):
        try:
            results["line"] = await reader.readline()
            writer.write(b"OK\n")
            await writer.drain()
            plain = writer.transport
            await writer.start_tls(server_ctx, **start_tls_kw)
            results["old transport closing"] = plain.is_closing()
            while chunk := await reader.read(1 << 16):
                writer.write(chunk)
                await writer.drain()
            results["end"] = "eof"
        except Exception as exc:
            results["end"] = outcome(exc)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def starttls_client(server_ctx, protocol_factory=Recorder):
    """A plain connection to a starttls_stream_server, told to upgrade:
    (server, what the server's side saw, transport, protocol)."""
    server_saw = {}
    server, port = await starttls_stream_server(server_ctx, server_saw)
    transport, protocol = await asyncio.get_running_loop().create_connection(protocol_factory, "127.0.0.1", port)
    transport.write(b"STARTTLS\n")
    await protocol.receive(3)
    return server, server_saw, transport, protocol


def test_start_tls_client_side_with_a_protocol(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        server, server_saw, transport, protocol = await starttls_client(server_ctx)
        tls = await loop.start_tls(transport, protocol, client_ctx, server_hostname="localhost")
        seen = {"events after upgrade": protocol.events[:], "same protocol": tls.get_protocol() is protocol,
                "extra": extra_info(tls, client_ctx), "old closing": transport.is_closing(),
                "tls closing": tls.is_closing()}
        data = payload(100_000)
        tls.write(data)
        seen["echo"] = await protocol.receive(3 + len(data)) == b"OK\n" + data
        tls.close()
        await asyncio.wait_for(protocol.lost, 10)
        seen["end"] = (protocol.events, transport.is_closing(), tls.is_closing())
        server.close()
        await server.wait_closed()
        seen["server"] = server_saw
        return seen

    seen = agree(main)
    assert seen["echo"] and seen["events after upgrade"] == ["made", "data"]


class Upgrading(Recorder):
    """A plain server protocol that upgrades to TLS on "STARTTLS\\n"."""

    def __init__(self, server_ctx, outcome_box):
        super().__init__()
        self.server_ctx = server_ctx
        self.outcome_box = outcome_box

    def data_received(self, data):
        if data == b"STARTTLS\n" and not hasattr(self, "plain"):
            self.plain = self.transport
            self.plain.write(b"OK\n")
            self.upgrading = asyncio.ensure_future(self.upgrade())
            return
        super().data_received(data)
        self.transport.write(data)

    async def upgrade(self):
        loop = asyncio.get_running_loop()
        try:
            self.transport = await loop.start_tls(self.plain, self, self.server_ctx, server_side=True)
            self.outcome_box.set_result(("upgraded", self.plain.is_closing(), self.transport.is_closing()))
        except Exception as exc:
            self.outcome_box.set_result(outcome(exc))


def test_start_tls_server_side_with_a_protocol_and_client_streams(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        box = loop.create_future()
        protocols = []
        server = await loop.create_server(lambda: protocols.append(Upgrading(server_ctx, box)) or protocols[-1],
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        upgraded = await box
        writer.write(b"over tls")
        echoed = await reader.readexactly(8)
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(protocols[0].lost, 10)
        server.close()
        await server.wait_closed()
        return upgraded, echoed, protocols[0].events, extra_info(writer.transport, client_ctx)["ssl_object"]

    upgraded, echoed, events, _ = agree(main)
    assert upgraded == ("upgraded", False, False) and echoed == b"over tls"


def test_start_tls_handshake_failure(contexts):
    server_ctx, _ = contexts

    async def main():
        seen = Seen()
        loop = asyncio.get_running_loop()
        server, server_saw, transport, protocol = await starttls_client(server_ctx)
        result = await attempt(
            loop.start_tls(transport, protocol, ssl.create_default_context(), server_hostname="localhost"))
        closing = transport.is_closing()
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return result, closing, protocol.events, server_saw, seen.result()

    result, closing, events, server_saw, _ = agree(main)
    assert result[0][0] == "SSLCertVerificationError" and closing


def test_start_tls_with_the_client_hello_already_in_the_stream_buffer(contexts):
    """The client sends "STARTTLS\\n" and its ClientHello at once, so the
    server's StreamReader holds the ClientHello when start_tls begins.
    asyncio hands it to the TLS layer from 3.14; before, the handshake
    waits for bytes that already came, and times out."""
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        server_saw = {}
        server, port = await starttls_stream_server(server_ctx, server_saw, ssl_handshake_timeout=0.3)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        peer = HandPeer(sock, client_ctx, server_side=False, hostname="localhost")
        try:
            peer.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        await loop.sock_sendall(sock, b"STARTTLS\n" + peer.outgoing.read())
        ok = await loop.sock_recv(sock, 3)
        try:
            await peer.handshake()
            await peer.send(b"ping")
            result = await peer.recv(4)
        except (EOFError, ssl.SSLError, ConnectionError) as exc:
            result = describe(exc)
        sock.close()
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return ok, result, server_saw

    agree(main)


def test_start_tls_after_plain_writes_still_queued(contexts):
    """What the plain transport had queued goes out before the handshake.
    (asyncio's socket transport then calls resume_writing on its new
    protocol, asyncio's SSLProtocol, which never paused, and reports the
    AssertionError that raises; cxxloop has nothing to report.)"""
    async def main():
        seen = Seen()
        loop = asyncio.get_running_loop()
        c, s = tcp_pair()
        transport, protocol = await loop.create_connection(Recorder, sock=c)
        plain = payload(4 << 20)
        transport.write(plain)
        queued = transport.get_write_buffer_size() > 0
        upgrading = asyncio.ensure_future(
            loop.start_tls(transport, protocol, contexts[1], server_hostname="localhost"))
        await asyncio.sleep(0.05)
        got = bytearray()
        while len(got) < len(plain):
            got += await loop.sock_recv(s, len(plain) - len(got))
        peer = HandPeer(s, contexts[0], True)
        await peer.handshake()
        tls = await upgrading
        tls.write(b"secret")
        secret = await peer.recv(6)
        tls.close()
        await peer.send_close_notify()
        await asyncio.wait_for(protocol.lost, 10)
        s.close()
        return (queued, bytes(got) == plain, secret, protocol.events, protocol.flow), seen.result()

    results = on_both(main)
    assert results["cxxloop"][0] == results["asyncio"][0]
    assert results["cxxloop"][0][:3] == (True, True, b"secret") and results["cxxloop"][1] == {"errors": [],
                                                                                              "logs": []}


def test_closing_the_old_transport_after_start_tls(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        loop = asyncio.get_running_loop()
        server, server_saw, transport, protocol = await starttls_client(server_ctx)
        tls = await loop.start_tls(transport, protocol, client_ctx, server_hostname="localhost")
        before = (transport.is_closing(), tls.is_closing())
        transport.close()
        just_after = (transport.is_closing(), tls.is_closing())
        await asyncio.wait_for(protocol.lost, 10)
        after = (transport.is_closing(), tls.is_closing())
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return before, just_after, after, protocol.events, server_saw

    before, just_after, after, events, _ = agree(main)
    assert before == (False, False) and events[-1] == ("lost", None)


def test_tls_in_tls(contexts):
    server_ctx, client_ctx = contexts

    async def main():
        async def handle(reader, writer):
            await writer.start_tls(server_ctx)
            while chunk := await reader.read(1 << 16):
                writer.write(chunk)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        outer = writer.transport
        await writer.start_tls(client_ctx, server_hostname="localhost")
        data = payload(300_000)
        writer.write(data)
        echoed = await reader.readexactly(len(data))
        inner_object = writer.get_extra_info("ssl_object")
        seen = (echoed == data, inner_object is not outer.get_extra_info("ssl_object"),
                outer.is_closing(), type(writer.transport).__name__)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return seen, outer.is_closing()

    seen, outer_closing = agree(main)
    assert seen[:3] == (True, True, False)


# ---------------------------------------------------------------------------
# The context each callback runs in

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class Tagging:
    """A Recorder mixin: records what `var` holds in each callback, then
    sets it to name the callback."""

    def tag(self, log, name):
        self.log = log
        self.name = name
        return self

    def _see(self, callback):
        # How many reads a batch of records takes depends on how they came:
        # a callback repeated is recorded once.
        if self.log[-1:] != [(self.name, callback, f"{self.name}:{callback}")]:
            self.log.append((self.name, callback, var.get()))
        var.set(f"{self.name}:{callback}")

    def connection_made(self, transport):
        self._see("made")
        super().connection_made(transport)

    def data_received(self, data):
        self._see("data")
        super().data_received(data)

    def eof_received(self):
        self._see("eof")

    def pause_writing(self):
        # How often the protocol pauses differs (see test_one_large_write):
        # only the first pause and resume are compared.
        if not self.flow:
            self._see("pause")
        super().pause_writing()

    def resume_writing(self):
        if self.flow == ["pause"]:
            self._see("resume")
        super().resume_writing()

    def connection_lost(self, exc):
        self._see("lost")
        super().connection_lost(exc)


class TaggingProtocol(Tagging, Recorder):
    pass


class TaggingBuffered(Tagging, BufferedRecorder):
    def get_buffer(self, sizehint):
        self._see("get_buffer")
        return super().get_buffer(sizehint)

    def buffer_updated(self, nbytes):
        self._see("buffer_updated")
        super().buffer_updated(nbytes)


@pytest.mark.parametrize("buffered", [False, True])
def test_callbacks_run_in_asyncios_contexts(contexts, buffered):
    """A server's connections and a client's, each callback recording the
    context it runs in: what it holds, and what earlier callbacks set."""
    server_ctx, client_ctx = contexts

    def make(log, name):
        return (TaggingBuffered(1 << 16) if buffered else TaggingProtocol()).tag(log, name)

    async def main():
        log = []
        loop = asyncio.get_running_loop()
        var.set("server-start")
        count = iter(range(10))
        servers = []
        server = await loop.create_server(lambda: servers.append(make(log, f"server{next(count)}")) or servers[-1],
                                          "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        for n in range(2):
            var.set(f"creator{n}")
            transport, client = await loop.create_connection(functools.partial(make, log, f"client{n}"),
                                                             "127.0.0.1", port, ssl=client_ctx,
                                                             server_hostname="localhost")
            transport.set_write_buffer_limits(high=0)  # pause_writing, then resume_writing
            transport.write(b"ping")
            await asyncio.sleep(0.05)
            servers[n].transport.write(b"pong")
            await client.receive(4)
            transport.close()
            await asyncio.wait_for(asyncio.gather(client.lost, servers[n].lost), 10)
        caller_sees = var.get()
        server.close()
        await server.wait_closed()
        return log, caller_sees

    log, _ = agree(main)
    assert ("client0", "made", "creator0") in log and ("server1", "made", "server-start") in log


@pytest.mark.parametrize("side", ["client", "server"])
def test_callbacks_after_start_tls_run_in_asyncios_contexts(contexts, side):
    server_ctx, client_ctx = contexts

    async def main():
        log = []
        loop = asyncio.get_running_loop()
        var.set("server-start")
        box = loop.create_future()
        if side == "server":
            servers = []
            server = await loop.create_server(
                lambda: servers.append(UpgradingTagging(server_ctx, box).tag(log, "server")) or servers[-1],
                "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            var.set("client")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"STARTTLS\n")
            await reader.readline()
            await writer.start_tls(client_ctx, server_hostname="localhost")
            await box
            writer.write(b"hello")
            await reader.readexactly(5)
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(servers[0].lost, 10)
        else:
            var.set("creator")
            server, _, transport, protocol = await starttls_client(
                server_ctx, lambda: TaggingProtocol().tag(log, "client"))
            var.set("upgrader")
            tls = await loop.start_tls(transport, protocol, client_ctx, server_hostname="localhost")
            tls.write(b"hello")
            await protocol.receive(8)
            tls.close()
            await asyncio.wait_for(protocol.lost, 10)
        server.close()
        await server.wait_closed()
        return log, var.get()

    log, _ = agree(main)
    assert log


class UpgradingTagging(Tagging, Upgrading):
    pass


def test_data_held_back_by_pause_reading_comes_in_asyncios_context(contexts):
    async def main():
        log = []
        var.set("creator")
        client, server = await tls_pair(contexts, lambda: TaggingProtocol().tag(log, "server"),
                                        lambda: TaggingProtocol().tag(log, "client"))
        server.transport.pause_reading()
        client.transport.write(b"held")
        await asyncio.sleep(0.05)
        var.set("resumer")
        server.transport.resume_reading()
        await server.receive(4)
        client.transport.write(b"later")
        await server.receive(9)
        await closed(client, server)
        return log

    agree(main)


# ---------------------------------------------------------------------------
# TLS features through the context


def test_alpn(fresh):
    async def main():
        server_ctx, client_ctx = fresh()
        server_ctx.set_alpn_protocols(["h2", "http/1.1"])
        client_ctx.set_alpn_protocols(["http/1.1", "spdy/3"])
        client, server = await tls_pair((server_ctx, client_ctx))
        chosen = [p.transport.get_extra_info("ssl_object").selected_alpn_protocol() for p in (client, server)]
        await closed(client, server)
        return chosen

    assert agree(main) == ["http/1.1", "http/1.1"]


def test_sni_callback_sees_the_server_name(fresh):
    async def main():
        server_ctx, client_ctx = fresh()
        names = []

        def sni(sslobj, name, ctx):
            names.append((type(sslobj).__name__, name, ctx is server_ctx))

        server_ctx.sni_callback = sni
        client, server = await tls_pair((server_ctx, client_ctx))
        await closed(client, server)
        return names

    assert agree(main) == [("SSLObject", "localhost", True)]


def test_an_sni_callback_that_refuses(fresh):
    """The callback's alert ends the handshake on both sides."""
    async def main():
        seen = Seen()
        server_ctx, client_ctx = fresh()
        server_ctx.sni_callback = lambda sslobj, name, ctx: ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        result = await handshake_both(server_ctx, client_ctx)
        return result, seen.result()

    (server, client), _ = agree(main)
    # The client sees the connection go in the handshake.
    assert server[0][0] == "SSLError" and client == [("ConnectionResetError", "")]


def test_sessions(fresh):
    """asyncio offers no way to resume a session (it passes no session= to
    wrap_bio): each connection is a new one; the session it made is there
    to read."""
    async def main():
        server_ctx, client_ctx = fresh()
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the session exists right after the handshake
        seen = []
        for _ in range(2):
            client, server = await tls_pair((server_ctx, client_ctx))
            obj = client.transport.get_extra_info("ssl_object")
            seen.append((obj.session_reused, obj.session is not None, obj.version()))
            await closed(client, server)
        return seen

    assert agree(main) == [(False, True, "TLSv1.2")] * 2


def test_post_handshake_authentication(fresh, cert_dir):
    """TLS 1.3: the server asks for the client's certificate after the
    handshake; the request goes out with the server's next write, and the
    client's answer with what it sends after reading it."""
    async def main():
        server_ctx, client_ctx = fresh()
        # The client shows the server's own (self-signed) certificate.
        server_ctx.load_verify_locations(cert_dir / "cert.pem")
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.post_handshake_auth = True
        client_ctx.post_handshake_auth = True
        client_ctx.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
        client, server = await tls_pair((server_ctx, client_ctx))
        obj = server.transport.get_extra_info("ssl_object")
        before = obj.getpeercert()
        obj.verify_client_post_handshake()
        server.transport.write(b"who are you?")
        await client.receive(12)
        client.transport.write(b"me")
        await server.receive(2)
        after = obj.getpeercert()
        await closed(client, server)
        return before, after["subject"] if after else after, server.transport.get_extra_info("peercert")

    before, after, extra = agree(main)
    assert before is None and after == (((("commonName", "localhost"),),)) and extra is None


def test_keylog_file(fresh, tmp_path):
    async def main():
        server_ctx, client_ctx = fresh()
        path = tmp_path / f"keys-{id(asyncio.get_running_loop())}.log"
        client_ctx.keylog_filename = str(path)
        client, server = await tls_pair((server_ctx, client_ctx))
        await closed(client, server)
        lines = path.read_text().splitlines()
        return sorted({line.split()[0] for line in lines if not line.startswith("#")}), len(lines) > 0

    labels, written = agree(main)
    assert written and "CLIENT_TRAFFIC_SECRET_0" in labels


# ---------------------------------------------------------------------------
# What is freed without the garbage collector


class Kept(asyncio.Protocol):
    """Keeps its transport, as protocols do; `done` resolves (to None, so
    it holds nothing) on connection_lost."""

    def __init__(self, refs, name):
        self.done = asyncio.get_running_loop().create_future()
        refs[name] = weakref.ref(self)

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.done.set_result(None)


async def connection_refs(fresh, how):
    """Weak references to what a connection used: the protocols, the
    transports and the contexts, once it is over (failed or closed)."""
    loop = asyncio.get_running_loop()
    refs = {}
    server_ctx, client_ctx = fresh()
    if how.startswith("failed handshake"):
        client_ctx = ssl.create_default_context()  # does not trust the server
    refs["server context"] = weakref.ref(server_ctx)
    refs["client context"] = weakref.ref(client_ctx)
    if how == "failed handshake at a server":
        # Only the server's side: asyncio's create_server path drops the
        # failed handshake's exception, so nothing holds it in a cycle.
        server = await loop.create_server(lambda: Kept(refs, "server protocol"), "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        del refs["client context"]
        try:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx,
                                         server_hostname="localhost")
        except ssl.SSLError:
            pass
        server.close()
        await server.wait_closed()
        del server, server_ctx, client_ctx
        for _ in range(3):
            await asyncio.sleep(0)
        return refs
    c, s = tcp_pair()
    results = await asyncio.gather(
        loop.connect_accepted_socket(lambda: Kept(refs, "server protocol"), s, ssl=server_ctx),
        loop.create_connection(lambda: Kept(refs, "client protocol"), sock=c, ssl=client_ctx,
                               server_hostname="localhost"),
        return_exceptions=True,
    )
    if how != "failed handshake":
        (server_transport, server), (client_transport, client) = results
        refs["server transport"] = weakref.ref(server_transport)
        refs["client transport"] = weakref.ref(client_transport)
        if how == "closed":
            client_transport.close()
        else:
            client_transport.abort()
        await asyncio.wait_for(asyncio.gather(client.done, server.done), 10)
        del server_transport, server, client_transport, client
    del results, server_ctx, client_ctx
    for _ in range(3):
        await asyncio.sleep(0)
    c.close()
    s.close()
    return refs


@pytest.mark.parametrize("how", ["failed handshake at a server", "closed", "aborted"])
def test_a_connection_leaves_nothing_to_the_garbage_collector(fresh, how):
    async def main():
        gc.collect()
        gc.disable()
        try:
            refs = await connection_refs(fresh, how)
            return sorted(name for name, ref in refs.items() if ref() is not None)
        finally:
            gc.enable()
            gc.collect()

    left = agree(main)
    # Before 3.13 asyncio's accept path keeps a failed handshake's exception
    # in a cycle with its frame, and the server's protocol with it.
    if how != "failed handshake at a server" or sys.version_info >= (3, 13):
        assert left == []


def test_a_failed_handshake_leaves_what_asyncio_leaves(fresh):
    """asyncio's create_connection and connect_accepted_socket keep the
    failed handshake's exception in their frame, whose traceback holds the
    frame: the protocols and contexts wait for the garbage collector. The
    same code runs on cxxloop, which must add nothing to it."""
    async def main():
        gc.collect()
        gc.disable()
        try:
            refs = await connection_refs(fresh, "failed handshake")
            return sorted(name for name, ref in refs.items() if ref() is not None)
        finally:
            gc.enable()
            gc.collect()

    agree(main)
