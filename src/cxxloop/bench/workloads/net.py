"""Network workloads: an echo server and an HTTP server on the loop under
test, loaded from another process pinned to another core.

Each workload's size is its duration in milliseconds. The server runs on
the measured loop in the benchmark's child process, pinned to core 0; the
load generator (csrc/bench/loadgen.c for echo, wrk for HTTP) runs pinned to
core 1 and reports what it completed and in how long; the loop runs until
the generator exits. The CPU time is the server process's over that run.
Echo workloads and http_raw also measure a plain C
epoll server (csrc/bench/echo_server.c, answering HTTP for http_raw) under the
same load: the ceiling.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from .. import native
from . import Workload
from .timing import Measured, Stopwatch

HOST = "127.0.0.1"
# The cores this process may use, read once at import: the server pins
# itself later, and a load generator forked after that must still be able
# to pick another core.
_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
# Server and load generator each get a core of their own, when there are two.
SERVER_CORE, LOAD_CORE = (_CORES[0], _CORES[1]) if len(_CORES) > 1 else (None, None)
# Enough connections in flight to keep the server's core busy.
CONNECTIONS = {64: 32, 1024: 32, 10 * 1024: 16, 100 * 1024: 8}
HTTP_CONNECTIONS = 64
READ_SIZE = 256 * 1024


def _pin(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})


def _pinned(core: int | None) -> Callable[[], None] | None:
    return None if core is None else lambda: _pin(core)


def _drive(loop: asyncio.AbstractEventLoop, cmd: list[str]) -> tuple[str, float]:
    """Run the load generator `cmd` on its own core while `loop` serves;
    return what the generator printed and the CPU seconds this process
    spent meanwhile."""
    _pin(SERVER_CORE)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_pinned(LOAD_CORE))
    output: list[str] = []

    def wait() -> None:
        output.extend(proc.communicate())
        loop.call_soon_threadsafe(loop.stop)

    waiter = threading.Thread(target=wait, daemon=True)
    clock = Stopwatch()
    waiter.start()
    loop.run_forever()
    _, cpu_seconds = clock.elapsed()
    waiter.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {output[1].strip()}")
    return output[0], cpu_seconds


def _loadgen_result(stdout: str) -> tuple[int, float]:
    messages, _, seconds = stdout.split()
    return int(messages), float(seconds)


# --- echo servers, one per API style ------------------------------------------


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class _EchoBuffered(asyncio.BufferedProtocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray(READ_SIZE)

    def get_buffer(self, sizehint):
        return self.buffer

    def buffer_updated(self, nbytes):
        # A copy: the buffer is reused by the next read.
        self.transport.write(self.buffer[:nbytes])


async def _serve_protocol(factory: Callable[[], asyncio.BaseProtocol]) -> asyncio.Server:
    return await asyncio.get_running_loop().create_server(factory, HOST, 0)


async def stream_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(READ_SIZE):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _serve_streams() -> asyncio.Server:
    return await asyncio.start_server(stream_echo, HOST, 0)


class _SockServer:
    """An echo server written with loop.sock_accept / sock_recv / sock_sendall."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import socket

        self.loop = loop
        self.listener = socket.create_server((HOST, 0))
        self.listener.setblocking(False)
        self.sockets = [self.listener]
        self.tasks: set[asyncio.Task[None]] = set()
        self.accepting = loop.create_task(self.accept())

    async def accept(self) -> None:
        while True:
            conn, _ = await self.loop.sock_accept(self.listener)
            task = self.loop.create_task(self.echo(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def echo(self, conn) -> None:
        with conn:
            while data := await self.loop.sock_recv(conn, READ_SIZE):
                await self.loop.sock_sendall(conn, data)

    def close(self) -> None:
        self.accepting.cancel()
        for task in self.tasks:
            task.cancel()
        self.listener.close()

    async def wait_closed(self) -> None:
        await asyncio.gather(self.accepting, *self.tasks, return_exceptions=True)


async def _serve_sock() -> _SockServer:
    return _SockServer(asyncio.get_running_loop())


class _EchoServer(Protocol):
    """What the workloads use of a server: asyncio.Server, or _SockServer."""

    @property
    def sockets(self) -> Sequence[Any]: ...
    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


SERVERS: dict[str, Callable[[], Awaitable[_EchoServer]]] = {
    "protocol": lambda: _serve_protocol(EchoProtocol),
    "buffered": lambda: _serve_protocol(_EchoBuffered),
    "streams": _serve_streams,
    "sock": _serve_sock,
}


def _loadgen(size: int) -> Callable[[int, int], list[str]]:
    """The echo load generator's command line for a port and a duration."""
    return lambda port, millis: [str(native.binary("loadgen")), HOST, str(port), str(CONNECTIONS[size]),
                                 str(size), str(millis)]


def _echo_run(style: str, size: int) -> Callable[[asyncio.AbstractEventLoop, int], Measured]:
    def run(loop: asyncio.AbstractEventLoop, millis: int) -> Measured:
        server = loop.run_until_complete(SERVERS[style]())
        port = server.sockets[0].getsockname()[1]
        try:
            out, cpu_seconds = _drive(loop, _loadgen(size)(port, millis))
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
        return Measured(*_loadgen_result(out), cpu_seconds)

    return run


def _c_server_ceiling(mode: list[str], load: Callable[[int, int], list[str]],
                      result: Callable[[str], tuple[int, float]]) -> Callable[[int], Measured]:
    """The same load against the C echo_server (in `mode`) instead of a loop."""
    def ceiling(millis: int) -> Measured:
        server = subprocess.Popen([str(native.binary("echo_server")), *mode], stdout=subprocess.PIPE, text=True,
                                  preexec_fn=_pinned(SERVER_CORE))
        assert server.stdout is not None  # stdout=PIPE
        try:
            port = int(server.stdout.readline())
            out = subprocess.run(load(port, millis), capture_output=True, text=True, check=True,
                                 preexec_fn=_pinned(LOAD_CORE))
        finally:
            # The load generator has been waited for: what the children's
            # CPU time grows by now is the server's alone.
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            server.kill()
            server.wait()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            server.stdout.close()
        cpu_seconds = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return Measured(*result(out.stdout), cpu_seconds)

    return ceiling


# --- HTTP ----------------------------------------------------------------------

_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
             b"Connection: keep-alive\r\n\r\nHello, World!")


class _RawHttp(asyncio.Protocol):
    """A keep-alive HTTP/1.1 responder: one fixed response per request head
    (wrk sends requests without bodies)."""

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        data = self.pending + data
        requests = data.count(b"\r\n\r\n")
        self.pending = data[data.rfind(b"\r\n\r\n") + 4:] if requests else data
        if requests:
            self.transport.write(_RESPONSE * requests)


async def _serve_raw_http():
    return await asyncio.get_running_loop().create_server(_RawHttp, HOST, 0)


async def serve_aiohttp(ssl_context=None):
    """The aiohttp hello-world application on the running loop (over TLS
    with `ssl_context`); returns its web.AppRunner."""
    from aiohttp import web

    async def hello(request):
        return web.Response(text="Hello, World!")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0, ssl_context=ssl_context).start()
    return runner


