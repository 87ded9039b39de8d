"""What this machine lacks that some tests need: read from environment.toml.

[[leave_out]] entries name tests (a pytest -k expression) that cannot pass
here when a check fails, and that would disturb the tests after them (an
IPv6 test that fails to resolve leaves sockets open for a later test's gc to
report). They are left out on both loops, with the reason printed.
[[reason]] entries explain failures on both loops (see compare.reason_for).
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

FILE = Path(__file__).parent / "environment.toml"


def _localhost_ipv6() -> bool:
    try:
        return bool(socket.getaddrinfo("localhost", 0, socket.AF_INET6))
    except socket.gaierror:
        return False


CHECKS = {"localhost_ipv6": _localhost_ipv6}


def _load() -> dict:
    with open(FILE, "rb") as f:
        return tomllib.load(f)


def reasons() -> list[dict]:
    return _load().get("reason", [])


def left_out(suite: str) -> list[dict]:
    """The suite's [[leave_out]] entries whose check fails on this machine."""
    return [e for e in _load().get("leave_out", []) if e["suite"] == suite and not CHECKS[e["unless"]]()]
