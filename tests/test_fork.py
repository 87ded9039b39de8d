"""A forked child must not run the parent's loop but can make its own."""

import asyncio
import os

import pytest

import cxxloop


def _wait_child(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


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
    got = loop.create_future()
    a, b = os.pipe()
    loop.add_reader(a, lambda: got.done() or got.set_result(os.read(a, 1)))
    os.write(b, b"p")
    assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"p"
    loop.remove_reader(a)
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
    got = loop.create_future()
    loop.add_reader(a, lambda: got.done() or got.set_result(os.read(a, 1)))
    os.write(b, b"x")
    assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"x"
    loop.remove_reader(a)
    os.close(a)
    os.close(b)
