"""The benchmark's C programs, built with the package from csrc/bench/ and
installed here: loadgen (the echo load generator) and echo_server (the C
epoll echo and HTTP server that serves as the ceiling)."""

from __future__ import annotations

from pathlib import Path

PROGRAMS = ("loadgen", "echo_server")


def binary(name: str) -> Path:
    """The installed program `name` (loadgen, echo_server)."""
    return Path(__file__).with_name(name)


def missing() -> str | None:
    """Why the programs cannot run, or None when they can."""
    absent = [name for name in PROGRAMS if not binary(name).is_file()]
    if absent:
        return f"{', '.join(absent)} not installed: cxxloop was built with CXXLOOP_BUILD_BENCH=OFF"
    return None
