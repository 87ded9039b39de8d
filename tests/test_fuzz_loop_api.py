"""Random sequences of loop API calls with random arguments: scheduling,
fd watches, tasks, the sock_* calls, and a C++ stream transport (writes,
flow control, close/abort, sendfile) whose peer sends, closes or shuts down.

Whatever hypothesis throws at the loop, it raises one of asyncio's exception
types or works; it never crashes the process, hangs, or leaks descriptors.
"""

import asyncio
import contextlib
import contextvars
import gc
import math
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxxloop
from parity import open_fds

ALLOWED = (TypeError, ValueError, RuntimeError, OSError)


async def _coroutine_function():
    pass


def _callables():
    return st.sampled_from([lambda *a: None, print, len, _coroutine_function, 42, None, "text", object()])


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(lambda x: x if not math.isfinite(x) else x % 0.01),
    st.integers(-5, 5).map(lambda x: x / 1000),
    st.sampled_from([None, "1", b"", [], -1e300]),
)
fds = st.one_of(st.integers(-3, 1 << 20), st.sampled_from(["pipe_r", "pipe_w", "closed", "x", None, 2.5]))
args = st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3)
contexts = st.sampled_from([None, "copy", 0, "str"])

SOCK_CALLS = ["sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into", "sock_sendall", "sock_sendto",
              "sock_accept"]
TRANSPORT_CALLS = ["write", "writelines", "pause_reading", "resume_reading", "close", "abort", "write_eof",
                   "set_write_buffer_limits", "get_extra_info", "sendfile"]
# A C++ DatagramTransport over a connected UDP socket (C++ send/recvfrom)
# or an unconnected Unix datagram socketpair end (the socket's sendto).
DATAGRAM_CALLS = ["sendto", "sendto_addr", "close", "abort", "get_extra_info", "set_write_buffer_limits"]
# The C++ pipe transports over os.pipe() ends.
PIPE_CALLS = ["write", "close", "abort", "write_eof", "pause_reading", "resume_reading", "close_reader",
              "close_writer", "feed"]
sock_args = st.sampled_from([0, 10, -1, 1 << 40, b"data", b"x" * 300_000, bytearray(4), memoryview(b"mv"), "str",
                             None, ("127.0.0.1", 1), 2.5])

operation = st.one_of(
    st.tuples(st.just("call_soon"), _callables(), args, contexts),
    st.tuples(st.just("call_soon_threadsafe"), _callables(), args, contexts),
    st.tuples(st.just("call_later"), numbers, _callables(), args),
    st.tuples(st.just("call_at"), numbers, _callables(), args),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("add_reader"), fds, _callables()),
    st.tuples(st.just("add_writer"), fds, _callables()),
    st.tuples(st.just("remove_reader"), fds),
    st.tuples(st.just("remove_writer"), fds),
    st.tuples(st.just("run_briefly"), st.integers(0, 2)),
    st.tuples(st.just("stop")),
    st.tuples(st.just("set_debug"), st.booleans()),
    st.tuples(st.just("create_task"), st.sampled_from(["coro", 1, None])),
    st.tuples(st.just("set_task_factory"), st.sampled_from([None, 1, "factory"])),
    st.tuples(st.just("close")),
    st.tuples(st.just("sock_call"), st.sampled_from(SOCK_CALLS), st.sampled_from(["a", "b", "closed", "x"]),
              sock_args),
    st.tuples(st.just("transport"), st.sampled_from(TRANSPORT_CALLS), sock_args),
    st.tuples(st.just("peer"), st.sampled_from(["send", "close", "shutdown"])),
    st.tuples(st.just("datagram"), st.sampled_from(["udp", "unix"]), st.sampled_from(DATAGRAM_CALLS), sock_args),
    st.tuples(st.just("datagram_peer"), st.sampled_from(["send", "close"])),
    st.tuples(st.just("pipe"), st.sampled_from(PIPE_CALLS), sock_args),
)


