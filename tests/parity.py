"""The suite's helpers, in one module that tests import as a sibling:
running a coroutine on asyncio's loop and on cxxloop to compare what each
did, running one on cxxloop, the protocols and servers tests connect,
socket pairs, TLS contexts, descriptor counts, and skipping a test whose
optional dependency is missing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import socket
import ssl
import subprocess
import sys

import pytest

import cxxloop

LOOPS = {"asyncio": asyncio.SelectorEventLoop, "cxxloop": cxxloop.new_event_loop}


def on_both(main, *args):
    """main(*args) on each loop, in a fresh loop each; returns {loop name: result}."""
    results = {}
    for name, factory in LOOPS.items():
        with asyncio.Runner(loop_factory=factory) as runner:
            results[name] = runner.run(asyncio.wait_for(main(*args), 30))
    return results


def agree(main, *args):
    """main's result, checked to be the same on both loops."""
    results = on_both(main, *args)
    assert results["cxxloop"] == results["asyncio"], results
    return results["cxxloop"]


@contextlib.contextmanager
def asyncio_leaks_dropped():
    """In some fault scenarios asyncio's own loop leaves a socket or
    transport to the GC, which warns about it; those warnings are asyncio's
    and are dropped here (collected before leaving, so none is reported in
    a later test)."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = hook


def outcome(call):
    """What call() did, to compare between the loops: ("returned", its
    result), or the type name and message of what it raised."""
    try:
        return ("returned", call())
    except Exception as exc:  # the point is to compare what each raises
        return (type(exc).__name__, str(exc))


def run(coro, *, timeout=30, debug=False):
    """coro on a new cxxloop loop (cxxloop.run), failing after `timeout` seconds."""
    return cxxloop.run(asyncio.wait_for(coro, timeout), debug=debug)


def run_briefly(loop, seconds=0.0):
    """One pass of the loop (more, for `seconds`)."""
    loop.run_until_complete(asyncio.sleep(seconds))


def run_until_stopped(loop, delay=0.05):
    """Runs the loop forever, stopped after `delay` seconds."""
    loop.call_later(delay, loop.stop)
    loop.run_forever()


def noop(*args: object) -> None:
    pass


async def wait_until(pred, timeout=10.0):
    """Polls pred() until it is true, for at most `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.005)


def open_fds() -> set[tuple[str, str]]:
    """Each open descriptor with what it refers to: a socket leaked onto a
    number that another thread closed meanwhile still shows (its inode is
    new), and that thread's close is not taken for our leak."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except FileNotFoundError:  # the listing's own descriptor, now closed
            pass
    return fds


def under_asan() -> bool:
    """Whether this process runs with AddressSanitizer (make test-asan)."""
    with open("/proc/self/maps") as maps:
        return any("libasan" in line for line in maps)


def require(module: str):
    """Import `module`, a package of the test-integrations extra, or skip
    the test (or, at import time, the module) saying where it comes from."""
    return pytest.importorskip(
        module, reason=f"{module} is not installed; it comes with the test-integrations extra"
    )


def payload(size: int) -> bytes:
    """`size` bytes that differ from one offset to the next: data out of
    order or repeated does not compare equal."""
    return random.Random(size).randbytes(size)


def nonblocking_pair(kind=socket.SOCK_STREAM):
    """A connected pair of non-blocking Unix sockets of `kind`."""
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class ReadRecorder:
    """A protocol mixin recording reads in the `events` and `data` its class
    makes: "data" once per run of data_received calls, the bytes, and
    "eof" (eof_received returns `keep_open`)."""

    eof = False
    keep_open = False

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        self.eof = True
        return self.keep_open


class Recorder(ReadRecorder, asyncio.Protocol):
    """A stream protocol recording its callbacks in `events` ("made", "data",
    "eof", "lost"), what it received in `data`, and how often writing
    paused and resumed; `lost` resolves on connection_lost."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self.lost_calls = 0
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost_calls += 1
        if not self.lost.done():
            self.lost.set_result(exc)


class Echo(asyncio.Protocol):
    """Writes back what it receives."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_server(factory=Echo):
    """A TCP server of `factory` protocols on the running loop: (server, port)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def stream_echo(reader, writer):
    """A streams server's callback writing back what it reads, until EOF."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


class LifecycleRecorder:
    """A protocol mixin recording connection_made, pause/resume_writing and
    connection_lost in `events`; `lost` resolves on connection_lost."""

    def __init__(self):
        self.events = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


def tls_contexts(directory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 'localhost'
    (made in `directory` unless one is there already), and a client
    context that trusts it; fresh contexts on each call."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
             "-keyout", key, "-out", cert],
            check=True, capture_output=True,
        )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client
