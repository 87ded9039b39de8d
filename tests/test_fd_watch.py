"""add_reader / add_writer / remove_reader / remove_writer (level-triggered)."""

import asyncio
import os
import socket

import pytest

from parity import run_briefly


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_reader_fires_while_readable_level_triggered(loop, pair):
    a, b = pair
    calls = []
    loop.add_reader(a.fileno(), calls.append, "r")
    b.send(b"x")
    for _ in range(3):
        run_briefly(loop)
    # Data not consumed: level-triggered means it keeps firing.
    assert len(calls) >= 3
    assert a.recv(1) == b"x"
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False


def test_reader_accepts_object_with_fileno(loop, pair):
    a, b = pair
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(a)
        got.set_result(a.recv(100))

    loop.add_reader(a, on_readable)
    b.send(b"hello")
    assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"hello"


def test_writer_fires_when_writable(loop, pair):
    a, _ = pair
    got = loop.create_future()
    loop.add_writer(a.fileno(), lambda: got.done() or got.set_result("w"))
    assert loop.run_until_complete(got) == "w"
    assert loop.remove_writer(a.fileno()) is True


def test_reader_and_writer_on_same_fd_are_independent(loop, pair):
    a, b = pair
    events = []
    loop.add_reader(a, events.append, "r")
    loop.add_writer(a, events.append, "w")
    run_briefly(loop)
    assert "w" in events and "r" not in events
    assert loop.remove_writer(a)
    events.clear()
    b.send(b"1")
    run_briefly(loop)
    assert events and set(events) == {"r"}
    assert loop.remove_reader(a)


def test_replacing_a_reader_cancels_the_old_handle(loop, pair):
    a, b = pair
    events = []
    loop.add_reader(a, events.append, "old")
    loop.add_reader(a, events.append, "new")
    b.send(b"1")
    run_briefly(loop)
    assert events and set(events) == {"new"}
    loop.remove_reader(a)


def test_hangup_wakes_reader_and_writer(loop, pair):
    a, b = pair
    events = set()
    loop.add_reader(a, events.add, "r")
    b.close()
    run_briefly(loop)
    assert "r" in events
    assert a.recv(10) == b""
    loop.remove_reader(a)


def test_fd_closed_and_number_reused(loop):
    r1, w1 = os.pipe()
    loop.add_reader(r1, print)
    # Closing the fd behind the loop's back drops the kernel registration;
    # a new fd with the same number must still be watchable.
    os.close(r1)
    os.close(w1)
    r2, w2 = os.pipe()
    try:
        got = loop.create_future()
        loop.add_reader(r2, lambda: got.done() or got.set_result(os.read(r2, 10)))
        os.write(w2, b"z")
        assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"z"
        loop.remove_reader(r2)
    finally:
        os.close(r2)
        os.close(w2)
    loop.remove_reader(r1)


def test_exception_in_reader_goes_to_handler(loop, pair):
    a, b = pair
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        loop.remove_reader(a)
        raise OSError("reader failed")

    loop.add_reader(a, bad)
    b.send(b"x")
    run_briefly(loop, 0.001)
    run_briefly(loop)
    assert isinstance(contexts[0]["exception"], OSError)


# --- bad input ---------------------------------------------------------------


def test_invalid_file_objects(loop):
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_reader(-1, print)
    with pytest.raises(ValueError, match="Invalid file object: 'x'"):
        loop.add_reader("x", print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.remove_writer(object())


def test_closed_fd_raises_oserror(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        loop.add_reader(r, print)
    assert info.value.errno == 9  # EBADF, as asyncio's EpollSelector


def test_regular_file_is_refused_like_epoll(loop, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    with open(path, "rb") as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f, print)


def test_non_callable_and_missing_args(loop, pair):
    a, _ = pair
    with pytest.raises(TypeError, match="callable"):
        loop.add_reader(a, None)
    with pytest.raises(TypeError):
        loop.add_writer(a)
    assert loop.remove_reader(a) is False


def test_unregistered_fd_remove_returns_false(loop):
    assert loop.remove_reader(12345) is False
    assert loop.remove_writer(12345) is False


def test_close_releases_watched_handles(loop, pair):
    a, _ = pair
    loop.add_reader(a, print)
    loop.add_writer(a, print)
    loop.close()
    assert loop.remove_reader(a) is False
