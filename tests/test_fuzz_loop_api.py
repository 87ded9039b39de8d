"""Random sequences of loop API calls with random arguments.

Whatever hypothesis throws at the loop, it raises one of asyncio's exception
types or works; it never crashes the process, hangs, or leaks descriptors.
"""

import asyncio
import contextvars
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxxloop

ALLOWED = (TypeError, ValueError, RuntimeError, OSError)


async def _coroutine_function():
    pass


def _callables():
    return st.sampled_from([lambda *a: None, print, len, _coroutine_function, 42, None, "text", object()])


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(lambda x: x if not math.isfinite(x) else x % 0.01),
    st.integers(-5, 5).map(lambda x: x / 1000),
    st.sampled_from([None, "1", b"", [], -1e300]),
)
fds = st.one_of(st.integers(-3, 1 << 20), st.sampled_from(["pipe_r", "pipe_w", "closed", "x", None, 2.5]))
args = st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3)
contexts = st.sampled_from([None, "copy", 0, "str"])

operation = st.one_of(
    st.tuples(st.just("call_soon"), _callables(), args, contexts),
    st.tuples(st.just("call_soon_threadsafe"), _callables(), args, contexts),
    st.tuples(st.just("call_later"), numbers, _callables(), args),
    st.tuples(st.just("call_at"), numbers, _callables(), args),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("add_reader"), fds, _callables()),
    st.tuples(st.just("add_writer"), fds, _callables()),
    st.tuples(st.just("remove_reader"), fds),
    st.tuples(st.just("remove_writer"), fds),
    st.tuples(st.just("run_briefly"), st.integers(0, 2)),
    st.tuples(st.just("stop")),
    st.tuples(st.just("set_debug"), st.booleans()),
    st.tuples(st.just("create_task"), st.sampled_from(["coro", 1, None])),
    st.tuples(st.just("set_task_factory"), st.sampled_from([None, 1, "factory"])),
    st.tuples(st.just("close")),
)


class World:
    """The objects a sequence of operations acts on, cleaned up afterwards."""

    def __init__(self):
        self.loop = cxxloop.new_event_loop()
        self.loop.set_exception_handler(lambda lp, ctx: None)
        self.r, self.w = os.pipe()
        closed_r, closed_w = os.pipe()
        os.close(closed_r)
        os.close(closed_w)
        self.closed_fd = closed_r
        self.handles = []

    def fd(self, value):
        return {"pipe_r": self.r, "pipe_w": self.w, "closed": self.closed_fd}.get(value, value)

    def context(self, value):
        return contextvars.copy_context() if value == "copy" else value

    def apply(self, op):
        lp = self.loop
        name = op[0]
        if name in ("call_soon", "call_soon_threadsafe"):
            _, cb, a, ctx = op
            self.handles.append(getattr(lp, name)(cb, *a, context=self.context(ctx)))
        elif name in ("call_later", "call_at"):
            _, when, cb, a = op
            self.handles.append(getattr(lp, name)(when, cb, *a))
        elif name == "cancel":
            if self.handles:
                self.handles[op[1] % len(self.handles)].cancel()
        elif name in ("add_reader", "add_writer"):
            getattr(lp, name)(self.fd(op[1]), op[2])
        elif name in ("remove_reader", "remove_writer"):
            getattr(lp, name)(self.fd(op[1]))
        elif name == "run_briefly":
            for _ in range(op[1]):
                step = asyncio.sleep(0)
                try:
                    lp.run_until_complete(step)
                finally:
                    step.close()
        elif name == "stop":
            lp.stop()
        elif name == "set_debug":
            lp.set_debug(op[1])
        elif name == "create_task":
            coro = _coroutine_function() if op[1] == "coro" else op[1]
            try:
                lp.create_task(coro)
            finally:
                if op[1] == "coro":
                    coro.close()
        elif name == "set_task_factory":
            lp.set_task_factory(asyncio.Task if op[1] == "factory" else op[1])
        elif name == "close":
            lp.close()

    def finish(self):
        if not self.loop.is_closed():
            self.loop.remove_reader(self.r)
            self.loop.remove_writer(self.w)
            self.loop.close()
        os.close(self.r)
        os.close(self.w)


# Scheduling a coroutine *function* outside debug mode is allowed (as in
# asyncio); calling it then creates a coroutine nobody awaits.
@pytest.mark.filterwarnings("ignore:coroutine '_coroutine_function' was never awaited")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=25))
def test_random_call_sequences(ops):
    fds_before = len(os.listdir("/proc/self/fd"))
    world = World()
    try:
        for op in ops:
            try:
                world.apply(op)
            except ALLOWED:
                pass
    finally:
        world.finish()
    assert len(os.listdir("/proc/self/fd")) == fds_before
