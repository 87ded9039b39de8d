"""loop.getaddrinfo / getnameinfo: numeric hosts and ports are answered
without the executor, and every answer, fast or threaded, is exactly
socket.getaddrinfo's (or raises its exception type)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cxxloop

# "localhost" is a real lookup, but of /etc/hosts only: deterministic.
HOSTS = [
    "127.0.0.1", "0.0.0.0", "10.1.2.3", "255.255.255.255", b"192.168.0.1",
    "::1", "::", "::0001", "fe80::1", "::ffff:1.2.3.4", "2001:DB8::A", b"::1",
    "127.1", "1.2.3.4.5", "fe80::1%1", "localhost", "", None, "256.1.1.1", b"\xff",
]
PORTS = [None, 0, 80, 65535, 65536, -1, "443", "080", b"8080", "http", "", " 80", "٨٠", True]
FAMILIES = [socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6]
TYPES = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET]
PROTOS = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP, 99]
FLAGS = [0, socket.AI_PASSIVE, socket.AI_NUMERICHOST, socket.AI_NUMERICSERV, socket.AI_CANONNAME,
         socket.AI_ADDRCONFIG, socket.AI_PASSIVE | socket.AI_NUMERICSERV]


def outcome(call):
    try:
        return ("ok", call())
    except Exception as exc:  # the type, as asyncio's threaded path raises it
        return ("error", type(exc))


@pytest.fixture(scope="module")
def loop():
    lp = cxxloop.new_event_loop()
    yield lp
    lp.close()


@settings(max_examples=400, deadline=None)
@given(
    host=st.sampled_from(HOSTS), port=st.sampled_from(PORTS), family=st.sampled_from(FAMILIES),
    type_=st.sampled_from(TYPES), proto=st.sampled_from(PROTOS), flags=st.sampled_from(FLAGS),
)
def test_getaddrinfo_matches_the_system(loop, host, port, family, type_, proto, flags):
    expected = outcome(lambda: socket.getaddrinfo(host, port, family, type_, proto, flags))
    got = outcome(lambda: loop.run_until_complete(
        loop.getaddrinfo(host, port, family=family, type=type_, proto=proto, flags=flags)))
    assert got == expected


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", b"10.0.0.1"])
@pytest.mark.parametrize("type_", [0, socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_numeric_lookups_never_use_the_executor(host, type_):
    async def main():
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, 8080, type=type_)
        name = await loop.getnameinfo(infos[0][4], socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        return infos, name, loop._default_executor

    infos, name, executor = cxxloop.run(main())
    assert infos == socket.getaddrinfo(host, 8080, type=type_)
    assert name[1] == "8080"
    assert executor is None  # no thread was started


def test_names_still_go_to_the_threaded_resolver():
    async def main():
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        return infos, loop._default_executor

    infos, executor = cxxloop.run(main())
    assert infos == socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    assert executor is not None


def test_debug_mode_keeps_asyncios_logged_path(caplog):
    async def main():
        loop = asyncio.get_running_loop()
        return await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)

    with caplog.at_level("DEBUG", logger="asyncio"):
        infos = cxxloop.run(main(), debug=True)
    assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert any("Get address info" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("sockaddr", "flags"),
    [(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
     (("::1", 443, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
     (("127.0.0.1", 80), socket.NI_NUMERICHOST),
     (("127.0.0.1",), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
     ("not a tuple", socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
     (("127.0.0.1", 80), "flags")],
)
def test_getnameinfo_matches_the_system(loop, sockaddr, flags):
    expected = outcome(lambda: socket.getnameinfo(sockaddr, flags))
    got = outcome(lambda: loop.run_until_complete(loop.getnameinfo(sockaddr, flags)))
    assert got == expected
