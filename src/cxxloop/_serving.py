"""Listening sockets and Unix stream sockets for cxxloop.Loop.

BaseEventLoop's create_server / Server / connect_accepted_socket call the
hooks here (_start_serving, _stop_serving); each accepted connection gets a
C++ StreamTransport from loop._make_socket_transport. create_unix_connection
and create_unix_server follow asyncio's unix_events, over the same hooks.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from asyncio import base_events, constants, tasks, trsock
from asyncio.log import logger
from typing import Any, Callable

# accept() errors that mean "out of fds or memory": the listening socket
# stays readable, so it is left alone for ACCEPT_RETRY_DELAY instead of
# spinning on it.
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _is_abstract(path: str | bytes) -> bool:
    return path[0] in (0, "\x00")


class Serving:
    """Mixin of Loop: needs the fd watches, call_later, _make_*_transport."""

    def __init__(self) -> None:
        # Listening Unix sockets to unlink on close: socket -> inode bound.
        self._unix_server_sockets: dict[socket.socket, int] = {}

    def _start_serving(
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = constants.SSL_SHUTDOWN_TIMEOUT,
    ) -> None:
        if sock.fileno() == -1:
            return  # closed while an accept back-off was pending
        self.add_reader(  # type: ignore[attr-defined]
            sock.fileno(),
            self._accept_connections,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )

    def _stop_serving(self, sock: socket.socket) -> None:
        path = sock.getsockname() if sock in self._unix_server_sockets else None
        self.remove_reader(sock.fileno())  # type: ignore[attr-defined]
        sock.close()
        if path is None:
            return
        inode = self._unix_server_sockets.pop(sock)
        try:
            # Only the file this server bound: another may have replaced it.
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

    def _accept_connections(
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        sslcontext: Any,
        server: Any,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
    ) -> None:
        # Up to `backlog` connections per readiness event, like asyncio
        # (bpo-27906): one accept per event starves a busy listener.
        for _ in range(backlog):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise  # reported by the loop's exception handler
                self.call_exception_handler(  # type: ignore[attr-defined]
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": exc,
                        "socket": trsock.TransportSocket(sock),
                    }
                )
                self.remove_reader(sock.fileno())  # type: ignore[attr-defined]
                self.call_later(  # type: ignore[attr-defined]
                    constants.ACCEPT_RETRY_DELAY,
                    self._start_serving,
                    protocol_factory,
                    sock,
                    sslcontext,
                    server,
                    backlog,
                    ssl_handshake_timeout,
                    ssl_shutdown_timeout,
                )
                return
            if self._debug:  # type: ignore[attr-defined]
                logger.debug("%r got a new connection from %r: %r", server, addr, conn)
            self._serve_connection(
                protocol_factory, conn, addr, sslcontext, server, ssl_handshake_timeout, ssl_shutdown_timeout
            )

    def _serve_connection(
        self,
        protocol_factory: Callable[[], Any],
        conn: socket.socket,
        addr: Any,
        sslcontext: Any,
        server: Any,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
    ) -> None:
        # The transport is made at once rather than in a task per
        # connection: connection_made is scheduled by the transport, and
        # nothing here needs to wait for it.
        protocol = None
        try:
            protocol = protocol_factory()
            extra = {"peername": addr}
            if sslcontext:
                self._make_ssl_transport(  # type: ignore[attr-defined]
                    conn,
                    protocol,
                    sslcontext,
                    server_side=True,
                    extra=extra,
                    server=server,
                    ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout,
                )
            else:
                self._make_socket_transport(conn, protocol, extra=extra, server=server)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            if self._debug:  # type: ignore[attr-defined]
                context = {"message": "Error on transport creation for incoming connection", "exception": exc}
                if protocol is not None:
                    context["protocol"] = protocol
                self.call_exception_handler(context)  # type: ignore[attr-defined]

    async def create_unix_connection(
        self,
        protocol_factory: Callable[[], Any],
        path: Any = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, os.fspath(path))  # type: ignore[attr-defined]
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            _check_unix_stream(sock)
            sock.setblocking(False)
        return await self._create_connection_transport(  # type: ignore[attr-defined,no-any-return]
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_server(
        self,
        protocol_factory: Callable[[], Any],
        path: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> base_events.Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            sock = _bind_unix(os.fspath(path))
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            _check_unix_stream(sock)
        if cleanup_socket:
            name = sock.getsockname()
            if name and not _is_abstract(name):
                try:
                    self._unix_server_sockets[sock] = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = base_events.Server(
            self, [sock], protocol_factory, ssl, backlog, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        if start_serving:
            server._start_serving()
            # Let the listening socket's reader get registered first.
            await tasks.sleep(0)
        return server


def _check_unix_stream(sock: socket.socket) -> None:
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")


def _bind_unix(path: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if not _is_abstract(path):
        # A socket file left by a dead server would make bind() fail.
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock
