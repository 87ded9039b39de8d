"""create_datagram_endpoint on cxxloop's C++ DatagramTransport: every
option, IPv4, IPv6 and AF_UNIX, error_received, flow control on the send
queue, close and abort; each compared with asyncio's own transport."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import tempfile

import pytest

import cxxloop
from parity import LifecycleRecorder, agree, on_both, open_fds, outcome


class Recorder(LifecycleRecorder, asyncio.DatagramProtocol):
    def __init__(self, expect=1):
        super().__init__()
        self.datagrams = []
        self.errors = []
        self.expect = expect
        self.got_all = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        self.datagrams.append((data, addr))
        if len(self.datagrams) == self.expect and not self.got_all.done():
            self.got_all.set_result(None)

    def error_received(self, exc):
        self.errors.append(type(exc).__name__)
        if not self.got_all.done():
            self.got_all.set_result(None)


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data.upper(), addr)


def shape(addr):
    """An address with the port numbers taken out, to compare across runs."""
    if isinstance(addr, tuple):
        return (addr[0], type(addr[1]).__name__) + tuple(addr[2:])
    return addr


@pytest.mark.parametrize("host,family", [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)])
def test_echo_and_addresses(host, family):
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")

    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=(host, 0), family=family)
        port = server.get_extra_info("sockname")[1]
        client, proto = await loop.create_datagram_endpoint(lambda: Recorder(expect=3), family=family)
        for message in (b"one", b"two", bytearray(b"three")):
            client.sendto(message, (host, port))
        await proto.got_all
        peer_ports = {addr[1] for _, addr in proto.datagrams}
        client.close()
        server.close()
        await proto.lost
        return ([(data, shape(addr)) for data, addr in proto.datagrams], peer_ports == {port},
                client.get_extra_info("peername"), proto.events)

    before = open_fds()
    result = agree(main)
    assert result[0][0][0] == b"ONE" and result[1]
    assert open_fds() == before


def test_transport_types(loop):
    async def main():
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        # A Transport, as asyncio's is; a DatagramTransport too, which
        # asyncio's is only from 3.12 on.
        assert isinstance(transport, asyncio.DatagramTransport) and isinstance(transport, asyncio.Transport)
        assert type(transport).__name__ == "DatagramTransport"
        transport.close()

    loop.run_until_complete(main())


def test_remote_addr_connects_and_checks_the_address():
    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        addr = server.get_extra_info("sockname")
        client, proto = await loop.create_datagram_endpoint(lambda: Recorder(expect=2), remote_addr=addr)
        client.sendto(b"implicit")
        client.sendto(b"explicit", addr)
        try:
            client.sendto(b"elsewhere", ("127.0.0.1", 9))
        except ValueError as exc:
            refused = str(exc).replace(str(addr[1]), "PORT")
        await proto.got_all
        peer = client.get_extra_info("peername") == addr
        client.close()
        server.close()
        await proto.lost
        client.sendto(b"after close")  # dropped, as asyncio drops it
        return sorted(d for d, _ in proto.datagrams), refused, peer

    assert agree(main) == ([b"EXPLICIT", b"IMPLICIT"], "Invalid address: must be None or ('127.0.0.1', PORT)", True)


def test_error_received_on_a_refused_port():
    async def main():
        loop = asyncio.get_running_loop()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
        probe.close()
        client, proto = await loop.create_datagram_endpoint(Recorder, remote_addr=("127.0.0.1", closed_port))
        client.sendto(b"anyone?")
        await proto.got_all  # the ICMP error comes back as a read error
        still_open = not client.is_closing()
        client.close()
        await proto.lost
        return proto.errors, still_open

    assert agree(main) == (["ConnectionRefusedError"], True)


def test_unix_datagrams_with_paths():
    async def main():
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as d:
            server_path, client_path = os.path.join(d, "server"), os.path.join(d, "client")
            server, _ = await loop.create_datagram_endpoint(Echo, local_addr=server_path, family=socket.AF_UNIX)
            client, proto = await loop.create_datagram_endpoint(
                lambda: Recorder(expect=2), local_addr=client_path, remote_addr=server_path, family=socket.AF_UNIX)
            client.sendto(b"over")
            client.sendto(b"unix")
            await proto.got_all
            client.close()
            server.close()
            await proto.lost
            return [(data, os.path.basename(addr)) for data, addr in proto.datagrams]

    assert agree(main) == [(b"OVER", "server"), (b"UNIX", "server")]


def test_bad_data_and_empty_datagrams():
    async def main():
        loop = asyncio.get_running_loop()
        server, sproto = await loop.create_datagram_endpoint(lambda: Recorder(expect=1),
                                                             local_addr=("127.0.0.1", 0))
        client, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        remote_addr=server.get_extra_info("sockname"))
        try:
            client.sendto("text")
        except TypeError as exc:
            message = str(exc)
        client.sendto(b"")  # an empty datagram from 3.13 on; nothing before
        client.sendto(b"end")
        await sproto.got_all
        client.close()
        server.close()
        return message, sproto.datagrams[0][0]

    message, first = agree(main)
    assert message == "data argument must be a bytes-like object, not 'str'"
    assert first == (b"" if sys.version_info >= (3, 13) else b"end")


def test_send_queue_flow_control_close_flushes_abort_drops():
    async def main(abort):
        loop = asyncio.get_running_loop()
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "reader")
        b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.bind(path)
        a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.connect(path)
        a.setblocking(False)
        transport, proto = await loop.create_datagram_endpoint(Recorder, sock=a)
        transport.set_write_buffer_limits(high=4000)
        for _ in range(40):
            transport.sendto(b"x" * 1000)  # the peer is not reading: some are queued
        queued = transport.get_write_buffer_size()
        # Each queued datagram counts 1000 bytes, plus 8 from 3.13 on.
        count_check = queued % (1008 if sys.version_info >= (3, 13) else 1000) == 0
        if abort:
            transport.abort()
        else:
            transport.close()
        b.setblocking(False)
        received = 0
        while not proto.lost.done():
            try:
                received += len(b.recv(2000)) // 1000
            except BlockingIOError:
                await asyncio.sleep(0.01)
        while True:  # what the kernel still holds
            try:
                received += len(b.recv(2000)) // 1000
            except BlockingIOError:
                break
        b.close()
        tmp.cleanup()
        return queued > 4000, count_check, proto.events, transport.get_write_buffer_size(), received == 40

    flushed = on_both(main, False)
    assert flushed["cxxloop"] == (True, True, ["made", "pause", "resume", ("lost", None)], 0, True)
    # asyncio 3.13.0 adds 8 bytes per queued datagram but takes only the
    # payload off when it is sent, so its count stays above 0 after the flush.
    assert flushed["asyncio"][:3] + flushed["asyncio"][4:] == flushed["cxxloop"][:3] + flushed["cxxloop"][4:]
    aborted = on_both(main, True)
    assert aborted["cxxloop"] == (True, True, ["made", "pause", ("lost", None)], 0, False)
    # asyncio's abort() empties its queue but leaves _buffer_size as it was
    # (36,000 here): cxxloop reports the 0 bytes it really holds.
    assert aborted["asyncio"][:3] + aborted["asyncio"][4:] == aborted["cxxloop"][:3] + aborted["cxxloop"][4:]


def test_exception_in_datagram_received_keeps_the_transport():
    class Fails(Recorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            if data == b"bad":
                raise ZeroDivisionError

    async def main():
        loop = asyncio.get_running_loop()
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(type(ctx.get("exception")).__name__))
        server, proto = await loop.create_datagram_endpoint(lambda: Fails(expect=2), local_addr=("127.0.0.1", 0))
        client, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        remote_addr=server.get_extra_info("sockname"))
        client.sendto(b"bad")
        await asyncio.sleep(0.05)
        client.sendto(b"good")
        await proto.got_all
        client.close()
        server.close()
        return [d for d, _ in proto.datagrams], errors

    assert agree(main) == ([b"bad", b"good"], ["ZeroDivisionError"])


def test_endpoint_options():
    async def main():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), family=socket.AF_INET,
            proto=socket.IPPROTO_UDP, flags=socket.AI_NUMERICHOST, reuse_port=True, allow_broadcast=True)
        sock = transport.get_extra_info("socket")
        result = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0,
                  sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) != 0,
                  sock.family, sock.type)
        transport.close()
        return result

    assert agree(main) == (True, True, socket.AF_INET, socket.SOCK_DGRAM)


def test_bad_endpoint_options_raise_what_asyncio_raises():
    async def main(kwargs):
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, **kwargs)
        except (OSError, ValueError, TypeError) as exc:  # the type and message are compared
            return type(exc).__name__, str(exc)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stream_sock:
        for kwargs in ({}, {"local_addr": ("127.0.0.1", 0), "family": socket.AF_UNIX},
                       {"local_addr": "not a pair"}, {"sock": stream_sock},
                       {"local_addr": ("127.0.0.1", 0), "reuse_address": True}):
            before = open_fds()
            assert agree(main, kwargs) is not None, kwargs
            assert open_fds() == before


def test_ten_thousand_datagrams_round_trip():
    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        client, proto = await loop.create_datagram_endpoint(lambda: Recorder(expect=10_000),
                                                            remote_addr=server.get_extra_info("sockname"))
        # 100 in flight at a time: UDP drops what overflows a socket buffer.
        for start in range(0, 10_000, 100):
            for i in range(start, start + 100):
                client.sendto(b"%d" % i)
            while len(proto.datagrams) < start + 100:
                await asyncio.sleep(0.001)
        await proto.got_all
        client.close()
        server.close()
        return sorted(int(d) for d, _ in proto.datagrams) == list(range(10_000))

    before = open_fds()
    assert agree(main) is True
    assert open_fds() == before


def test_error_received_raising_reaches_the_sendto_caller():
    class Raises(asyncio.DatagramProtocol):
        def error_received(self, exc):
            raise LookupError(type(exc).__name__)

    async def main():
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gone")
            reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            reader.bind(path)
            transport, _ = await loop.create_datagram_endpoint(Raises, remote_addr=path, family=socket.AF_UNIX)
            reader.close()  # the next send is refused at once
            try:
                transport.sendto(b"to nobody")
            except LookupError as exc:
                raised = str(exc)
            transport.close()
            return raised, transport.is_closing()

    assert agree(main) == ("ConnectionRefusedError", True)


def test_loop_closed_with_an_open_datagram_transport():
    """The loop lets go of the transport; dropping it warns and closes the
    socket, as asyncio's does, and nothing leaks."""
    before = open_fds()
    lp = cxxloop.new_event_loop()
    transport, _ = lp.run_until_complete(
        lp.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)))
    transport.sendto(b"queued?", ("127.0.0.1", 9))
    lp.close()
    assert "closed" not in repr(transport)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        transport.close()  # schedules connection_lost on a closed loop
    with pytest.warns(ResourceWarning, match="unclosed transport"):  # noqa: PT031
        del transport
        gc.collect()
    assert open_fds() == before


def test_datagram_pause_reading():
    """What comes while reading is paused is received once it resumes."""
    async def main():
        loop = asyncio.get_running_loop()
        received = []

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                received.append(data)

        transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            paused = outcome(transport.pause_reading)
            sender.sendto(b"while paused", transport.get_extra_info("sockname"))
            await asyncio.sleep(0.05)
            while_paused = list(received)
            resumed = outcome(transport.resume_reading)
            await asyncio.sleep(0.05)
        transport.close()
        await asyncio.sleep(0)
        return paused, while_paused, resumed, received

    paused, while_paused, resumed, received = agree(main)
    assert (while_paused, received) == ([], [b"while paused"])
