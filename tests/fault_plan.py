"""Protocols whose callbacks follow a drawn plan of faults, for
test_fuzz_protocol_faults.py. Tests import it as a sibling module.

A plan names callbacks; when one runs for the nth time (or every time),
it carries out actions: raise an exception, call close(), abort(),
pause_reading(), resume_reading(), write_eof() or write() on its
transport, or drop objects whose __del__ re-enters the loop. Everything
a run observes goes into one Record, so that the runs on asyncio's loop
and on cxxloop can be compared.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter
from dataclasses import dataclass


class Custom(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt:
    asyncio's transports and handles report it like an Exception."""


RAISES = {"Exception": ZeroDivisionError, "KeyboardInterrupt": KeyboardInterrupt, "SystemExit": SystemExit,
          "Custom": Custom}
# Transport methods an action may call (on the transport of the callback's protocol).
TRANSPORT_ACTIONS = ("close", "abort", "pause_reading", "resume_reading", "write_eof")
# What a re-entrant __del__ does: schedule a callback, a timer, a task, write, close.
REENTRY = ("soon", "later", "task", "write", "close")
# How long a fault fires when it fires every time: enough to cover every
# chunk a run sends, few enough that a callback the loop retries forever
# (a BaseException before the read) does not interrupt it for ever.
MAX_FIRINGS = 5


