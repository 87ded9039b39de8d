"""The loop keeps its own attributes in slots, so its instance __dict__ is
made only when something else sets an attribute on it (a test's mock).

While the dict is unmade, a method lookup on the loop skips it, which is
what makes CPython's Task find call_soon cheaply and lets loop.method()
calls in Python code specialize. These tests check the structure that
speed depends on, not the speed.
"""

import asyncio
import gc
import signal
import sys
from unittest import mock

import cxxloop


def instance_dict(loop):
    """The loop's instance __dict__ if it has been made, else None. Reading
    loop.__dict__ would make it, so it is found among what the loop refers
    to: a dict that is not one of its slots' values."""
    slot_values = {id(getattr(loop, name, None)) for name in type(loop).__slots__}
    made = [r for r in gc.get_referents(loop) if type(r) is dict and id(r) not in slot_values]
    assert len(made) <= 1, made
    return made[0] if made else None


async def _a_bit_of_everything():
    loop = asyncio.get_running_loop()

    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    writer.write(b"ping")
    assert await reader.read(100) == b"ping"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()

    assert await loop.run_in_executor(None, sum, [1, 2]) == 3
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.remove_signal_handler(signal.SIGUSR1)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    assert await proc.wait() == 0
    loop.set_exception_handler(lambda loop, context: None)
    await asyncio.gather(*(asyncio.sleep(0) for _ in range(10)))

    async def agen():
        yield 1

    async for _ in agen():
        pass


def test_the_loop_sets_no_attribute_outside_its_slots():
    loop = cxxloop.new_event_loop()
    try:
        assert instance_dict(loop) is None
        loop.run_until_complete(_a_bit_of_everything())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        assert instance_dict(loop) is None
    finally:
        loop.close()
    assert instance_dict(loop) is None


def test_other_attributes_still_go_to_an_instance_dict():
    loop = cxxloop.new_event_loop()
    try:
        loop.anything = 1
        assert instance_dict(loop) == {"anything": 1}
        assert loop.__dict__ == {"anything": 1}
        # A mocked method shadows the class's and is gone again after.
        calls = []
        with mock.patch.object(loop, "call_soon", lambda *args: calls.append(args)):
            loop.call_soon(print, 1)
        assert calls == [(print, 1)]
        assert isinstance(loop.call_soon(lambda: None), asyncio.Handle)
        assert loop.__dict__ == {"anything": 1}
    finally:
        loop.close()
