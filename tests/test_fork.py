"""A forked child must not run the parent's loop but can make its own."""

import asyncio
import os

import pytest

import cxxloop


def _wait_child(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _reads_through_watch(loop, r, w, byte):
    """True if a reader watch on r fires and reads `byte` written to w."""
    got = loop.create_future()
    loop.add_reader(r, lambda: got.done() or got.set_result(os.read(r, 1)))
    os.write(w, byte)
    try:
        return loop.run_until_complete(asyncio.wait_for(got, 5)) == byte
    finally:
        loop.remove_reader(r)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, 3.12+
def test_fork_child_makes_new_loop_parent_unaffected(loop):
    r, w = os.pipe()

    async def parent_side():
        pid = os.fork()
        if pid == 0:
            # Child: the inherited running loop must not be usable...
            code = 0
            try:
                loop.run_until_complete(asyncio.sleep(0))
                code = 10
            except RuntimeError:
                pass
            # ...but a fresh loop works.
            try:
                child = cxxloop.new_event_loop()
                value = child.run_until_complete(asyncio.sleep(0.001, 7))
                child.close()
                os.write(w, bytes([value]))
            except BaseException:
                code = 11
            os._exit(code)
        await asyncio.sleep(0.01)
        return pid

    pid = loop.run_until_complete(parent_side())
    assert _wait_child(pid) == 0
    os.close(w)
    assert os.read(r, 1) == bytes([7])
    os.close(r)
    # The parent's loop still works, timers and fd watches included.
    a, b = os.pipe()
    assert _reads_through_watch(loop, a, b, b"p")
    os.close(a)
    os.close(b)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, 3.12+
def test_fork_child_cannot_touch_parent_registrations(loop):
    a, b = os.pipe()
    loop.add_reader(a, print)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            loop.add_writer(b, print)
            code = 10
        except RuntimeError:
            pass
        # Removing only forgets the watch; the parent's epoll set is intact.
        if loop.remove_reader(a) is not True:
            code = 11
        loop.close()
        os._exit(code)
    assert _wait_child(pid) == 0
    assert _reads_through_watch(loop, a, b, b"x")
    os.close(a)
    os.close(b)
