"""Faults raised inside protocol callbacks and protocol factories, and what
the transports do after them, each run on asyncio's loop and on cxxloop.

A BaseException (KeyboardInterrupt) out of a callback unwinds the loop;
once the loop runs again, the transport carries on where it stopped:
nothing that arrived meanwhile is lost, and the EOF still comes.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from parity import LOOPS, Echo, agree, asyncio_leaks_dropped, on_both


class Interrupted(asyncio.Protocol):
    """Raises KeyboardInterrupt from the callbacks named in `interrupt`
    (once each), and records what it receives."""

    def __init__(self, interrupt):
        self.interrupt = set(interrupt)
        self.received = bytearray()
        self.events = []

    def connection_made(self, transport):
        self.transport = transport

    def _maybe_interrupt(self, name):
        self.events.append(name)
        if name in self.interrupt:
            self.interrupt.discard(name)
            raise KeyboardInterrupt(name)

    def data_received(self, data):
        self.received += data
        self._maybe_interrupt("data_received")

    def eof_received(self):
        self._maybe_interrupt("eof_received")

    def connection_lost(self, exc):
        self.events.append("connection_lost")


class BufferedInterrupted(asyncio.BufferedProtocol, Interrupted):
    def __init__(self, interrupt):
        Interrupted.__init__(self, interrupt)
        self.buf = bytearray(8)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.received += self.buf[:nbytes]
        self._maybe_interrupt("buffer_updated")


def _run_interrupted(factory, protocol_factory, send):
    """Runs a connection on a fresh loop; each KeyboardInterrupt out of the
    loop is caught and the loop resumed, until connection_lost or 50 tries."""
    loop = factory()
    try:
        listener = socket.create_server(("127.0.0.1", 0))
        peer = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        conn.setblocking(False)
        transport, protocol = loop.run_until_complete(loop.connect_accepted_socket(protocol_factory, conn))
        send(peer)
        interrupts = 0
        for _ in range(50):
            if "connection_lost" in protocol.events:
                break
            try:
                loop.run_until_complete(asyncio.sleep(0.02))
            except KeyboardInterrupt:
                interrupts += 1
        peer.close()
        listener.close()
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
        return bytes(protocol.received), protocol.events, interrupts
    finally:
        loop.close()


def _on_both(protocol_factory, send):
    results = {name: _run_interrupted(factory, protocol_factory, send) for name, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"], results
    return results["cxxloop"]


def _send_then_close(peer):
    peer.sendall(b"0123456789" * 3)
    peer.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("interrupt", [["data_received"], ["eof_received"], ["data_received", "eof_received"]])
def test_keyboard_interrupt_in_a_read_callback_loses_nothing(interrupt):
    received, events, interrupts = _on_both(lambda: Interrupted(interrupt), _send_then_close)
    assert received == b"0123456789" * 3
    assert events[-1] == "connection_lost"
    assert interrupts == len(interrupt)


def test_keyboard_interrupt_in_buffer_updated_loses_nothing():
    # An 8-byte buffer: several reads, the first one interrupted.
    received, events, interrupts = _on_both(lambda: BufferedInterrupted(["buffer_updated"]), _send_then_close)
    assert received == b"0123456789" * 3
    assert events[-1] == "connection_lost"
    assert interrupts == 1


class Collects(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport


@pytest.mark.parametrize("bad", ["generator", "str"])
def test_a_failing_writelines_leaves_later_writes_flowing(bad):
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        transport, protocol = await loop.create_connection(Collects, *listener.getsockname())
        peer, _ = listener.accept()

        def items():
            yield b"partial"
            raise ValueError("from the generator")

        with pytest.raises((ValueError, TypeError)) as caught:
            transport.writelines(items() if bad == "generator" else [b"partial", "text"])
        transport.write(b"after")
        await asyncio.sleep(0.05)
        peer.setblocking(False)
        try:
            got = peer.recv(100)
        except BlockingIOError:
            got = b""
        transport.abort()
        await asyncio.sleep(0.01)
        peer.close()
        listener.close()
        return type(caught.value).__name__, str(caught.value), got

    results = on_both(main)
    assert results["cxxloop"][:2] == results["asyncio"][:2], results
    assert results["cxxloop"][2] == b"after"
    # Not compared with asyncio's: its writelines takes the items one by one
    # from 3.15 (to drop empty ones), and what it took before the failure
    # stays queued with no writer registered, so every later write waits
    # behind it.


class NotAProtocol:
    pass


@pytest.mark.parametrize("factory_result", [None, NotAProtocol])
def test_a_factory_without_connection_made_leaves_the_server_serving(factory_result):
    async def main(wait_closed):
        loop = asyncio.get_running_loop()
        first = []

        def factory():
            if not first:
                first.append(1)
                return factory_result() if factory_result else None
            return Echo()

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        replies = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            try:
                replies.append(await asyncio.wait_for(reader.read(4), 1))
            except (TimeoutError, ConnectionError) as exc:
                replies.append(type(exc).__name__)
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        server.close()
        if wait_closed:
            # asyncio's server counts the refused connection as attached
            # for ever, so its wait_closed() never returns; cxxloop's does.
            await asyncio.wait_for(server.wait_closed(), 5)
            return replies
        return replies[1:]

    # The later connections are served on both loops (asyncio's leaves the
    # refused connection's socket to the GC).
    with asyncio_leaks_dropped():
        assert agree(main, False) == [b"ping", b"ping"]
    # The refused one: asyncio leaves its socket to the GC (the client
    # waits in vain); cxxloop closes it at once (the client reads EOF), and
    # the server's wait_closed() returns with nothing left open.
    with asyncio.Runner(loop_factory=LOOPS["cxxloop"]) as runner:
        fds = set(os.listdir("/proc/self/fd"))
        assert runner.run(main(True)) == [b"", b"ping", b"ping"]
        assert set(os.listdir("/proc/self/fd")) <= fds


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_SEQPACKET])
def test_a_read_pipe_over_a_message_socket_reads_every_message(kind):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair(socket.AF_UNIX, kind)
        received = []
        done = loop.create_future()

        class Reader(asyncio.Protocol):
            def data_received(self, data):
                received.append(data)
                if len(received) == 3 and not done.done():
                    done.set_result(None)

        for message in (b"one", b"two", b"three"):
            b.send(message)  # all three wait before the transport reads
        transport, _ = await loop.connect_read_pipe(Reader, a)
        await asyncio.wait_for(done, 2)
        transport.close()
        b.close()
        await asyncio.sleep(0)
        return received

    assert agree(main) == [b"one", b"two", b"three"]


def test_server_close_inside_the_protocol_factory():
    async def main():
        loop = asyncio.get_running_loop()
        errors = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["message"]))
        box = {"protocols": []}

        def factory():
            box["server"].close()
            protocol = Echo()
            box["protocols"].append(protocol)
            return protocol

        box["server"] = server = await loop.create_server(factory, "127.0.0.1", 0, backlog=5)
        port = server.sockets[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        await asyncio.sleep(0.1)
        for protocol in box["protocols"]:
            # The first factory call closed the server before its
            # transport attached: that connection is refused.
            if hasattr(protocol, "transport"):
                protocol.transport.close()
        await server.wait_closed()
        for c in clients:
            c.close()
        await asyncio.sleep(0.05)
        # asyncio calls the factory for every connection its accept loop
        # took before the close; cxxloop stops accepting at once. Either
        # way at least the first one was offered, and nothing failed.
        return errors, server.is_serving(), len(box["protocols"]) >= 1

    with asyncio_leaks_dropped():
        assert agree(main) == ([], False, True)


def test_a_read_pipe_still_sees_its_eof_after_a_keyboard_interrupt():
    # The data and the EOF arrive together (one edge); data_received raises
    # KeyboardInterrupt. Once the loop runs again, the EOF is read.
    def run(factory):
        loop = factory()
        try:
            rfd, wfd = os.pipe()
            protocol = Interrupted(["data_received"])
            loop.run_until_complete(loop.connect_read_pipe(lambda: protocol, os.fdopen(rfd, "rb", 0)))
            os.write(wfd, b"abc")
            os.close(wfd)
            interrupts = 0
            for _ in range(50):
                if "connection_lost" in protocol.events:
                    break
                try:
                    loop.run_until_complete(asyncio.sleep(0.02))
                except KeyboardInterrupt:
                    interrupts += 1
            return bytes(protocol.received), protocol.events, interrupts
        finally:
            loop.close()

    results = {name: run(factory) for name, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"], results
    received, events, interrupts = results["cxxloop"]
    assert received == b"abc" and events[-1] == "connection_lost" and interrupts == 1


class CountsBuffers(BufferedInterrupted):
    def get_buffer(self, sizehint):
        self.events.append("get_buffer")
        return self.buf


def test_a_buffered_protocol_is_asked_for_a_buffer_only_when_data_waits():
    # After a KeyboardInterrupt out of buffer_updated, and after
    # resume_reading(), the transport reads again without a readiness
    # report; asyncio calls get_buffer() only when the selector says there
    # is something to read, and so must cxxloop.
    def run(factory):
        loop = factory()
        try:
            a, peer = socket.socketpair()
            a.setblocking(False)
            protocol = CountsBuffers(["buffer_updated"])
            transport, _ = loop.run_until_complete(loop.connect_accepted_socket(lambda: protocol, a))
            peer.send(b"first")
            with pytest.raises(KeyboardInterrupt):
                loop.run_until_complete(asyncio.sleep(0.05))
            loop.run_until_complete(asyncio.sleep(0.05))
            transport.pause_reading()
            transport.resume_reading()
            loop.run_until_complete(asyncio.sleep(0.05))
            peer.send(b"second")
            loop.run_until_complete(asyncio.sleep(0.05))
            peer.close()
            loop.run_until_complete(asyncio.sleep(0.05))
            return bytes(protocol.received), protocol.events
        finally:
            loop.close()

    results = {name: run(factory) for name, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"], results
    assert results["cxxloop"] == (b"firstsecond", ["get_buffer", "buffer_updated", "get_buffer", "buffer_updated",
                                                   "get_buffer", "connection_lost"])


def test_tls_connection_made_interrupted(contexts):
    # A KeyboardInterrupt out of a TLS protocol's connection_made(): asyncio's
    # sslproto skips setting the waiter, so create_connection() never
    # returns (here: a time-out). cxxloop's TLS transport sets it before
    # the loop unwinds, as asyncio's plain socket transports do, and the
    # connection then carries data both ways.
    server_context, client_context = contexts

    class Raises(asyncio.Protocol):
        def connection_made(self, transport):
            raise KeyboardInterrupt("connection_made")

        def data_received(self, data):
            self.got = data

    def run(factory):
        loop = factory()
        try:
            server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0, ssl=server_context))
            port = server.sockets[0].getsockname()[1]
            task = loop.create_task(loop.create_connection(Raises, "127.0.0.1", port, ssl=client_context,
                                                           server_hostname="localhost"))
            with pytest.raises(KeyboardInterrupt):
                loop.run_until_complete(task)
            try:
                transport, protocol = loop.run_until_complete(asyncio.wait_for(asyncio.shield(task), 1))
            except TimeoutError:
                outcome = "create_connection() waits for ever"
                task.cancel()
                transport = None
            else:
                transport.write(b"echo")
                loop.run_until_complete(asyncio.sleep(0.1))
                outcome = getattr(protocol, "got", None)
                transport.close()
            server.close()
            loop.run_until_complete(server.wait_closed())
            return outcome
        finally:
            loop.close()

    with asyncio_leaks_dropped():
        results = {name: run(factory) for name, factory in LOOPS.items()}
    assert results == {"asyncio": "create_connection() waits for ever", "cxxloop": b"echo"}


def test_tls_close_interrupted_by_get_buffer(contexts):
    # close() reads what the SSL still holds before its close_notify, and a
    # KeyboardInterrupt out of the protocol's get_buffer() there unwinds
    # out of close(). asyncio's sslproto then stays half shut until its
    # ssl_shutdown_timeout aborts the connection; cxxloop's TLS transport
    # goes on with the shutdown when the loop runs again.
    server_context, client_context = contexts

    class InterruptsClose(asyncio.BufferedProtocol):
        closing = False

        def connection_made(self, transport):
            self.lost = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint):
            if self.closing:
                self.closing = False
                raise KeyboardInterrupt("get_buffer")
            return bytearray(1024)

        def buffer_updated(self, nbytes):
            pass

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    def run(factory):
        loop = factory()
        try:
            server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0, ssl=server_context))
            port = server.sockets[0].getsockname()[1]
            transport, protocol = loop.run_until_complete(
                loop.create_connection(InterruptsClose, "127.0.0.1", port, ssl=client_context,
                                       server_hostname="localhost"))
            protocol.closing = True
            with pytest.raises(KeyboardInterrupt):
                transport.close()
            try:
                loop.run_until_complete(asyncio.wait_for(asyncio.shield(protocol.lost), 1))
                outcome = "connection_lost"
            except TimeoutError:
                outcome = "still shutting down"
                transport.abort()
                loop.run_until_complete(protocol.lost)
            server.close()
            loop.run_until_complete(server.wait_closed())
            return outcome
        finally:
            loop.close()

    with asyncio_leaks_dropped():
        results = {name: run(factory) for name, factory in LOOPS.items()}
    assert results == {"asyncio": "still shutting down", "cxxloop": "connection_lost"}


class Custom(BaseException):
    """Neither KeyboardInterrupt nor SystemExit: reported, not propagated."""


@pytest.mark.parametrize("where", ["data_received", "eof_received"])
def test_a_base_exception_of_its_own_in_a_tls_read_callback(contexts, where):
    # sslproto catches only Exception around its reads: another
    # BaseException goes on up to the socket transport's read handler, whose
    # report names buffer_updated(); around eof_received() it catches every
    # BaseException but the two that unwind.
    server_context, client_context = contexts

    class Raises(asyncio.Protocol):
        def connection_made(self, transport):
            self.lost = asyncio.get_running_loop().create_future()

        def data_received(self, data):
            if where == "data_received":
                raise Custom(where)

        def eof_received(self):
            raise Custom(where)

        def connection_lost(self, exc):
            self.lost.set_result(type(exc).__name__ if exc else None)

    class ClosesAfterReply(Echo):
        def data_received(self, data):
            self.transport.write(data)
            self.transport.close()

    async def main():
        loop = asyncio.get_running_loop()
        reports = []
        loop.set_exception_handler(lambda _loop, context: reports.append(
            (context["message"], type(context.get("exception")).__name__)))
        server = await loop.create_server(ClosesAfterReply, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await loop.create_connection(Raises, "127.0.0.1", port, ssl=client_context,
                                                           server_hostname="localhost")
        transport.write(b"ping")
        lost = await asyncio.wait_for(protocol.lost, 5)
        server.close()
        await server.wait_closed()
        return reports, lost

    with asyncio_leaks_dropped():
        reports, lost = agree(main)
    assert reports[0][1] == "Custom" and lost == "Custom"
