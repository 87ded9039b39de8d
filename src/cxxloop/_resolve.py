"""getaddrinfo / getnameinfo answered on the loop's thread when no lookup
is needed: a numeric host and port resolve to themselves, so a round trip
through the executor (a thread hand-off each way) buys nothing.

Everything else, and any input this module is not sure about, goes to
asyncio's threaded resolver, which gives the system's answer or error.
"""

from __future__ import annotations

import socket
from functools import cache
from typing import Any

# Flags that do not change what a numeric host and port resolve to.
_NUMERIC_SAFE_FLAGS = socket.AI_PASSIVE | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
_NUMERIC_NAMEINFO = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
_MISSING: list[Any] = []


def numeric_getaddrinfo(
    host: Any, port: Any, family: int, type: int, proto: int, flags: int
) -> list[tuple[Any, ...]] | None:
    """socket.getaddrinfo's result without a lookup, or None when one may be
    needed (a name, a service name, a scope id, unusual flags)."""
    if not all(isinstance(hint, int) for hint in (family, type, proto, flags)):
        return None  # the threaded path raises the system's TypeError
    if flags & ~_NUMERIC_SAFE_FLAGS:
        return None
    address = _numeric_host(host)
    if address is None:
        return None
    host_family, text = address
    if family not in (socket.AF_UNSPEC, host_family):
        return None  # the system's error, from the threaded path
    number = _numeric_port(port)
    if number is None:
        return None
    kinds = _socket_kinds(host_family, type, proto, flags, port is None)
    if kinds is _MISSING:
        return None
    sockaddr = (text, number) if host_family == socket.AF_INET else (text, number, 0, 0)
    return [(host_family, kind, kproto, "", sockaddr) for kind, kproto in kinds]


def numeric_getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str] | None:
    """With NI_NUMERICHOST and NI_NUMERICSERV, getnameinfo only formats."""
    if not isinstance(flags, int) or flags & _NUMERIC_NAMEINFO != _NUMERIC_NAMEINFO:
        return None
    return socket.getnameinfo(sockaddr, flags)


def _numeric_host(host: Any) -> tuple[int, str] | None:
    """(family, canonical text) of an IPv4 or IPv6 literal, else None."""
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(host, str):
        return None
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            packed = socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family, socket.inet_ntop(family, packed)
    return None


def _numeric_port(port: Any) -> int | None:
    if port is None:
        return 0
    if isinstance(port, bytes):
        try:
            port = port.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(port, str):
        if not (port.isascii() and port.isdigit() and len(port) <= 5):
            return None
        port = int(port)
    if type(port) is not int or not 0 <= port <= 65535:
        return None
    return port


@cache
def _socket_kinds(
    family: int, type: int, proto: int, flags: int, no_port: bool
) -> list[tuple[socket.SocketKind, int]]:
    """The (type, proto) pairs the system lists for a numeric address of
    `family` with these hints; the same for every address, so asked once
    (for a literal, which never blocks). _MISSING if the hints are refused."""
    literal = "127.0.0.1" if family == socket.AF_INET else "::1"
    try:
        infos = socket.getaddrinfo(literal, None if no_port else 0, family, type, proto, flags)
    except (OSError, OverflowError, TypeError, ValueError):
        return _MISSING
    return [(kind, kproto) for _, kind, kproto, _, _ in infos]
