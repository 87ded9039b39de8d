"""add_signal_handler / remove_signal_handler for cxxloop.Loop.

As in asyncio's Unix loop: the C-level signal handler writes the signal
number to a socket (signal.set_wakeup_fd) that the loop watches, and the
Python callback runs in the loop as an ordinary callback. Signals without a
loop handler keep Python's handlers, so ^C still raises KeyboardInterrupt.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
from asyncio import coroutines, events
from asyncio.log import logger
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVarTuple

from . import _asyncio_internals as internals

if TYPE_CHECKING:
    # The asyncio loop the mixin is part of, for the type checker only:
    # at run time it is a plain class, and Loop's other bases give it that.
    from asyncio import BaseEventLoop as _LoopBase
else:
    _LoopBase = object

_Ts = TypeVarTuple("_Ts")


def _noop_handler(signum: int, frame: Any) -> None:
    """Installed for signals the loop handles; the wakeup fd does the work."""


class SignalHandlers(_LoopBase):
    """Mixin of Loop. Needs add_reader/remove_reader/call_soon from the loop."""

    def __init__(self) -> None:
        self._signal_handlers: dict[int, events.Handle] = {}
        self._signal_sockets: tuple[socket.socket, socket.socket] | None = None

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        if coroutines.iscoroutine(callback) or internals.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        reader, writer = self._ensure_signal_sockets()
        try:
            # Raises ValueError outside the main thread.
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None

        self._signal_handlers[sig] = events.Handle(callback, args, self, None)
        try:
            signal.signal(sig, _noop_handler)
            # Interrupted system calls are restarted, as without a handler.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._release_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        _check_signal(sig)
        if self._signal_handlers.pop(sig, None) is None:
            return False
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if not self._signal_handlers:
            self._release_wakeup_fd()
        return True

    def _ensure_signal_sockets(self) -> tuple[socket.socket, socket.socket]:
        if self._signal_sockets is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self.add_reader(reader.fileno(), self._read_signals, reader)
            self._signal_sockets = (reader, writer)
        return self._signal_sockets

    def _read_signals(self, reader: socket.socket) -> None:
        while True:
            try:
                data = reader.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                handle = self._signal_handlers.get(signum)
                if handle is None:
                    continue
                if handle._cancelled:
                    self.remove_signal_handler(signum)
                else:
                    # Run next iteration, in the handler's own context, with
                    # asyncio's error reporting (Handle._run).
                    self.call_soon(handle._run)

    def _release_wakeup_fd(self) -> None:
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _close_signal_handlers(self) -> None:
        try:
            if self._signal_handlers and not sys.is_finalizing():
                # Raises outside the main thread, as asyncio's does.
                for sig in list(self._signal_handlers):
                    self.remove_signal_handler(sig)
            elif self._signal_handlers:
                # Too late to touch the signal module; just forget them.
                self._signal_handlers.clear()
        finally:
            if self._signal_sockets is not None:
                reader, writer = self._signal_sockets
                self._signal_sockets = None
                self.remove_reader(reader.fileno())
                reader.close()
                writer.close()


def _check_signal(sig: object) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")
