"""The Loop class: the C++ core plus asyncio's per-loop logic.

Everything that runs per callback (scheduling, timers, the run loop, fd
watches) is CoreLoop's, in C++. The rest comes from asyncio's own Unix
selector loop, which is written against a handful of hooks CoreLoop
provides (_add_reader/_add_writer/_remove_*, call_soon, call_later): its
executors, exception handler, async generator shutdown, servers, and the
set-up of connections, datagram endpoints and pipes therefore behave
exactly as asyncio's, driven by the C++ poller. The transports themselves
are C++ (see docs/streams.md and docs/datagrams_and_pipes.md). Only the pieces
that touch the stdlib loop's own selector, or that differ between Python
versions, are written here.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import selectors
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from . import _asyncio_internals as internals
from . import _core, _resolve, _stats, _tls, _watch
from ._signals import SignalHandlers
from ._subprocess import Subprocesses


class _Removed:
    """An inherited asyncio method that cannot work on cxxloop's state:
    looking it up raises AttributeError, so the loop simply does not have
    it (hasattr() is False), instead of failing inside asyncio's code."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        raise AttributeError(f"cxxloop.Loop has no {self.name!r}: it works on the selector loop's self-pipe")


class Loop(_core.CoreLoop, SignalHandlers, Subprocesses, internals.UnixSelectorEventLoop):
    """A cxxloop event loop. Create one with cxxloop.new_event_loop()."""

    # Every attribute the loop itself sets, so that its instance __dict__
    # stays unmade. While it is, looking up a method skips the instance
    # dict: CPython's Task finds call_soon without a dict lookup, and
    # Python code's loop.method() calls specialize (LOAD_ATTR_METHOD_LAZY_DICT)
    # instead of taking the generic path every time (gather: 2.6% fewer
    # instructions per task). Other attributes (a test's mock, say) still
    # go to a __dict__, made then.
    # The mixins' attributes are here too: their own __slots__ would clash
    # with CoreLoop's C layout.
    __slots__ = (
        *internals.LOOP_ATTRIBUTES,
        "_signal_handlers", "_signal_sockets",  # SignalHandlers
        "_child_pidfds",  # Subprocesses
    )

    def __init__(self) -> None:
        # The stdlib loops' __init__ is deliberately not called: the state it
        # would create (_ready, _scheduled, _closed, a selector, a self-pipe)
        # lives in CoreLoop. These are the attributes its Python methods use.
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._unix_server_sockets: dict[Any, int] = {}
        self._default_executor = None
        self._exception_handler = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._executor_shutdown_called = False
        SignalHandlers.__init__(self)
        Subprocesses.__init__(self)
        self.set_debug(internals.is_debug_mode())

    @property
    def _selector(self) -> _WatchView | None:
        # None once closed, as the stdlib loop's selector attribute is.
        return None if self.is_closed() else _WatchView(self)

    def close(self) -> None:
        # As asyncio's Unix loop: the loop closes first (or refuses, while
        # running), then its signal handlers go, which raises outside the
        # main thread after the loop is closed.
        super().close()
        self._stop_watching(self)
        try:
            self._close_signal_handlers()
        finally:
            self._close_child_watches()

    # A class attribute, not the module's global: close() also runs from
    # __del__ while the interpreter tears the modules down.
    _stop_watching = staticmethod(_watch.stop_watching)

    def stats(self, *, reset: bool = False) -> _stats.LoopStats:
        """A snapshot of the loop's counters and histograms (docs/observability.md).

        With ``reset=True`` they are zeroed right after, in the same step, so
        that successive snapshots count disjoint stretches of time. Safe to
        call from any thread.
        """
        return _stats.LoopStats.from_snapshot(self._stats_snapshot(reset))

    def _watch_finished(self, entry: Any, seq: int, duration: float) -> None:
        # The C++ core's call at the end of a callback a watch found slow.
        _watch.finished(self, entry, seq, duration)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the default executor's threads, at most `timeout` seconds.

        Python 3.11's BaseEventLoop has no timeout; this is the same
        behaviour on every supported version.
        """
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()
        joiner = threading.Thread(target=self._join_executor, args=(executor, done))
        joiner.start()
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(
                "The executor did not finish joining its threads "
                f"within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            joiner.join()

    def _make_ssl_transport(
        self,
        rawsock: Any,
        protocol: Any,
        sslcontext: Any,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: Any = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = internals.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = internals.SSL_SHUTDOWN_TIMEOUT,
        context: contextvars.Context | None = None,
    ) -> Any:
        # The C++ TLS transport (see _tls.py), or where it cannot take the
        # connection, asyncio's sslproto over the C++ socket transport.
        transport = _tls.make_transport(
            self, rawsock, protocol, sslcontext, waiter, server_side, server_hostname, extra, server,
            ssl_handshake_timeout, ssl_shutdown_timeout, context,
        )
        if transport is not None:
            return transport
        ssl_protocol = internals.SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            # Seconds, as a float too; typeshed says int.
            ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra, server=server, context=context)
        return ssl_protocol._app_transport

    async def start_tls(
        self,
        transport: Any,
        protocol: Any,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> Any:
        tls = await _tls.start_tls(
            self, transport, protocol, sslcontext, server_side, server_hostname, ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if tls is not None:
            return tls
        return await super().start_tls(
            transport, protocol, sslcontext, server_side=server_side, server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    def _start_serving(
        self,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = internals.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = internals.SSL_SHUTDOWN_TIMEOUT,
        context: contextvars.Context | None = None,
    ) -> None:
        if sslcontext is not None:  # TLS connections keep asyncio's handshake path
            internals.start_serving(
                self, protocol_factory, sock, sslcontext, server, backlog, ssl_handshake_timeout,
                ssl_shutdown_timeout, context,
            )
            return
        # Plain ones are accepted and set up in C++ (server_acceptor.cpp),
        # each in a copy of `context` (3.15's Server passes its own), or of
        # the current one.
        self._start_accepting(protocol_factory, sock, server, backlog, context)

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        if not self.get_debug():  # debug mode logs every lookup: keep asyncio's path
            found = _resolve.numeric_getaddrinfo(host, port, family, type, proto, flags)
            if found is not None:
                return found
        return await super().getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        found = _resolve.numeric_getnameinfo(sockaddr, flags)
        if found is not None:
            return found
        return await super().getnameinfo(sockaddr, flags)

    async def _sendfile_native(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        # The C++ transport sends the file itself (zero-copy); others, such
        # as asyncio's own transports on this loop, keep asyncio's way.
        if not isinstance(transp, _core.StreamTransport):
            # BaseEventLoop's, which typeshed does not declare.
            return await super()._sendfile_native(transp, file, offset, count)  # type: ignore[misc]
        # What asyncio's sock_sendfile checks first (binary file, counts).
        internals.check_sendfile_params(self, transp._sock, file, offset, count)
        fileno, blocksize = _sendfile_source(file, count)
        if not blocksize:
            return 0  # an empty file
        sent = transp._sendfile(fileno, offset, count or 0, blocksize)
        try:
            return await sent
        finally:
            if sent.cancelled():  # the awaiter was: stop the job
                transp._sendfile_cancel()

    def _join_executor(self, executor: Any, done: asyncio.Future[None]) -> None:
        # Runs in its own thread so the loop keeps running while it waits.
        outcome: tuple[Callable[[Any], object], Any]
        try:
            executor.shutdown(wait=True)
        except Exception as exc:
            outcome = (done.set_exception, exc)
        else:
            outcome = (done.set_result, None)
        if not self.is_closed():
            self.call_soon_threadsafe(_settle, done, *outcome)


for _name in internals.SELF_PIPE_METHODS:
    setattr(Loop, _name, _Removed(_name))
del _name


def _sendfile_source(file: Any, count: int | None) -> tuple[int, int]:
    """The file's descriptor and sendfile block size, as asyncio's Unix
    loop finds them; SendfileNotAvailableError (so loop.sendfile falls back
    to read + write) for anything that is not a regular file."""
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation) as err:
        raise asyncio.SendfileNotAvailableError("not a regular file") from err
    try:
        fsize = os.fstat(fileno).st_size
    except OSError as err:
        raise asyncio.SendfileNotAvailableError("not a regular file") from err
    return fileno, count if count else fsize


def _settle(fut: asyncio.Future[Any], setter: Any, value: Any) -> None:
    if not fut.done():
        setter(value)


class _WatchView:
    """The read-only part of a selectors.BaseSelector over CoreLoop's fd
    watches: asyncio's transports ask it, in their repr, whether they are
    polling."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        events = self._loop._watched_events(fileobj)
        if not events:
            raise KeyError(f"{fileobj!r} is not registered")
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return selectors.SelectorKey(fileobj, fd, events, None)
