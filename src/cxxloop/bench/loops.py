"""The loops compared, by name, and how to make one of each."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import platform

# The order loops are listed and plotted in; rounds rotate the run order.
LOOPS = ("asyncio", "uvloop", "cxxloop")
# Not a loop: the run name of a workload's loop-free reference (its ceiling).
CEILING = "ceiling"


def available(name: str) -> bool:
    if name == "asyncio":
        return True
    return importlib.util.find_spec(name) is not None


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        # The default loop on Linux, named explicitly so a policy installed
        # by the environment cannot change what "asyncio" means.
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "cxxloop":
        import cxxloop

        return cxxloop.new_event_loop()
    raise ValueError(f"unknown loop {name!r}; known: {', '.join(LOOPS)}")


def version(name: str) -> str:
    if name == "asyncio":
        return "Python " + platform.python_version()
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