def _wrk_command(port: int, millis: int) -> list[str]:
    seconds = max(1, round(millis / 1000))
    return ["wrk", "-t1", f"-c{HTTP_CONNECTIONS}", f"-d{seconds}s", f"http://{HOST}:{port}/"]


def _wrk_result(out: str) -> tuple[int, float]:
    match = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not match or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk reported errors or nothing:\n{out}")
    elapsed = float(match[2]) / (1000 if match[3] == "ms" else 1)
    return int(match[1]), elapsed


def _wrk(loop: asyncio.AbstractEventLoop, port: int, millis: int) -> Measured:
    out, cpu_seconds = _drive(loop, _wrk_command(port, millis))
    return Measured(*_wrk_result(out), cpu_seconds)


def _http_raw(loop: asyncio.AbstractEventLoop, millis: int) -> Measured:
    server = loop.run_until_complete(_serve_raw_http())
    try:
        return _wrk(loop, server.sockets[0].getsockname()[1], millis)
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())


def _http_aiohttp(loop: asyncio.AbstractEventLoop, millis: int) -> Measured:
    runner = loop.run_until_complete(serve_aiohttp())
    try:
        return _wrk(loop, runner.addresses[0][1], millis)
    finally:
        loop.run_until_complete(runner.cleanup())


def _no_wrk() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed (apt-get install wrk)"


def no_aiohttp() -> str | None:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "aiohttp is not installed"
    return None


SIZES = {"64": 64, "1k": 1024, "10k": 10 * 1024, "100k": 100 * 1024}
STYLE_DESCRIPTIONS = {
    "protocol": "asyncio.Protocol echo server",
    "buffered": "asyncio.BufferedProtocol echo server",
    "streams": "asyncio streams (start_server) echo server",
    "sock": "loop.sock_accept/sock_recv/sock_sendall echo server",
}

WORKLOADS = [
    Workload(
        name=f"echo_{style}_{label}",
        unit="msgs",
        size=1000,
        quick_size=300,
        description=f"{STYLE_DESCRIPTIONS[style]}, {size}-byte messages, {CONNECTIONS[size]} "
                    "connections from the C load generator on another core",
        run=_echo_run(style, size),
        transports=True,
        unavailable=native.missing,
        ceiling=_c_server_ceiling([], _loadgen(size), _loadgen_result),
    )
    for style in STYLE_DESCRIPTIONS
    for label, size in SIZES.items()
] + [
    Workload(
        name="http_raw",
        unit="reqs",
        size=2000,
        quick_size=1000,
        description=f"raw asyncio.Protocol HTTP/1.1 keep-alive responder under wrk, {HTTP_CONNECTIONS} connections",
        run=_http_raw,
        transports=True,
        unavailable=lambda: _no_wrk() or native.missing(),
        ceiling=_c_server_ceiling(["http"], _wrk_command, _wrk_result),
    ),
    Workload(
        name="http_aiohttp",
        unit="reqs",
        size=2000,
        quick_size=1000,
        description=f"aiohttp hello-world application under wrk, {HTTP_CONNECTIONS} connections",
        run=_http_aiohttp,
        transports=True,
        unavailable=lambda: no_aiohttp() or _no_wrk(),
    ),
]
