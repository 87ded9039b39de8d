"""The loop's methods take their parameters by keyword where asyncio's
Python methods do (call_later(delay=..., callback=...), remove_reader(fd=...)),
on both loops."""

from __future__ import annotations

import asyncio
import socket

import pytest

from parity import LOOPS, agree


def test_scheduling_by_keyword():
    async def main():
        loop = asyncio.get_running_loop()
        got = []
        loop.call_soon(callback=lambda: got.append("soon"))
        loop.call_soon_threadsafe(callback=lambda: got.append("threadsafe"))
        loop.call_later(delay=0, callback=lambda: got.append("later"))
        loop.call_at(when=loop.time(), callback=lambda: got.append("at"))
        await loop.create_task(coro=asyncio.sleep(0.01))
        return sorted(got)

    assert agree(main) == ["at", "later", "soon", "threadsafe"]


def test_fd_watches_by_keyword():
    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        readable = loop.create_future()
        loop.add_reader(fd=a, callback=lambda: readable.done() or readable.set_result(a.recv(10)))
        loop.add_writer(fd=b.fileno(), callback=lambda: None)
        b.send(b"ping")
        got = await readable
        removed = (loop.remove_reader(fd=a), loop.remove_writer(fd=b), loop.remove_reader(fd=a))
        a.close()
        b.close()
        return got, removed

    assert agree(main) == (b"ping", (True, True, False))


def test_run_until_complete_and_set_debug_by_keyword():
    def scenario(factory):
        loop = factory()
        try:
            loop.set_debug(enabled=True)
            return loop.get_debug(), loop.run_until_complete(future=asyncio.sleep(0, "done"))
        finally:
            loop.close()

    results = {name: scenario(factory) for name, factory in LOOPS.items()}
    assert results["cxxloop"] == results["asyncio"] == (True, "done")


@pytest.mark.parametrize(
    "call",
    [
        lambda loop: loop.call_later(callback=print),  # the delay left out
        lambda loop: loop.call_soon(print, callback=print),  # the callback twice
        lambda loop: loop.call_soon(callback=print, delay=1),
        lambda loop: loop.remove_reader(),
        lambda loop: loop.remove_reader(1, 2),
        lambda loop: loop.add_reader(fd=0),
    ],
)
def test_bad_keywords_are_type_errors(call):
    async def main():
        try:
            call(asyncio.get_running_loop())
        except Exception as exc:
            return type(exc).__name__
        return "accepted"

    assert agree(main) == "TypeError"
