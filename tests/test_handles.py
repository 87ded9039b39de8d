"""Handle and TimerHandle objects returned by the scheduling methods."""

import asyncio
import contextvars
import gc
import subprocess
import sys
import textwrap
import warnings
import weakref

import pytest

import cxxloop
from parity import open_fds


def test_isinstance_and_type_names(loop):
    h = loop.call_soon(print)
    t = loop.call_later(10, print)
    assert isinstance(h, asyncio.Handle) and not isinstance(h, asyncio.TimerHandle)
    assert isinstance(t, asyncio.TimerHandle) and isinstance(t, asyncio.Handle)
    assert type(h).__name__ == "Handle" and type(t).__name__ == "TimerHandle"
    h.cancel()
    t.cancel()


def test_cancel_and_cancelled(loop):
    fired = []
    h = loop.call_soon(fired.append, 1)
    assert not h.cancelled()
    h.cancel()
    h.cancel()
    assert h.cancelled()
    loop.run_until_complete(asyncio.sleep(0))
    assert fired == []
    # Cancelling drops the callback and its arguments, as asyncio does.
    assert h._callback is None and h._args is None


def test_cancel_from_inside_the_callback(loop):
    box = {}

    def cb():
        box["h"].cancel()
        box["ran"] = True

    box["h"] = loop.call_soon(cb)
    loop.run_until_complete(asyncio.sleep(0))
    assert box["ran"] and box["h"].cancelled()


def test_timer_when_and_ordering(loop):
    a = loop.call_at(100.0, print)
    b = loop.call_at(200.0, print)
    assert a.when() == 100.0 and b.when() == 200.0
    assert a < b and b > a and a != b
    assert a._scheduled
    a.cancel()
    b.cancel()


def test_get_context(loop):
    ctx = contextvars.copy_context()
    h = loop.call_soon(print, context=ctx)
    assert h.get_context() is ctx
    h.cancel()


def test_repr_matches_asyncio_shape(loop):
    def callback(x):
        pass

    # Compared with asyncio's own handles for the same callback: the format
    # differs between Python versions (3.13 hides arguments unless debug).
    h = loop.call_soon(callback, 1)
    t = loop.call_at(123.5, callback, 2)
    assert repr(h) == repr(asyncio.Handle(callback, (1,), loop))
    assert repr(t) == repr(asyncio.TimerHandle(123.5, callback, (2,), loop))
    assert repr(t).startswith("<TimerHandle when=123.5 ")
    h.cancel()
    t.cancel()
    assert repr(h).startswith("<Handle cancelled")


def test_repr_is_frozen_on_cancel_in_debug(loop):
    loop.set_debug(True)

    def named_callback():
        pass

    h = loop.call_soon(named_callback)
    h.cancel()
    assert "named_callback" in repr(h)
    assert h._source_traceback


def test_handles_support_weakrefs_and_are_collected(loop):
    h = loop.call_soon(print)
    ref = weakref.ref(h)
    loop.run_until_complete(asyncio.sleep(0))
    del h
    gc.collect()
    assert ref() is None


def test_reference_cycle_through_handle_is_collected(loop):
    class Holder:
        pass

    # The handle holds the holder as its argument; the holder holds the handle.
    holder = Holder()
    holder.handle = loop.call_later(1000, id, holder)
    ref = weakref.ref(holder)
    holder.handle.cancel()
    del holder
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert ref() is None


def test_a_queued_call_soon_handle_is_not_tracked_by_the_gc(loop):
    # Keeping queued call_soon handles out of the GC is what makes a
    # gather of 100,000 tasks cheaper to collect (soon_handle_new).
    h = loop.call_soon(print)
    assert not gc.is_tracked(h)
    assert gc.is_tracked(loop.call_later(1000, print))
    h.cancel()


def test_a_handle_still_held_after_it_ran_is_tracked_again(loop):
    class Holder:
        def callback(self):
            pass

    holder = Holder()
    holder.handle = loop.call_soon(holder.callback)  # a cycle through the handle
    ref = weakref.ref(holder)
    loop.run_until_complete(asyncio.sleep(0))
    assert gc.is_tracked(holder.handle)
    del holder
    gc.collect()
    assert ref() is None


def _assert_abandoned_loop_is_freed(abandon):
    """abandon() makes a loop, leaves it in a reference cycle and returns a
    weak reference to it: one full collection must free the loop, and with
    it its epoll fd and eventfd."""
    before = open_fds()
    with warnings.catch_warnings():
        # The unclosed loop and never-started coroutines warn, as on asyncio.
        warnings.simplefilter("ignore")
        ref = abandon()
        gc.collect()
    assert ref() is None
    assert open_fds() == before


def test_an_abandoned_loop_with_queued_task_steps_is_collected():
    # The queue holds the only reference to each step's handle, and the
    # handle leads back to the loop through the task: the loop's traverse
    # must report what the untracked handles hold, or this cycle (and the
    # loop's epoll and eventfd) would never be freed.
    def abandon():
        loop = cxxloop.new_event_loop()
        for _ in range(3):
            loop.create_task(asyncio.sleep(0))
        return weakref.ref(loop)

    _assert_abandoned_loop_is_freed(abandon)