class World:
    """The objects a sequence of operations acts on, cleaned up afterwards."""

    def __init__(self):
        self.loop = cxxloop.new_event_loop()
        self.loop.set_exception_handler(lambda lp, ctx: None)
        self.r, self.w = os.pipe()
        closed_r, closed_w = os.pipe()
        os.close(closed_r)
        os.close(closed_w)
        self.closed_fd = closed_r
        self.handles = []
        # Sockets for the sock_* calls, and a pair whose end `c` becomes a
        # C++ StreamTransport on first use (its peer is `d`).
        self.a, self.b = socket.socketpair()
        self.c, self.d = socket.socketpair()
        for sock in (self.a, self.b, self.c, self.d):
            sock.setblocking(False)
        self.closed_sock = socket.socket()
        self.closed_sock.close()
        self.transport = None
        # Made on first use, as most sequences never touch them: datagram
        # sockets by kind, their transports, and the pipes' files and
        # transports.
        self.datagram_socks = {}
        self.datagram_transports = {}
        self.pipe_files = []
        self.pipe_transports = None
        self.tasks = []
        # What sendfile sends; closed in close(), with the rest of the world.
        self.file = open(__file__, "rb")  # noqa: SIM115

    def fd(self, value):
        return {"pipe_r": self.r, "pipe_w": self.w, "closed": self.closed_fd}.get(value, value)

    def context(self, value):
        return contextvars.copy_context() if value == "copy" else value

    def apply(self, op):
        lp = self.loop
        name = op[0]
        if name in ("call_soon", "call_soon_threadsafe"):
            _, cb, a, ctx = op
            self.handles.append(getattr(lp, name)(cb, *a, context=self.context(ctx)))
        elif name in ("call_later", "call_at"):
            _, when, cb, a = op
            self.handles.append(getattr(lp, name)(when, cb, *a))
        elif name == "cancel":
            if self.handles:
                self.handles[op[1] % len(self.handles)].cancel()
        elif name in ("add_reader", "add_writer"):
            getattr(lp, name)(self.fd(op[1]), op[2])
        elif name in ("remove_reader", "remove_writer"):
            getattr(lp, name)(self.fd(op[1]))
        elif name == "run_briefly":
            for _ in range(op[1]):
                step = asyncio.sleep(0)
                try:
                    lp.run_until_complete(step)
                finally:
                    step.close()
        elif name == "stop":
            lp.stop()
        elif name == "set_debug":
            lp.set_debug(op[1])
        elif name == "create_task":
            coro = _coroutine_function() if op[1] == "coro" else op[1]
            try:
                lp.create_task(coro)
            finally:
                if op[1] == "coro":
                    coro.close()
        elif name == "set_task_factory":
            lp.set_task_factory(asyncio.Task if op[1] == "factory" else op[1])
        elif name == "close":
            lp.close()
        elif name == "sock_call":
            _, method, target, arg = op
            sock = {"a": self.a, "b": self.b, "closed": self.closed_sock}.get(target, target)
            extra = (("127.0.0.1", 9),) if method == "sock_sendto" else ()
            self.tasks.append(lp.create_task(getattr(lp, method)(sock, *(() if method == "sock_accept" else (arg,)),
                                                                 *extra)))
        elif name == "transport":
            self.apply_to_transport(op[1], op[2])
        elif name == "peer":
            {"send": lambda: self.d.send(b"peer data"), "close": self.d.close,
             "shutdown": lambda: self.d.shutdown(socket.SHUT_WR)}[op[1]]()
        elif name == "datagram":
            self.apply_to_datagram(*op[1:])
        elif name == "datagram_peer":
            peer = self.datagram_sock("udp_peer")
            {"send": lambda: peer.send(b"datagram"), "close": peer.close}[op[1]]()
        elif name == "pipe":
            self.apply_to_pipes(op[1], op[2])

    def datagram_sock(self, name):
        """A connected UDP pair (`udp` becomes a transport, `udp_peer`
        stays a socket), or an unnamed Unix datagram socket (`unix`)."""
        if not self.datagram_socks:
            udp, udp_peer = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
            udp.bind(("127.0.0.1", 0))
            udp_peer.bind(("127.0.0.1", 0))
            udp.connect(udp_peer.getsockname())
            udp_peer.connect(udp.getsockname())
            unix, unix_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.datagram_socks = {"udp": udp, "udp_peer": udp_peer, "unix": unix, "unix_peer": unix_peer}
            for sock in self.datagram_socks.values():
                sock.setblocking(False)
        return self.datagram_socks[name]

    def apply_to_datagram(self, which, method, arg):
        lp = self.loop
        if which not in self.datagram_transports:
            sock = self.datagram_sock(which)
            self.datagram_transports[which], _ = lp.run_until_complete(
                lp.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock))
        t = self.datagram_transports[which]
        if method == "sendto":
            t.sendto(arg)
        elif method == "sendto_addr":
            t.sendto(b"to an address", arg)
        elif method in ("get_extra_info", "set_write_buffer_limits"):
            getattr(t, method)(arg)
        else:
            getattr(t, method)()

    def apply_to_pipes(self, method, arg):
        lp = self.loop
        if self.pipe_transports is None:
            if not self.pipe_files:
                pr, pw = os.pipe()
                self.pipe_files = [os.fdopen(pr, "rb", 0), os.fdopen(pw, "wb", 0)]
            reader, _ = lp.run_until_complete(lp.connect_read_pipe(asyncio.Protocol, self.pipe_files[0]))
            writer, _ = lp.run_until_complete(lp.connect_write_pipe(asyncio.Protocol, self.pipe_files[1]))
            self.pipe_transports = (reader, writer)
        reader, writer = self.pipe_transports
        if method == "write":
            writer.write(arg)
        elif method in ("close", "abort", "write_eof"):
            getattr(writer, method)()
        elif method in ("pause_reading", "resume_reading"):
            getattr(reader, method)()
        elif method == "close_reader":
            reader.close()
        elif method == "close_writer":
            writer.close()
        elif method == "feed":
            self.pipe_files[1].write(b"fed outside the transport")

    def apply_to_transport(self, method, arg):
        lp = self.loop
        if self.transport is None:
            self.transport, _ = lp.run_until_complete(lp.create_connection(asyncio.Protocol, sock=self.c))
        t = self.transport
        if method in ("write", "get_extra_info"):
            getattr(t, method)(arg)
        elif method == "writelines":
            t.writelines([arg, arg])
        elif method == "set_write_buffer_limits":
            t.set_write_buffer_limits(arg)
        elif method == "sendfile":
            self.tasks.append(lp.create_task(lp.sendfile(t, self.file, fallback=arg == 0)))
        else:
            getattr(t, method)()

    def cancel_tasks(self):
        # A function of its own: a loop variable left in finish() would keep
        # the last task, and what its frame holds, alive past gc.collect().
        for task in self.tasks:
            task.cancel()

    def finish(self):
        if not self.loop.is_closed():
            self.loop.set_task_factory(None)  # a broken one may have been set
            self.cancel_tasks()
            for t in [self.transport, *self.datagram_transports.values(), *(self.pipe_transports or ())]:
                if t is not None:
                    # A read pipe has no abort(), as asyncio's has none.
                    (t.abort if hasattr(t, "abort") else t.close)()
            for _ in range(2):  # the first run may end at once on a pending stop()
                with contextlib.suppress(RuntimeError):
                    self.loop.run_until_complete(asyncio.sleep(0.001))
            self.loop.remove_reader(self.r)
            self.loop.remove_writer(self.w)
            self.loop.close()
        os.close(self.r)
        os.close(self.w)
        for sock in (self.a, self.b, self.c, self.d, *self.datagram_socks.values()):
            sock.close()
        for f in self.pipe_files:
            f.close()
        self.datagram_transports.clear()
        self.pipe_transports = None
        self.file.close()
        self.tasks.clear()
        self.transport = None
        gc.collect()  # a transport left with a closed loop


# Scheduling a coroutine *function* outside debug mode is allowed (as in
# asyncio); calling it then creates a coroutine nobody awaits.
@pytest.mark.filterwarnings("ignore:coroutine '_coroutine_function' was never awaited")
# create_task and create_connection on a closed loop refuse the coroutine,
# which then warns that it was never awaited, as asyncio's coroutines do.
@pytest.mark.filterwarnings("ignore:coroutine '.*' was never awaited:RuntimeWarning")
# Sequences may close the loop with sock_* calls, sendfiles and a transport
# still open: those warn as they would under asyncio, which is not a fault.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=25))
def test_random_call_sequences(ops):
    gc.collect()
    fds_before = len(open_fds())
    world = World()
    try:
        for op in ops:
            try:
                world.apply(op)
            except ALLOWED:
                pass
    finally:
        world.finish()
    assert len(open_fds()) == fds_before
