"""The connections test_fuzz_protocol_faults.py runs its plans over, each
with a far end (the peer) that the test drives by hand, outside any loop:
TCP client and server transports, a Unix socketpair, TLS (client and
server side), a read and a write pipe, a subprocess (`cat`) and a
connected UDP endpoint. Tests import it as a sibling module.

The transport's socket has a small send buffer, so that a large write
queues and pauses the writer. (The peer's receive buffer is left to the
kernel: made small, loopback TCP stalls for seconds waiting for a window
update.)
"""

from __future__ import annotations

import contextvars
import errno
import fcntl
import os
import signal
import socket
import ssl
import subprocess

from fault_plan import BufferedPlannedProtocol, PlannedProtocol, PlannedSubprocessProtocol, Reentrant

SEND_BUFFER = 16384
PIPE_BUFFER = 4096
_holder = contextvars.ContextVar("fault_worlds_holder")


class StreamPeer:
    """What the far end of a byte stream keeps: what arrived, what waits to
    be sent, and whether it reads; flush() sends, each kind its own way."""

    def __init__(self):
        self.received = bytearray()
        self.outgoing = bytearray()
        self.reading = True
        self.eof_seen = False  # the transport's side has closed or shut down
        self.eof_requested = False

    def send(self, data: bytes) -> None:
        self.outgoing += data
        self.flush()

    def eof(self) -> None:
        self.eof_requested = True
        self.flush()

    def flush(self) -> None:
        raise NotImplementedError


class SocketPeer(StreamPeer):
    """The far end of a stream as a plain non-blocking socket: sends what
    it is told, reads while `reading`, and keeps what arrived."""

    def __init__(self, sock):
        super().__init__()
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            # Nagle would hold a small send back until the transport's
            # delayed ACK (40 ms), longer than the test waits for a quiet loop.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.shut = False

    def flush(self) -> None:
        while self.outgoing:
            try:
                sent = self.sock.send(self.outgoing)
            except BlockingIOError:
                return
            except OSError:  # the connection is gone: nothing more goes out
                self.outgoing.clear()
                return
            del self.outgoing[:sent]
        if self.eof_requested and not self.shut:
            self.shut = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def recv_raw(self) -> bytes | None:
        """What the socket holds (b"" at EOF), or None if nothing is there."""
        try:
            return self.sock.recv(1 << 20)
        except BlockingIOError:
            return None
        except OSError:  # reset: as good as an EOF here
            return b""

    def pump(self) -> None:
        while self.reading and not self.eof_seen:
            chunk = self.recv_raw()
            if chunk is None:
                break
            if not chunk:
                self.eof_seen = True
                break
            self.received += chunk
        self.flush()

    def pending(self) -> int:
        return len(self.outgoing)

    def close(self) -> None:
        self.sock.close()


class TlsPeer(SocketPeer):
    """The far end of a TLS connection: an SSLObject over memory BIOs on a
    plain socket. It answers the transport's close_notify with its own."""

    def __init__(self, sock, context, server_side):
        super().__init__(sock)
        self.incoming = ssl.MemoryBIO()
        self.outgoing_bio = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing_bio, server_side=server_side,
                                    server_hostname=None if server_side else "localhost")
        self.plain = bytearray()  # what is to be sent once the handshake is done
        self.handshaken = False
        self.tls_closed = False  # close_notify received, or the TLS failed
        self.unwrapped = False

    def send(self, data: bytes) -> None:
        self.plain += data
        self.advance()

    def eof(self) -> None:
        self.eof_requested = True
        self.advance()

    def pump(self) -> None:
        while self.reading and not self.eof_seen:
            chunk = self.recv_raw()
            if chunk is None:
                break
            if not chunk:
                self.eof_seen = True
                self.incoming.write_eof()
                break
            self.incoming.write(chunk)
        self.advance()

    def advance(self) -> None:
        try:
            self._advance()
        # A broken TLS (an abort mid-record) raises SSLError; a reset
        # socket under it, OSError: either way the peer gives up on it.
        except OSError:
            self.tls_closed = True
        self.outgoing += self.outgoing_bio.read()
        self.flush()

    def _advance(self) -> None:
        if not self.handshaken:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                return
            self.handshaken = True
        if self.plain and not self.unwrapped:
            self.tls.write(bytes(self.plain))
            self.plain.clear()
        while self.reading and not self.tls_closed:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                self.tls_closed = True
                self.eof_requested = True  # answer the close_notify
                break
            self.received += data
        if self.eof_requested and not self.unwrapped and not self.plain:
            self.unwrapped = True
            try:
                self.tls.unwrap()
            except ssl.SSLWantReadError:
                pass

    def pending(self) -> int:
        return len(self.outgoing) + len(self.plain)


