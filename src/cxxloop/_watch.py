"""cxxloop.watch(): slow callbacks reported without debug mode.

The loop's thread reads no clock for it: it only bumps a sequence number
around each callback (csrc/py/loop_watch.hpp). A watchdog thread ticks
without the GIL, eight times per threshold, and a callback it keeps seeing
for the threshold is slow. The watchdog then takes the GIL, samples the
loop's thread's stack with sys._current_frames() and describes the callback
as asyncio's debug mode does; when the callback ends, the loop's thread
calls on_slow with that. A callback still running after `stack_after` times
the threshold is reported from the watchdog thread as well, with where the
loop's thread is now: a blocked loop shows where it is blocked before it
returns. The watchdog never runs anything on the loop's thread.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import threading
import traceback
import weakref
from asyncio.log import logger
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _asyncio_internals as internals
from . import _core


@dataclass(frozen=True)
class SlowCallback:
    """A callback that ran longer than the watch's threshold: on_slow's argument."""

    loop: Any
    # Seconds it ran (so far, if running). Measured from the watchdog tick
    # that first saw it, so at most a tick (threshold / 8) short; exact
    # while the loop times callbacks (loop.set_stats(True, timing=True)).
    duration: float
    # True when the watchdog reports it while it still runs; every slow
    # callback is also reported once it has returned (running False).
    running: bool
    # What asyncio's debug mode logs for it: for a task's step the task,
    # with its coroutine and the line it was running at, else the callback
    # (asyncio's _format_callback_source) and where it is defined.
    source: str
    # The asyncio Handle, or the transport whose I/O callbacks ran.
    handle: Any
    # The Task whose step it is, or None.
    task: asyncio.Task[Any] | None
    # The loop's thread's stack, outermost frame first, sampled while the
    # callback ran (at the threshold, or now if running); None if the
    # watchdog could not take the GIL while it ran (a C call holding it).
    stack: traceback.StackSummary | None

    def message(self) -> str:
        """What the default on_slow logs."""
        if self.running:
            text = f"Executing {self.source} has been running for {self.duration:.3f} seconds"
        else:
            text = f"Executing {self.source} took {self.duration:.3f} seconds"
        if self.stack is not None:
            where = "is at" if self.running else "was at"
            text += f"; the loop's thread {where}:\n" + "".join(self.stack.format()).rstrip("\n")
        return text


def log_slow_callback(report: SlowCallback) -> None:
    """The default on_slow: a warning on the asyncio logger, as debug mode
    logs a slow callback, with the stack where the watchdog saw it."""
    logger.warning("%s", report.message())


@dataclass(frozen=True)
class _Sample:
    seq: int
    handle: Any
    source: str
    task: asyncio.Task[Any] | None
    stack: traceback.StackSummary


_CANNOT_DESCRIBE = "cxxloop.watch: a slow callback could not be described"


def _describe(entry: Any) -> tuple[str, asyncio.Task[Any] | None]:
    if isinstance(entry, asyncio.Handle):
        return internals.format_handle(entry), internals.task_of_handle(entry)
    return f"I/O callbacks of {entry!r} for {entry.get_protocol()!r}", None


class Watch:
    """The watch of one loop, as cxxloop.watch() returns it.

    stop() ends it, and so does loop.close(); it is a context manager too.
    """

    def __init__(self, loop: Any, threshold: float, on_slow: Callable[[SlowCallback], object],
                 stack_after: float | None) -> None:
        self.threshold = threshold
        self.on_slow = on_slow
        self.stack_after = stack_after
        self._loop = weakref.ref(loop)
        report_after = threshold * stack_after if stack_after is not None else 0.0
        self._core = _core.Watchdog(loop, threshold, report_after)
        # Set by the watchdog thread, read by the loop's thread (both with the GIL).
        self._sample: _Sample | None = None
        self._thread = threading.Thread(target=self._watch, name="cxxloop-watchdog", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._core.close()
            raise

    def stop(self) -> None:
        """Stop watching, and wait for the watchdog thread to end (unless
        called from it, in on_slow)."""
        self._core.close()
        loop = self._loop()
        if loop is not None and _watches.get(loop) is self:
            del _watches[loop]
        if threading.current_thread() is not self._thread and self._thread.ident is not None:
            self._thread.join()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _watch(self) -> None:
        while (event := self._core.wait()) is not None:
            try:
                self._on_event(*event)
            except Exception:  # describing the callback failed (a repr, say): the watch goes on
                logger.exception(_CANNOT_DESCRIBE)

    def _on_event(self, kind: str, seq: int, elapsed: float) -> None:
        sample = self._take_sample(seq)
        if sample is None:
            return  # it returned before the watchdog had the GIL
        if kind == "slow":
            self._sample = sample  # for the report when it returns
        else:
            self._report(SlowCallback(self._loop(), elapsed, True, sample.source, sample.handle, sample.task,
                                      sample.stack))

    def _take_sample(self, seq: int) -> _Sample | None:
        current = self._core.current()
        if current is None or current[0] != seq:
            return None
        _, entry, thread_id = current
        frame = sys._current_frames().get(thread_id)
        if frame is None:
            return None
        try:
            # Lines are read later, when formatted: reading files here could
            # give the GIL back to the loop's thread halfway through.
            stack = traceback.StackSummary.extract(traceback.walk_stack(frame), lookup_lines=False)
        finally:
            del frame
        stack.reverse()
        source, task = _describe(entry)
        current = self._core.current()
        if current is None or current[0] != seq:
            return None  # it returned meanwhile: the stack may be the next callback's
        return _Sample(seq, entry, source, task, stack)

    def _finished(self, entry: Any, seq: int, duration: float) -> None:
        sample, self._sample = self._sample, None
        if sample is not None and sample.seq == seq:
            source, task, stack = sample.source, sample.task, sample.stack
        else:
            try:
                (source, task), stack = _describe(entry), None
            except Exception:
                logger.exception(_CANNOT_DESCRIBE)
                return
        self._report(SlowCallback(self._loop(), duration, False, source, entry, task, stack))

    def _report(self, report: SlowCallback) -> None:
        try:
            self.on_slow(report)
        except Exception:
            logger.exception("cxxloop.watch: on_slow handler %r failed", self.on_slow)


# Each watched loop's watch. Weak keys: a watch does not keep its loop alive.
_watches: weakref.WeakKeyDictionary[Any, Watch] = weakref.WeakKeyDictionary()


def watch(loop: Any, threshold: float = 0.05, on_slow: Callable[[SlowCallback], object] | None = None, *,
          stack_after: float | None = 2.0) -> Watch:
    """Report the callbacks and task steps of `loop` that run longer than
    `threshold` seconds, in production: no debug mode.

    on_slow(SlowCallback) is called on the loop's thread when such a
    callback returns; the default logs a warning on the asyncio logger, as
    debug mode does. If `stack_after` is not None, a callback still running
    after stack_after * threshold is also reported while it runs, from the
    watchdog thread, with the loop's thread's stack. Watching keeps the
    loop's stats on. A later watch of the same loop replaces this one.
    """
    if not isinstance(loop, _core.CoreLoop):
        raise TypeError(f"cxxloop.watch() needs a cxxloop loop, not {type(loop).__name__}")
    if stack_after is not None and not stack_after >= 1.0:
        raise ValueError("stack_after must be at least 1 (a multiple of the threshold), or None")
    if on_slow is not None and not callable(on_slow):
        raise TypeError(f"on_slow must be callable, not {type(on_slow).__name__}")
    previous = _watches.get(loop)
    if previous is not None:
        previous.stop()
    w = Watch(loop, threshold, on_slow or log_slow_callback, stack_after)
    _watches[loop] = w
    return w


@atexit.register
def _stop_all() -> None:
    # Before the interpreter finalizes, while the watchdog threads can still
    # take the GIL to end.
    for w in list(_watches.values()):
        w.stop()



def finished(loop: Any, entry: Any, seq: int, duration: float) -> None:
    """The end of a callback of `loop` that its watch found slow: the C++
    core's report, through Loop._watch_finished."""
    w = _watches.get(loop)
    if w is not None:
        w._finished(entry, seq, duration)


def stop_watching(loop: Any, watches: weakref.WeakKeyDictionary[Any, Watch] = _watches) -> None:
    """Stops the watch of `loop`, if any (Loop.close). `watches` is bound
    here, for a close() from __del__ while modules are torn down."""
    w = watches.get(loop)
    if w is not None:
        w.stop()