def tagged(index: int, size: int) -> bytes:
    """Bytes that say which write they came from, wherever they are cut."""
    tag = b"<%d>" % index
    return (tag * (size // len(tag) + 1))[:size]


@dataclass
class Fault:
    callback: str
    nth: int  # 1, 2, ... or 0 for every call (up to MAX_FIRINGS)
    actions: tuple[str, ...]
    fired: int = 0

    def due(self, count: int) -> bool:
        if self.fired >= MAX_FIRINGS:
            return False
        return count == self.nth or self.nth == 0


class Record:
    """What one run observed. `writer` is the transport that write actions
    use; `transports` the transports by role ("main", "read", "write")."""

    def __init__(self, loop, faults, datagram=False):
        self.loop = loop
        self.faults = [Fault(*f) for f in faults]
        self.datagram = datagram
        self.events: list[tuple] = []
        self.calls: Counter = Counter()
        self.writes: list[dict] = []
        self.notes: list[str] = []
        self.transports: dict = {}
        self.writer = None
        self.absent: set = set()  # (role, method) pairs that are not to be called
        self.losing = frozenset({"abort"})  # transport methods after which what was queued may be lost
        self.aborted = False  # one of `losing` ran: what was queued may be lost
        self.peer_ended = False  # the peer has sent its EOF (or close_notify)
        self.received = bytearray()

    def note(self, what: str) -> None:
        self.notes.append(what)

    def _log_write(self, transport, source: str, size: int) -> dict:
        entry = {"index": len(self.writes), "source": source, "size": size, "result": None,
                 "after_peer_eof": self.peer_ended}
        try:
            entry["closing"] = transport.is_closing()
            entry["buffered"] = transport.get_write_buffer_size()
        except Exception as exc:  # a closed transport may refuse questions
            entry["closing"] = entry["buffered"] = type(exc).__name__
        self.writes.append(entry)
        return entry

    def write(self, source: str, size: int, data_type=bytes) -> None:
        """A write of `size` tagged bytes through `writer`, logged with the
        transport's state before it and what the call did."""
        transport = self.writer
        if transport is not None:
            entry = self._log_write(transport, source, size)
            data = data_type(tagged(entry["index"], size))
            if data_type is not bytes:
                data.record = self
            self._call([entry], transport.sendto if self.datagram else transport.write, data)

    def writelines(self, source: str, size: int) -> None:
        """writelines() of two tagged buffers, logged as two writes."""
        transport = self.writer
        # asyncio's writelines() after close() raises TypeError (it calls the
        # write callback close() cleared): not a case to compare.
        if transport is not None and not transport.is_closing():
            entries = [self._log_write(transport, source, size) for _ in range(2)]
            self._call(entries, getattr(transport, "writelines", None),
                       [tagged(e["index"], size) for e in entries])

    @staticmethod
    def _call(entries, method, data) -> None:
        try:
            if method is None:
                raise AttributeError("writelines")
            method(data)
            result = "ok"
        except BaseException as exc:
            result = type(exc).__name__
            if not isinstance(exc, Exception):
                raise
        finally:
            for e in entries:
                e["result"] = result

    def callback(self, protocol, name: str, detail=None) -> None:
        """Logs the callback, then carries out the faults due on this call."""
        self.events.append((protocol.role, name, detail))
        self.calls[name] += 1
        for fault in self.faults:
            if fault.callback == name and fault.due(self.calls[name]):
                fault.fired += 1
                self.act(protocol, name, fault.actions)

    def act(self, protocol, name: str, actions) -> None:
        loop = self.loop
        for action in actions:
            kind, _, arg = action.partition(":")
            if kind == "raise":
                raise RAISES[arg](f"{name} {arg}")
            if kind in TRANSPORT_ACTIONS:
                if (protocol.role, kind) not in self.absent:
                    self.aborted |= kind in self.losing
                    try:
                        getattr(protocol.transport, kind)()
                    except Exception as exc:
                        self.notes.append(f"{kind} {type(exc).__name__}")
            elif kind == "write":
                self.write(name, int(arg))
            elif kind == "drop":  # released when this callback returns
                Reentrant(self, arg, name)
            elif kind == "hand_soon":  # released by the loop after the callback runs
                loop.call_soon(_nothing, Reentrant(self, arg, name))
            elif kind == "hand_cancelled":  # released when the loop lets the timer go
                loop.call_later(3600, _nothing, Reentrant(self, arg, name)).cancel()
            elif kind == "hand_context":  # released with the context of a handle, after it runs
                # No local holds it: an exception raised next keeps this
                # frame alive, in asyncio until the GC breaks Handle._run's
                # cycle through the exception it reported.
                loop.call_soon(_nothing, context=_holding(Reentrant(self, arg, name)))
            elif kind == "hand_write":  # released once the transport has sent it
                self.write(f"{name} (bytes with __del__)", 2000, DelBytes)
            else:
                raise AssertionError(action)


def _nothing(*args):
    pass


_held = contextvars.ContextVar("fault_plan_held")


def _holding(value) -> contextvars.Context:
    context = contextvars.Context()
    context.run(_held.set, value)
    return context


async def _note(record, what):
    record.note(what)


class Reentrant:
    """Re-enters the loop from __del__ as `kind` says; `origin` says
    what made it. A __del__ must not raise, so what it ran into is noted
    instead."""

    def __init__(self, record: Record, kind: str, origin: str):
        self.record = record
        self.kind = kind
        self.origin = origin

    def __del__(self):
        reenter(self.record, self.kind, self.origin)


class DelBytes(bytes):
    """Written data that, once the transport lets it go, schedules a
    callback (the loop must take it wherever the release happens)."""

    def __del__(self):
        reenter(self.record, "soon", "written bytes")


def reenter(record: Record, kind: str, origin: str) -> None:
    loop = record.loop
    try:
        if kind == "soon":
            loop.call_soon(record.note, f"{origin}: soon ran")
        elif kind == "later":
            loop.call_later(0, record.note, f"{origin}: later ran")
        elif kind == "task":
            loop.create_task(_note(record, f"{origin}: task ran"))
        elif kind == "write":
            record.write(f"{origin}: __del__", 32)
        elif kind == "close" and record.writer is not None:
            record.writer.close()
        record.notes.append(f"{origin}: {kind} from __del__")
    except BaseException as exc:
        record.notes.append(f"{origin}: {kind} from __del__: {type(exc).__name__}")


class PlannedProtocol(asyncio.Protocol):
    """A stream, pipe or datagram protocol: every callback is logged and
    follows the plan. `keepsake`, if given, is released with the protocol."""

    def __init__(self, record: Record, role: str, keepsake=None):
        self.record = record
        self.role = role
        self.transport = None
        self.keepsake = keepsake

    def connection_made(self, transport):
        self.transport = transport
        self.record.transports.setdefault(self.role, transport)
        if self.role in ("main", "write"):
            self.record.writer = transport
        self.record.callback(self, "connection_made")

    def data_received(self, data):
        self.record.received += data
        self.record.callback(self, "data_received", len(data))

    def eof_received(self):
        self.record.callback(self, "eof_received")

    def pause_writing(self):
        self.record.callback(self, "pause_writing")

    def resume_writing(self):
        self.record.callback(self, "resume_writing")

    def connection_lost(self, exc):
        self.record.callback(self, "connection_lost", type(exc).__name__ if exc else None)

    def datagram_received(self, data, addr):
        self.record.received += data
        self.record.callback(self, "datagram_received", len(data))

    def error_received(self, exc):
        self.record.callback(self, "error_received", type(exc).__name__)


class PlannedSubprocessProtocol(PlannedProtocol, asyncio.SubprocessProtocol):
    """A subprocess protocol: writes go to the child's stdin, and what
    comes back on its stdout is what was received."""

    def connection_made(self, transport):
        self.transport = transport
        self.record.transports.setdefault(self.role, transport)
        self.record.writer = transport.get_pipe_transport(0)
        self.record.callback(self, "connection_made")

    def pipe_data_received(self, fd, data):
        self.record.received += data
        self.record.callback(self, "pipe_data_received", len(data))

    def pipe_connection_lost(self, fd, exc):
        self.record.callback(self, "pipe_connection_lost", (fd, type(exc).__name__ if exc else None))

    def process_exited(self):
        self.record.callback(self, "process_exited")


class BufferedPlannedProtocol(asyncio.BufferedProtocol, PlannedProtocol):
    BUFFER_SIZE = 65536

    def get_buffer(self, sizehint):
        self.buffer = bytearray(self.BUFFER_SIZE)
        self.record.callback(self, "get_buffer", sizehint)
        return self.buffer

    def buffer_updated(self, nbytes):
        self.record.received += self.buffer[:nbytes]
        self.record.callback(self, "buffer_updated", nbytes)