def test_an_abandoned_loop_is_collected_even_if_a_queued_handle_is_held_elsewhere():
    # A held handle's contents are not the loop's alone, so the loop's
    # traverse skips them; a full collection tracks such handles first.
    class Holder:
        pass

    def abandon():
        loop = cxxloop.new_event_loop()
        fut = loop.create_future()
        holder = Holder()
        holder.handle = loop.call_soon(fut.set_result, holder)
        fut.holder = holder  # holder -> handle -> fut -> holder, and fut -> loop
        return weakref.ref(loop)

    _assert_abandoned_loop_is_freed(abandon)


def _tracked_task_steps():
    # CPython's Task schedules each step with a TaskStepMethWrapper, a type
    # it does not export.
    return sum(type(o).__name__ == "TaskStepMethWrapper" for o in gc.get_objects())


class _StepSpy(cxxloop.Loop):
    """Keeps every callback scheduled with call_soon: the way to get hold
    of a Task's step from Python."""

    def __init__(self):
        super().__init__()
        self.callbacks = []

    def call_soon(self, callback, *args, context=None):
        self.callbacks.append(callback)
        return super().call_soon(callback, *args, context=context)


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, cxxloop.new_event_loop], ids=["asyncio", "cxxloop"])
def test_a_queued_task_step_is_not_tracked_by_the_gc(new_loop):
    lp = new_loop()
    try:
        before = _tracked_task_steps()
        tasks = [lp.create_task(asyncio.sleep(0)) for _ in range(3)]
        queued = _tracked_task_steps() - before
        lp.run_until_complete(asyncio.gather(*tasks))
    finally:
        lp.close()
    # asyncio's loop is here to show the steps exist and are counted.
    assert queued == (0 if new_loop is cxxloop.new_event_loop else 3)


def test_task_steps_are_recognised_after_other_callbacks_came_first():
    # In a fresh process, the loop meets other callback types before the
    # first step: remembering those must not hide the step's type.
    script = textwrap.dedent("""
        import asyncio, gc
        import cxxloop

        def tracked_steps():
            return sum(type(o).__name__ == "TaskStepMethWrapper" for o in gc.get_objects())

        loop = cxxloop.new_event_loop()
        for callback in (len, print, len):
            loop.call_soon(callback, "")
        loop.run_until_complete(asyncio.sleep(0))
        before = tracked_steps()
        tasks = [loop.create_task(asyncio.sleep(0)) for _ in range(3)]
        print(tracked_steps() - before)
        loop.run_until_complete(asyncio.gather(*tasks))
        loop.close()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "0"


def test_a_task_step_still_held_after_it_ran_is_tracked_again():
    lp = _StepSpy()
    try:
        lp.run_until_complete(asyncio.sleep(0))
        steps = [cb for cb in lp.callbacks if type(cb).__name__ == "TaskStepMethWrapper"]
        assert steps and all(gc.is_tracked(step) for step in steps)
    finally:
        lp.close()


def test_an_abandoned_loop_is_collected_even_if_a_queued_task_step_is_held_elsewhere():
    # loop -> callbacks list -> step -> task -> loop: the step is held by
    # the list as well as by its handle, so the loop's traverse does not
    # look inside it; a full collection tracks such steps first.
    def abandon():
        lp = _StepSpy()
        lp.create_task(asyncio.sleep(0))
        assert any(type(cb).__name__ == "TaskStepMethWrapper" for cb in lp.callbacks)
        return weakref.ref(lp)

    _assert_abandoned_loop_is_freed(abandon)


def test_handles_cannot_be_instantiated_directly(loop):
    h = loop.call_soon(print)
    with pytest.raises(TypeError):
        type(h)(print, (), loop)
    h.cancel()


def test_run_of_a_cancelled_handle_reports_as_asyncio_does(any_loop):
    # asyncio's Handle._run() with no callback left raises inside its own
    # try and reports "Exception in callback None()"; it must not crash.
    reports = []
    any_loop.set_exception_handler(lambda _loop, context: reports.append(
        (context["message"], type(context["exception"]).__name__)))
    for handle in (any_loop.call_soon(print), any_loop.call_later(10, print)):
        handle.cancel()
        assert handle._run() is None
    assert reports == [("Exception in callback None()", "TypeError")] * 2


def test_an_abandoned_loop_in_a_cycle_is_freed_by_automatic_collections():
    # The hook that hands held, untracked ready handles back to the GC acts
    # before full collections: those the collector starts by itself, not
    # only gc.collect().
    class Holder:
        pass

    def abandon():
        loop = cxxloop.new_event_loop()
        fut = loop.create_future()
        holder = Holder()
        holder.handle = loop.call_soon(fut.set_result, holder)
        fut.holder = holder
        return weakref.ref(loop)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unclosed loop warns, as on asyncio
        ref = abandon()
        full_collections = []

        def count(phase, info):
            if phase == "start" and info["generation"] == 2:
                full_collections.append(1)

        gc.callbacks.append(count)
        try:
            garbage = []
            for i in range(20_000_000):
                node = [i]
                node.append(node)  # a cycle, so the collector has work to count
                if i % 10 == 0:
                    garbage.append(node)  # survivors age into the oldest generation
                if i % 100_000 == 0 and ref() is None:
                    break
        finally:
            gc.callbacks.remove(count)
            del garbage
    assert full_collections, "no automatic full collection ran"
    assert ref() is None


def test_run_directly(loop):
    out = []
    h = loop.call_soon(out.append, "x")
    h._run()
    assert out == ["x"]
    h.cancel()
