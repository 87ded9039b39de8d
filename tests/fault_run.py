"""Runs one fault plan on one loop and returns what it observed, for
test_fuzz_protocol_faults.py. Tests import it as a sibling module.

The run is driven from outside the loop: the loop runs in 1 ms slices
between the test's own steps, and a KeyboardInterrupt or SystemExit out
of a slice (or out of a transport call the test makes) is recorded and
the loop run again, as an application that catches ^C would. Every wait
has a time limit, so a hang shows as a recorded time-out, not a stuck test.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import hashlib
import socket
import struct
import sys
import termios
import time
import warnings

from fault_plan import Record, tagged
from fault_worlds import WORLDS, in_context
from parity import open_fds

SLICE = 0.001
SETTLE_LIMIT = 0.5
REPORTS_KEPT = 20


def _resolve(future):
    if not future.done():
        future.set_result(None)


class Run:
    def __init__(self, factory, plan, tls_contexts):
        self.plan = plan
        self.loop = factory()
        self.record = Record(self.loop, plan["faults"], datagram=plan["kind"] == "datagram")
        self.reports: list[tuple] = []
        self.report_count = 0
        self.interrupts: list[tuple] = []
        self.timeouts: list[str] = []
        self.peer_sent = bytearray()  # what the peer sent, in order
        self.phase = "start"
        self.loop.set_exception_handler(self._report)
        self.world = WORLDS[plan["kind"]](self.loop, self.record, tls_contexts, plan["buffered"], plan["keepsake"])
        self.record.absent = self.world.absent
        self.record.losing = self.world.losing

    def _report(self, loop, context):
        self.report_count += 1
        if len(self.reports) < REPORTS_KEPT:
            words = str(context.get("message")).split(" ")[:2]
            self.reports.append((" ".join(words), type(context.get("exception")).__name__))

    # Running the loop

    def guarded(self, call, *args):
        try:
            return call(*args)
        except (KeyboardInterrupt, SystemExit) as exc:
            self.interrupts.append((self.phase, type(exc).__name__))
        except RuntimeError as exc:
            # An interrupt that came after a slice's future was done leaves
            # run_until_complete's stop callback queued: it ends the next
            # slice early, on both loops. Where it falls is timing.
            if str(exc) != "Event loop stopped before Future completed.":
                self.record.notes.append(f"{self.phase}: RuntimeError")
        except Exception as exc:
            self.record.notes.append(f"{self.phase}: {type(exc).__name__}")
        return None

    def slice(self):
        future = self.loop.create_future()
        handle = self.loop.call_later(SLICE, _resolve, future)
        try:
            self.guarded(self.loop.run_until_complete, future)
        finally:
            handle.cancel()
        if self.world.peer is not None:
            self.world.peer.pump()

    def fingerprint(self):
        record, peer = self.record, self.world.peer
        writer = record.writer
        try:
            buffered = writer.get_write_buffer_size() if writer is not None else 0
        except Exception:
            buffered = None
        return (len(record.events), len(record.notes), len(record.writes), len(record.received),
                len(self.interrupts), self.report_count, buffered,
                None if peer is None else (len(peer.received), peer.pending(), peer.eof_seen))

    def in_flight(self) -> int:
        """What the writer holds or its socket has not sent yet, while the
        peer reads: loopback TCP may wait 40 ms to reopen a full window."""
        peer, writer = self.world.peer, self.record.writer
        if peer is None or writer is None or not peer.reading:
            return 0
        try:
            held = writer.get_write_buffer_size()
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.fileno() >= 0:
                held += struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, bytes(4)))[0]
        except Exception:  # closed
            return 0
        return held

    def settle(self, until=None, limit=SETTLE_LIMIT, what=None):
        """Runs the loop until `until()` holds, or (without one) until two
        slices in a row change nothing and nothing is in flight; a
        time-out is recorded as `what`."""
        deadline = time.monotonic() + limit
        last, quiet = None, 0
        while time.monotonic() < deadline:
            self.slice()
            if until is not None:
                if until():
                    return True
                continue
            now = self.fingerprint()
            quiet = quiet + 1 if now == last else 0
            last = now
            if quiet >= 2 and not self.in_flight():
                return True
        if what is not None:
            self.timeouts.append(what)
        return False

    # The phases

    def start(self):
        context = in_context(self.plan["context_keepsake"], self.record)
        task = self.loop.create_task(self.world.start(), context=context)
        del context
        if not self.settle(until=task.done, limit=3, what="set-up"):
            task.cancel()
            self.settle(until=task.done, limit=1)
        if task.done() and not task.cancelled() and task.exception() is not None:
            self.record.notes.append(f"set-up: {type(task.exception()).__name__}")
        del task  # its result holds the protocol, whose release the plan may watch
        self.world.after_start()
        self.settle(until=self.world.connected, limit=2, what="connection_made")
        self.settle()

    def step(self, index, op):
        record, peer = self.record, self.world.peer
        name = op[0]
        if name == "peer_send":
            data = b"[p%d]" % index + b"." * op[1]
            if not record.peer_ended:  # after its EOF, the peer sends nothing
                self.peer_sent += data
            peer.send(data)
        elif name == "write":
            record.write(f"step {index}", op[1])
        elif name == "writelines":
            record.writelines(f"step {index}", op[1])
        elif name == "peer_pause":
            peer.reading = False
        elif name == "peer_resume":
            peer.reading = True
        elif name == "peer_eof":
            record.peer_ended = True
            peer.eof()
        elif name == "call":
            role = self.world.roles[op[2] % len(self.world.roles)]
            transport = record.transports.get(role)
            if transport is not None and (role, op[1]) not in record.absent:
                record.aborted |= op[1] in record.losing
                getattr(transport, op[1])()
        elif name == "gc":
            gc.collect()

    def lost(self, role):
        return any(event[:2] == (role, "connection_lost") for event in self.record.events)

    def all_lost(self):
        return all(self.lost(role) for role in self.record.transports)

    def finish(self):
        """Reads everything, closes what is open and waits for
        connection_lost; aborts what close() did not end."""
        peer = self.world.peer
        if peer is not None:
            peer.reading = True
        self.settle()
        # Reading first: a TLS close() waits for the peer's close_notify,
        # which a paused transport never reads (until ssl_shutdown_timeout).
        for role, transport in self.record.transports.items():
            if not self.lost(role) and (role, "resume_reading") not in self.record.absent and role != "write":
                self.guarded(transport.resume_reading)
        self.settle()
        self.guarded(self.world.wind_down, self.settle)
        for role, transport in self.record.transports.items():
            if not self.lost(role):
                self.guarded(transport.close)
        if not self.settle(until=self.all_lost, limit=3, what="connection_lost after close()"):
            self.record.aborted = True
            for role, transport in self.record.transports.items():
                if not self.lost(role):
                    self.guarded(transport.abort)
            self.settle(until=self.all_lost, limit=1, what="connection_lost after abort()")
        if peer is not None and not self.record.datagram:
            self.settle(until=lambda: peer.eof_seen, limit=1, what="EOF at the peer")
        self.settle()

    def usable(self):
        """A fresh call_soon runs, and a new connection carries data both ways."""
        ran = []
        self.loop.call_soon(ran.append, True)
        self.settle(until=lambda: ran, limit=1)
        a, b = socket.socketpair()
        with a, b:
            task = self.loop.create_task(_echo_check(a, b))
            self.settle(until=task.done, limit=2)
            works = task.done() and not task.cancelled() and task.exception() is None and task.result()
            if not task.done():
                task.cancel()
                self.settle(until=task.done, limit=1)
        return bool(ran) and works

    def release(self):
        """Lets the transports go while the loop still runs, so that what
        their release sets off (a __del__ that schedules a callback) runs."""
        self.world.release()
        self.record.transports.clear()
        self.record.writer = None
        gc.collect()
        self.settle()

    def run(self, steps):
        gc.collect()
        fds = open_fds()
        unraisable = []
        hook = sys.unraisablehook
        sys.unraisablehook = lambda u: unraisable.append(f"{type(u.exc_value).__name__}: {u.exc_value}")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    self.start()
                    if self.world.connected():
                        for index, op in enumerate(steps):
                            self.phase = f"step {index}"
                            self.guarded(self.step, index, op)
                            self.settle()
                    self.phase = "finish"
                    self.finish()
                    self.phase = "usable"
                    usable = self.usable()
                    self.phase = "release"
                    self.release()
                finally:
                    self.phase = "teardown"
                    self.world.close()
                    self.guarded(self.loop.close)
                    self.record.transports.clear()
                    self.record.writer = None
                    gc.collect()
                unclosed = sorted({str(w.message).split(" ")[1] for w in caught if w.category is ResourceWarning})
        finally:
            sys.unraisablehook = hook
        return self.outcome(usable, len(open_fds() - fds), unclosed, unraisable)

    def outcome(self, usable, leaked_fds, unclosed, unraisable):
        record, peer = self.record, self.world.peer
        if record.datagram:
            arrived = [bytes(d) for d in (peer.datagrams if peer else [])]
        else:
            arrived = bytes(peer.received) if peer else b""
        statuses, unexplained = delivery(record.writes, arrived, record.datagram)
        return {
            "events": record.events,
            "reports": self.reports,
            "interrupts": self.interrupts,
            "timeouts": self.timeouts,
            "writes": [(w["source"], w["size"], w["result"], w["closing"], w["buffered"] != 0, status,
                        w["after_peer_eof"]) for w, status in zip(record.writes, statuses, strict=True)],
            "unexplained_bytes": unexplained,
            # Whether queued data may be lost: an abort() (or what else the
            # world's `losing` names), or a UDP peer gone.
            "may_lose": record.aborted or (record.datagram and peer is not None and peer.gone),
            "datagram": record.datagram,
            "received": hashlib.sha1(bytes(record.received)).hexdigest()[:12],
            # What the protocol received of what the peer sent: all of it,
            # the start of it (the transport stopped reading), or not even that.
            "peer_data": reception(bytes(record.received), bytes(self.peer_sent)),
            "notes": sorted(record.notes),
            "usable": usable,
            "leaked_fds": leaked_fds,
            "unclosed": unclosed,
            "unraisable": unraisable,
        }


async def _echo_check(a, b):
    loop = asyncio.get_running_loop()
    got = loop.create_future()

    class Receiver(asyncio.Protocol):
        def data_received(self, data):
            if not got.done():
                got.set_result(data)

    a.setblocking(False)
    transport, _ = await loop.create_connection(Receiver, sock=a)
    b.sendall(b"ping")
    data = await got
    transport.write(b"pong")
    await asyncio.sleep(0)
    b.settimeout(1)
    reply = b.recv(4)  # sent at once: the socket was empty
    transport.close()
    await asyncio.sleep(0)
    return data == b"ping" and reply == b"pong"


def reception(received: bytes, sent: bytes) -> str:
    if received == sent:
        return "all"
    return "start" if sent.startswith(received) else "changed"


def delivery(writes, arrived, datagram):
    """Matches what arrived against the write log, in order: each write
    'arrived', was 'cut' (the tail of the stream is a prefix of it) or is
    'missing'. Also says whether anything arrived that no write explains."""
    statuses = []
    position = 0
    for entry in writes:
        data = tagged(entry["index"], entry["size"])
        if datagram:
            if position < len(arrived) and arrived[position] == data:
                position += 1
                statuses.append("arrived")
            else:
                statuses.append("missing")
        elif arrived.startswith(data, position):
            position += len(data)
            statuses.append("arrived")
        elif position < len(arrived) and data.startswith(arrived[position:]):
            position = len(arrived)
            statuses.append("cut")
        else:
            statuses.append("missing")
    return statuses, position != len(arrived)
