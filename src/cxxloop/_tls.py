"""TLS connections: cxxloop's C++ TLS transport where it applies.

The C++ transport (csrc/py/tls_transport.cpp) drives the SSL of an
ssl.SSLObject that the user's SSLContext.wrap_bio() made over two
ssl.MemoryBIOs, just as asyncio's sslproto.SSLProtocol does; this module
makes those objects exactly as SSLProtocol.__init__ does (the same checks,
in the same order, with the same messages) and hands them over.

Where the transport cannot take a connection, the connection is asyncio's
own sslproto over cxxloop's socket transport, which behaves the same,
only slower:
- CXXLOOP_TLS=sslproto is set in the environment;
- the context has a TLS message callback (ssl's _msg_callback debugging
  hook), or makes SSLObjects of a class of its own (sslobject_class);
- the socket is a socket.socket subclass (whose methods asyncio calls);
- the GIL is disabled (a free-threaded build run with PYTHON_GIL=0): the
  ssl module then guards each SSL with a lock the C++ side cannot take;
- the interpreter's ssl module cannot be reached (loop._tls_unavailable()
  says why).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from . import _asyncio_internals as internals
from . import _core
from ._asyncio_internals import ssl


def _native_allowed(loop: Any, sslcontext: Any) -> bool:
    if ssl is None or os.environ.get("CXXLOOP_TLS") == "sslproto":
        return False
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None and not gil_enabled():
        return False
    if loop._tls_unavailable() is not None:
        return False
    if sslcontext is not None and not isinstance(sslcontext, ssl.SSLContext):
        return False
    if sslcontext is not None and (
        internals.ssl_message_callback(sslcontext) is not None or sslcontext.sslobject_class is not ssl.SSLObject
    ):
        return False
    return True


def _timeout(value: Any, default: float, name: str) -> Any:
    # SSLProtocol.__init__'s check: None is the default, and only a
    # positive number is a timeout.
    if value is None:
        return default
    if value <= 0:
        raise ValueError(f"{name} should be a positive number, got {value}")
    return value


def _wrap(
    sslcontext: Any, server_side: bool, server_hostname: Any, handshake_timeout: Any, shutdown_timeout: Any
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """SSLProtocol.__init__'s set-up: the timeouts, the context, and the
    SSLObject over two new MemoryBIOs."""
    handshake_timeout = _timeout(handshake_timeout, internals.SSL_HANDSHAKE_TIMEOUT, "ssl_handshake_timeout")
    shutdown_timeout = _timeout(shutdown_timeout, internals.SSL_SHUTDOWN_TIMEOUT, "ssl_shutdown_timeout")
    if not sslcontext:
        sslcontext = internals.create_transport_context(server_side, server_hostname)
    hostname = server_hostname if server_hostname and not server_side else None
    incoming = ssl.MemoryBIO()
    outgoing = ssl.MemoryBIO()
    sslobj = sslcontext.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=hostname)
    return sslcontext, sslobj, incoming, outgoing, handshake_timeout, shutdown_timeout


def make_transport(
    loop: Any,
    rawsock: Any,
    protocol: Any,
    sslcontext: Any,
    waiter: Any,
    server_side: bool,
    server_hostname: Any,
    extra: Any,
    server: Any,
    handshake_timeout: Any,
    shutdown_timeout: Any,
    context: Any,
) -> Any:
    """The C++ TLS transport over `rawsock` (loop._make_ssl_transport), or
    None where it cannot take the connection."""
    if type(rawsock) is not socket.socket or not _native_allowed(loop, sslcontext):
        return None
    sslcontext, sslobj, incoming, outgoing, handshake_timeout, shutdown_timeout = _wrap(
        sslcontext, server_side, server_hostname, handshake_timeout, shutdown_timeout
    )
    return loop._make_tls_transport(
        rawsock, protocol, sslobj, incoming, outgoing, sslcontext, waiter, extra, server,
        handshake_timeout, shutdown_timeout, context,
    )


async def start_tls(
    loop: Any,
    transport: Any,
    protocol: Any,
    sslcontext: Any,
    server_side: bool,
    server_hostname: Any,
    handshake_timeout: Any,
    shutdown_timeout: Any,
) -> Any:
    """loop.start_tls over cxxloop's socket transport, which the C++ TLS
    transport takes over; None where it cannot (asyncio's start_tls then
    runs, with the same checks)."""
    if type(transport) is not _core.StreamTransport or not _native_allowed(loop, sslcontext):
        return None
    if not isinstance(sslcontext, ssl.SSLContext):
        return None
    waiter = loop.create_future()
    sslcontext, sslobj, incoming, outgoing, handshake_timeout, shutdown_timeout = _wrap(
        sslcontext, server_side, server_hostname, handshake_timeout, shutdown_timeout
    )
    # What a stream read before the upgrade is the start of the client's
    # handshake, which asyncio's server side hands on from 3.14.
    buffer = None
    if server_side and internals.START_TLS_MOVES_STREAM_BUFFER:
        buffer = internals.stream_reader_buffer(protocol)
    tls = loop._tls_take_over(
        transport, protocol, sslobj, incoming, outgoing, sslcontext, waiter, handshake_timeout, shutdown_timeout,
        bytes(buffer) if buffer else None,
    )
    if tls is None:
        return None
    if buffer:
        buffer.clear()
    try:
        await waiter
    except BaseException:
        transport.close()
        # The waiter holds the exception, whose traceback holds this
        # frame: the cycle would keep both transports until a collection.
        waiter = None
        raise
    return tls

