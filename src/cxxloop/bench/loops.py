"""The loops compared, by name, and how to make one of each.

Besides asyncio and cxxloop, these are what a user would pick instead:
uvloop, rloop, rsloop and zuvloop replace the loop; aiofastnet keeps a loop
and replaces its transports (TCP, TLS, UDP, pipes, sock_*), so it is
measured on three loops, and only on the workloads that use transports.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import platform
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Loop:
    name: str
    # The packages that must be installed for it to run.
    packages: tuple[str, ...]
    make: Callable[[], asyncio.AbstractEventLoop]
    # A loop that differs from its base only in its transports (aiofastnet):
    # any other workload would measure the base loop again.
    transports_only: bool = False
    # Said when it is not installed, if it cannot be everywhere.
    note: str = ""


def _selector_loop() -> asyncio.AbstractEventLoop:
    # The default loop on Linux, named explicitly so a policy installed by
    # the environment cannot change what "asyncio" means.
    return asyncio.SelectorEventLoop()


def _new_event_loop(package: str) -> Callable[[], asyncio.AbstractEventLoop]:
    return lambda: importlib.import_module(package).new_event_loop()


def _aiofastnet_on(base: Loop) -> Loop:
    def make() -> asyncio.AbstractEventLoop:
        import aiofastnet

        return aiofastnet.loop_factory(base.make)()

    return Loop(f"aiofastnet+{base.name}", ("aiofastnet", *base.packages), make, transports_only=True)


_ASYNCIO = Loop("asyncio", (), _selector_loop)
_UVLOOP = Loop("uvloop", ("uvloop",), _new_event_loop("uvloop"))
_CXXLOOP = Loop("cxxloop", ("cxxloop",), _new_event_loop("cxxloop"))
_REGISTRY = {loop.name: loop for loop in (
    _ASYNCIO,
    _UVLOOP,
    _CXXLOOP,
    Loop("rloop", ("rloop",), _new_event_loop("rloop")),
    Loop("rsloop", ("rsloop",), _new_event_loop("rsloop")),
    Loop("zuvloop", ("zuvloop",), _new_event_loop("zuvloop"), note="it needs Python >= 3.14"),
    *(_aiofastnet_on(base) for base in (_ASYNCIO, _UVLOOP, _CXXLOOP)),
)}

# The order loops are listed and plotted in; rounds rotate the run order.
LOOPS = tuple(_REGISTRY)
# Not a loop: the run name of a workload's loop-free reference (its ceiling).
CEILING = "ceiling"
# The attribute aiofastnet.patch_loop sets on the loops it patched.
_AIOFASTNET_MARK = "_aiofastnet_patched_methods"


def get(name: str) -> Loop:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loop {name!r}; known: {', '.join(LOOPS)}") from None


def available(name: str) -> bool:
    return all(importlib.util.find_spec(package) is not None for package in get(name).packages)


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    return get(name).make()


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """The class of `loop`, and whether aiofastnet patched it: what the
    results record to show which loop really ran."""
    name = f"{type(loop).__module__}.{type(loop).__qualname__}"
    return f"{name} patched by aiofastnet" if hasattr(loop, _AIOFASTNET_MARK) else name


def version(name: str) -> str:
    parts = []
    for package in get(name).packages:
        try:
            parts.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    if not get(name).packages or name.endswith("+asyncio"):
        parts.append("Python " + platform.python_version())
    return ", ".join(parts)
