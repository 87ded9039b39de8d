"""gunicorn workers that run their application on cxxloop.

    gunicorn app:make_app -k cxxloop.workers.AiohttpWorker   # or -k egg:cxxloop#aiohttp
    gunicorn app:asgi_app -k cxxloop.workers.UvicornWorker   # or -k egg:cxxloop#uvicorn

Each is the framework's own gunicorn worker with cxxloop as its event loop,
so graceful shutdown (SIGTERM, SIGQUIT, SIGINT), reload (SIGHUP to the
arbiter) and the rest of the worker protocol are the framework's.

The classes are built on first access: importing cxxloop.workers needs
neither aiohttp nor uvicorn, only the worker you use does.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Any

__all__ = ["AiohttpWorker", "UvicornWorker"]

if TYPE_CHECKING:
    # What the module's __getattr__ builds, declared for linters and type checkers.
    AiohttpWorker: type
    UvicornWorker: type


def _aiohttp_worker() -> type:
    from aiohttp.worker import GunicornWebWorker

    from . import new_event_loop

    class AiohttpWorker(GunicornWebWorker):
        """aiohttp's GunicornWebWorker on a cxxloop loop."""

        def init_process(self) -> None:
            # GunicornWebWorker.init_process makes its loop with
            # asyncio.new_event_loop(), which asks the event loop policy
            # (deprecated from 3.14), then runs gunicorn's init_process;
            # this makes the loop with cxxloop instead.
            self.loop = new_event_loop()
            asyncio.set_event_loop(self.loop)
            super(GunicornWebWorker, self).init_process()

    return AiohttpWorker


def _uvicorn_worker() -> type:
    # The uvicorn-worker package is where uvicorn's gunicorn worker lives now
    # (uvicorn.workers is deprecated).
    from uvicorn_worker import UvicornWorker as Base

    class UvicornWorker(Base):
        """uvicorn's gunicorn worker with cxxloop as the loop factory."""

        # uvicorn resolves a "module:attr" loop as a loop factory.
        CONFIG_KWARGS = {**Base.CONFIG_KWARGS, "loop": "cxxloop:new_event_loop"}

        def _install_sigquit_handler(self) -> None:
            # The base maps SIGQUIT to handle_exit, which only clears
            # self.alive, a flag uvicorn's server never reads: the worker
            # served on until the arbiter's graceful timeout killed it.
            # SIGQUIT is gunicorn's quick shutdown, which handle_quit is.
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGQUIT, self.handle_quit, signal.SIGQUIT, None
            )

    return UvicornWorker


_FACTORIES = {"AiohttpWorker": _aiohttp_worker, "UvicornWorker": _uvicorn_worker}
_built: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    if name not in _FACTORIES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        cls = _FACTORIES[name]()
        cls.__module__ = __name__
        cls.__qualname__ = name
        _built[name] = cls
    return _built[name]