class PipePeer(StreamPeer):
    """The far ends of a read pipe (fed by `feed`) and a write pipe (read
    from `drain`)."""

    def __init__(self, feed: int, drain: int):
        super().__init__()
        os.set_blocking(feed, False)
        os.set_blocking(drain, False)
        self.feed, self.drain = feed, drain

    def flush(self) -> None:
        while self.outgoing and self.feed >= 0:
            try:
                written = os.write(self.feed, self.outgoing)
            except BlockingIOError:
                return
            except OSError:
                self.outgoing.clear()
                return
            del self.outgoing[:written]
        if self.eof_requested and self.feed >= 0:
            os.close(self.feed)
            self.feed = -1

    def pump(self) -> None:
        while self.reading and not self.eof_seen:
            try:
                chunk = os.read(self.drain, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                self.eof_seen = True
                break
            self.received += chunk
        self.flush()

    def pending(self) -> int:
        return len(self.outgoing)

    def close(self) -> None:
        for fd in (self.feed, self.drain):
            if fd >= 0:
                os.close(fd)
        self.feed = self.drain = -1


class DatagramPeer:
    """The far end of a connected UDP endpoint; `eof` closes it, so that
    later sends meet a closed port (error_received)."""

    def __init__(self, sock):
        sock.setblocking(False)
        self.sock = sock
        self.received = bytearray()
        self.datagrams: list[bytes] = []
        self.reading = True
        self.eof_seen = False
        self.gone = False

    def send(self, data: bytes) -> None:
        if not self.gone:
            try:
                self.sock.send(data)
            except OSError as exc:  # the endpoint's port is closed
                assert exc.errno in (errno.ECONNREFUSED, errno.EAGAIN), exc

    def eof(self) -> None:
        if not self.gone:
            self.gone = True
            self.sock.close()

    def pump(self) -> None:
        while self.reading and not self.gone:
            try:
                datagram = self.sock.recv(65536)
            except (BlockingIOError, ConnectionRefusedError):
                break
            self.datagrams.append(datagram)
            self.received += datagram

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        self.eof()


class ChildPeer:
    """The far end of a subprocess: `cat`, which echoes its stdin on its
    stdout, so what arrived is what the protocol's pipe_data_received got.
    Pausing the peer stops the child (SIGSTOP), so that writes queue."""

    def __init__(self, record):
        self.record = record
        self.pid = None
        self._reading = True

    @property
    def received(self):
        return self.record.received

    @property
    def reading(self):
        return self._reading

    @reading.setter
    def reading(self, reading):
        if reading != self._reading and self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGCONT if reading else signal.SIGSTOP)
            except ProcessLookupError:
                pass
        self._reading = reading

    @property
    def eof_seen(self):
        return any(e[1] == "pipe_connection_lost" and e[2][0] == 1 or e[1] == "connection_lost"
                   for e in self.record.events)

    def send(self, data: bytes) -> None:
        """The child sends only what it echoes."""

    def eof(self) -> None:
        """The child ends its output when its input ends."""

    def pump(self) -> None:
        """The loop reads the child's output."""

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        self.reading = True  # a stopped child would not see the signal that ends it


class World:
    """One connection of a kind: `start()` makes the sockets and the peer
    and returns the coroutine that makes the transports (run as a task in
    the plan's context); `connected()` says when its transports are made."""

    kind = ""
    roles = ("main",)
    datagram = False
    absent: frozenset = frozenset()  # (role, method): transport methods the plan does not call
    losing = frozenset({"abort"})  # transport methods after which what was queued may be lost

    def __init__(self, loop, record, tls_contexts, buffered, keepsake):
        self.loop = loop
        self.record = record
        self.tls_contexts = tls_contexts
        self.buffered = buffered
        self.keepsake = keepsake
        self.peer = None
        self.server = None
        self.sockets: list = []

    def protocol(self, role="main"):
        cls = BufferedPlannedProtocol if self.buffered and role == "main" else PlannedProtocol
        keepsake = Reentrant(self.record, self.keepsake, "protocol") if self.keepsake else None
        return lambda: cls(self.record, role, keepsake)

    def connected(self) -> bool:
        return all(role in self.record.transports for role in self.roles)

    def after_start(self) -> None:
        """Work the set-up has left to do once its coroutine is done."""

    def wind_down(self, settle) -> None:
        """What ends the connection before its transports are closed;
        `settle(until, limit)` runs the loop."""

    def release(self) -> None:
        """Closes the server, which holds the context it was made in."""
        if self.server is not None:
            self.server.close()
            self.server = None

    def close(self) -> None:
        self.release()
        if self.peer is not None:
            self.peer.close()
        for sock in self.sockets:
            sock.close()


