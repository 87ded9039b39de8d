"""cxxloop.watch(): a callback or task step that blocks the loop is reported
with its source, its line and the loop's thread's stack, once it returns
and, from the watchdog thread, while it still runs; quick callbacks and an
idle loop are not; the watch stops with the loop."""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import logging
import re
import subprocess
import sys
import threading
import time

import pytest

import cxxloop
from cxxloop import SlowCallback
from parity import run_until_stopped

THRESHOLD = 0.05
# How long the blocking callbacks block: long enough past the threshold
# that a watchdog thread scheduled late on a busy machine still sees them.
BLOCK = 0.3


class Reports:
    """An on_slow that keeps what it gets, the thread it got it on, and when."""

    def __init__(self) -> None:
        self.items: list[tuple[SlowCallback, int]] = []
        self.times: list[float] = []

    def __call__(self, report: SlowCallback) -> None:
        self.items.append((report, threading.get_ident()))
        self.times.append(time.monotonic())

    def finished(self) -> list[SlowCallback]:
        return [r for r, _ in self.items if not r.running]

    def running(self) -> list[tuple[SlowCallback, int]]:
        return [(r, t) for r, t in self.items if r.running]


def line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


started: list[float] = []


def blocking_callback() -> None:
    started.append(time.monotonic())
    time.sleep(BLOCK)


async def blocking_step() -> None:
    await asyncio.sleep(0)
    time.sleep(BLOCK)
    await asyncio.sleep(0)


def test_a_slow_callback_is_reported_with_its_source_and_line(loop):
    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports)
    loop.call_soon(blocking_callback)
    run_until_stopped(loop, 0.01)

    [report] = reports.finished()
    assert report.loop is loop and report.task is None and not report.running
    # Found slow only once seen running for the threshold, and measured
    # from when the watchdog first saw it: never longer than it ran.
    assert THRESHOLD <= report.duration <= reports.times[-1] - started[-1]
    # asyncio's description: the callback and where it is defined.
    assert "blocking_callback() at " + __file__ in report.source
    assert report.handle._callback is blocking_callback
    # Where the loop's thread was while it ran: on the sleep.
    assert report.stack[-1].name == "blocking_callback"
    assert report.stack[-1].lineno == line_of(blocking_callback, "time.sleep")
    assert loop.stats().slow_callbacks == 1


def test_a_blocked_loop_is_reported_while_it_is_blocked(loop):
    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports, stack_after=2)
    loop.call_soon(blocking_callback)
    run_until_stopped(loop, 0.01)

    [(report, thread)] = reports.running()
    assert thread not in (threading.get_ident(), None)  # the watchdog's thread
    assert 2 * THRESHOLD <= report.duration <= reports.times[0] - started[-1]
    assert report.stack[-1].lineno == line_of(blocking_callback, "time.sleep")
    # Reported while running first, then once it had returned.
    assert [r.running for r, _ in reports.items] == [True, False]


def test_a_slow_task_step_is_reported_with_its_coroutine_and_line(loop):
    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports, stack_after=None)
    task = loop.create_task(blocking_step())
    loop.run_until_complete(task)

    [report] = reports.items
    report = report[0]
    assert report.task is task and not report.running
    line = line_of(blocking_step, "time.sleep")
    # The task as asyncio describes it, with the line its coroutine ran at.
    assert f"coro=<blocking_step() running at {__file__}:{line}>" in report.source
    assert report.stack[-1].name == "blocking_step" and report.stack[-1].lineno == line


def test_quick_callbacks_and_an_idle_loop_are_not_reported(loop):
    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports)

    async def main():
        for _ in range(1000):
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)  # idle in the poller, not in a callback

    loop.run_until_complete(main())
    assert reports.items == []
    assert loop.stats().slow_callbacks == 0


def test_the_default_handler_logs_to_the_asyncio_logger(loop, caplog):
    cxxloop.watch(loop, THRESHOLD)
    loop.call_soon(blocking_callback)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_until_stopped(loop, 0.01)
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(m.startswith("Executing <Handle blocking_callback() at ") and " took " in m for m in messages)
    assert any(" has been running for " in m and "time.sleep(BLOCK)" in m for m in messages)


def test_a_failing_on_slow_is_logged_and_the_loop_goes_on(loop, caplog):
    def on_slow(report):
        raise RuntimeError("boom")

    cxxloop.watch(loop, THRESHOLD, on_slow, stack_after=None)
    loop.call_soon(blocking_callback)
    ran = []
    loop.call_soon(ran.append, 1)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_until_stopped(loop, 0.01)
    assert ran == [1]
    [record] = [r for r in caplog.records if "on_slow handler" in r.getMessage()]
    assert record.exc_info[0] is RuntimeError


def test_a_callback_holding_the_gil_is_reported_without_a_stack(loop):
    # A C function called through ctypes.PyDLL keeps the GIL, and as the
    # callback itself it returns to the loop without running any bytecode
    # that could let the watchdog in: the watchdog still finds it slow
    # without the GIL, but cannot sample it.
    usleep = ctypes.PyDLL(None).usleep
    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports)
    loop.call_soon(usleep, int(BLOCK * 1e6))
    run_until_stopped(loop, 0.01)
    [(report, _)] = reports.items
    assert report.stack is None and not report.running
    assert report.handle._callback is usleep
    assert THRESHOLD <= report.duration


def test_a_keyboard_interrupt_out_of_a_slow_callback_leaves_the_watch_working(loop):
    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports, stack_after=None)

    def slow_then_interrupt():
        time.sleep(2 * THRESHOLD)
        raise KeyboardInterrupt

    loop.call_soon(slow_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert reports.items == []  # the loop is unwinding: nothing is called
    assert loop.stats().slow_callbacks == 1
    loop.call_soon(blocking_callback)
    run_until_stopped(loop, 0.01)
    [report] = reports.finished()
    assert "blocking_callback" in report.source


def test_stop_ends_the_watch_and_its_thread(loop):
    reports = Reports()
    w = cxxloop.watch(loop, THRESHOLD, reports)
    thread = w._thread
    w.stop()
    assert not thread.is_alive()
    loop.call_soon(blocking_callback)
    run_until_stopped(loop, 0.01)
    assert reports.items == []
    assert loop.stats().slow_callbacks == 0


def test_close_stops_the_watch():
    loop = cxxloop.new_event_loop()
    w = cxxloop.watch(loop, THRESHOLD)
    loop.close()
    assert not w._thread.is_alive()


def test_a_watch_as_context_manager_and_a_later_watch_replaces_an_earlier(loop):
    first, second = Reports(), Reports()
    with cxxloop.watch(loop, THRESHOLD, first) as w1:
        w2 = cxxloop.watch(loop, THRESHOLD, second, stack_after=None)
        assert not w1._thread.is_alive()
        loop.call_soon(blocking_callback)
        run_until_stopped(loop, 0.01)
    w2.stop()
    assert first.items == []
    assert len(second.items) == 1


def test_new_event_loop_watches_with_a_keyword():
    reports = Reports()
    loop = cxxloop.new_event_loop(watch=THRESHOLD, on_slow=reports)
    try:
        loop.call_soon(blocking_callback)
        run_until_stopped(loop, 0.01)
    finally:
        loop.close()
    assert len(reports.finished()) == 1


def test_a_watched_loop_keeps_its_stats_on(loop):
    loop.set_stats(False)
    w = cxxloop.watch(loop, THRESHOLD)
    assert loop.stats().enabled
    with pytest.raises(RuntimeError):
        loop.set_stats(False)
    w.stop()
    loop.set_stats(False)


def test_bad_arguments():
    asyncio_loop = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError):
            cxxloop.watch(asyncio_loop)
    finally:
        asyncio_loop.close()
    loop = cxxloop.new_event_loop()
    try:
        with pytest.raises(ValueError):
            cxxloop.watch(loop, 0)
        with pytest.raises(ValueError):
            cxxloop.watch(loop, THRESHOLD, stack_after=0.5)
        with pytest.raises(TypeError):
            cxxloop.watch(loop, THRESHOLD, on_slow="log")
    finally:
        loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        cxxloop.watch(loop)


def test_a_callback_that_cannot_be_described_is_logged_and_the_watch_goes_on(loop, caplog):
    class Unprintable:
        def __call__(self):
            time.sleep(BLOCK)

        def __repr__(self):
            raise RuntimeError("no repr")

    reports = Reports()
    cxxloop.watch(loop, THRESHOLD, reports)
    loop.call_soon(Unprintable())
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_until_stopped(loop, 0.01)
    assert reports.items == []
    assert any("could not be described" in r.getMessage() for r in caplog.records)
    loop.call_soon(blocking_callback)
    run_until_stopped(loop, 0.01)
    assert [r.handle._callback for r in reports.finished()] == [blocking_callback]


def test_a_watched_loop_left_open_at_exit_ends_quietly():
    # The watchdog thread is stopped before the interpreter finalizes, and
    # the loop's close() from __del__ needs no module global.
    script = ("import asyncio, time, cxxloop\n"
              "loop = cxxloop.new_event_loop(watch=0.05)\n"
              "loop.call_soon(time.sleep, 0.2)\n"
              "loop.run_until_complete(asyncio.sleep(0.01))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    # The default handler's warnings, through logging's last resort; 3.13
    # shows a callback's arguments only in debug mode.
    assert re.search(r"Executing <Handle sleep\((0\.2)?\)> took ", proc.stderr), proc.stderr