def _small_buffer(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


def _tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    return client, accepted


class TcpClient(World):
    """create_connection(sock=) over a loopback TCP connection."""

    kind = "tcp"
    tls = False

    def start(self):
        local, remote = _tcp_pair()
        _small_buffer(local)
        local.setblocking(False)
        if self.tls:
            self.peer = TlsPeer(remote, self.tls_contexts[0], server_side=True)
            return self.loop.create_connection(self.protocol(), sock=local, ssl=self.tls_contexts[1],
                                               server_hostname="localhost")
        self.peer = SocketPeer(remote)
        return self.loop.create_connection(self.protocol(), sock=local)


class TlsClient(TcpClient):
    kind = "tls"
    tls = True


class TcpServer(World):
    """create_server(sock=): the transport is the accepted connection."""

    kind = "tcp_server"
    tls = False

    def start(self):
        listener = socket.create_server(("127.0.0.1", 0))
        # Accepted sockets take the listener's send buffer size.
        _small_buffer(listener)
        listener.setblocking(False)
        ssl_context = self.tls_contexts[0] if self.tls else None
        return self._serve(listener, ssl_context)

    async def _serve(self, listener, ssl_context):
        self.server = await self.loop.create_server(self.protocol(), sock=listener, ssl=ssl_context)
        remote = socket.socket()
        remote.connect(listener.getsockname())
        if self.tls:
            self.peer = TlsPeer(remote, self.tls_contexts[1], server_side=False)
        else:
            self.peer = SocketPeer(remote)


class TlsServer(TcpServer):
    kind = "tls_server"
    tls = True


class UnixPair(World):
    """connect_accepted_socket() over a Unix socketpair."""

    kind = "unix"

    def start(self):
        local, remote = socket.socketpair()
        _small_buffer(local)
        local.setblocking(False)
        self.peer = SocketPeer(remote)
        return self.loop.connect_accepted_socket(self.protocol(), local)


class Pipes(World):
    """connect_read_pipe() and connect_write_pipe() over two os.pipe()s;
    the write pipe holds only one page."""

    kind = "pipe"
    roles = ("read", "write")
    # A read pipe has no abort() and no write_eof(); a write pipe has no
    # pause/resume_reading().
    absent = frozenset({("read", "abort"), ("read", "write_eof"), ("write", "pause_reading"),
                        ("write", "resume_reading")})

    def start(self):
        read_r, read_w = os.pipe()
        write_r, write_w = os.pipe()
        fcntl.fcntl(write_w, fcntl.F_SETPIPE_SZ, PIPE_BUFFER)
        self.peer = PipePeer(read_w, write_r)
        return self._connect(os.fdopen(read_r, "rb", 0), os.fdopen(write_w, "wb", 0))

    async def _connect(self, reading, writing):
        await self.loop.connect_read_pipe(self.protocol("read"), reading)
        await self.loop.connect_write_pipe(self.protocol("write"), writing)


class Subprocess(World):
    """subprocess_exec() of `cat` with its stdin and stdout as pipes."""

    kind = "subprocess"
    # A subprocess transport has only close() of these, and its close()
    # kills a child that is still running.
    absent = frozenset({("main", "abort"), ("main", "write_eof"), ("main", "pause_reading"),
                        ("main", "resume_reading")})
    losing = frozenset({"abort", "close"})

    def protocol(self, role="main"):
        keepsake = Reentrant(self.record, self.keepsake, "protocol") if self.keepsake else None
        return lambda: PlannedSubprocessProtocol(self.record, role, keepsake)

    def start(self):
        self.peer = ChildPeer(self.record)
        return self.loop.subprocess_exec(self.protocol(), "cat", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)

    def after_start(self):
        transport = self.record.transports.get("main")
        if transport is not None:
            self.peer.pid = transport.get_pid()

    def release(self):
        # Even after connection_lost, asyncio's subprocess transport is open
        # (and warns when collected) until it is closed.
        transport = self.record.transports.get("main")
        if transport is not None:
            transport.close()

    def wind_down(self, settle):
        # The child's input ends, and it exits once it has echoed the rest.
        self.peer.reading = True
        writer = self.record.writer
        if writer is not None and not writer.is_closing():
            writer.close()
        settle(until=lambda: any(e[1] == "process_exited" for e in self.record.events), limit=2)


class Datagrams(World):
    """create_datagram_endpoint() connected to a plain UDP socket."""

    kind = "datagram"
    datagram = True

    def start(self):
        remote = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        remote.bind(("127.0.0.1", 0))
        self.peer = DatagramPeer(remote)
        return self.loop.create_datagram_endpoint(self.protocol(), local_addr=("127.0.0.1", 0),
                                                  remote_addr=remote.getsockname())

    def after_start(self):
        transport = self.record.transports.get("main")
        if transport is not None and not self.peer.gone:
            self.peer.sock.connect(transport.get_extra_info("sockname"))


WORLDS = {w.kind: w for w in (TcpClient, TlsClient, TcpServer, TlsServer, UnixPair, Pipes, Subprocess, Datagrams)}


def in_context(keepsake_kind, record):
    """A context for the set-up task: the transports are made in it (and
    in asyncio, copy it); with a keepsake, it holds an object whose __del__
    re-enters the loop when the last of those copies goes."""
    context = contextvars.copy_context()
    if keepsake_kind:
        context.run(_holder.set, Reentrant(record, keepsake_kind, "context"))
    return context
