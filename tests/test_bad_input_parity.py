"""Bad input raises what asyncio raises: same type, same message.

asyncio validates callbacks only in debug mode, so both loops run with
debug on; cxxloop's stricter checks outside debug mode are tested in
test_scheduling.py.
"""

import asyncio
import signal

import pytest

import cxxloop


async def coroutine_function():
    pass


def _outcome(loop, call):
    try:
        result = call(loop)
    except Exception as exc:  # the point is to compare exceptions
        return type(exc), str(exc)
    return "returned", result


NOT_A_FILE = object()  # one object, so both loops' messages show one address

BAD_CALLS = {
    "call_soon(coroutine)": lambda lp: lp.call_soon(coroutine_function()),
    "call_soon(coroutine function)": lambda lp: lp.call_soon(coroutine_function),
    "call_soon(non-callable)": lambda lp: lp.call_soon(42),
    "call_soon_threadsafe(non-callable)": lambda lp: lp.call_soon_threadsafe("x"),
    "call_later(None)": lambda lp: lp.call_later(None, print),
    "call_at(None)": lambda lp: lp.call_at(None, print),
    "call_later(coroutine)": lambda lp: lp.call_later(1, coroutine_function()),
    "call_at(non-callable)": lambda lp: lp.call_at(1, 42),
    "add_reader(-1)": lambda lp: lp.add_reader(-1, print),
    "add_writer('x')": lambda lp: lp.add_writer("x", print),
    "remove_reader(object())": lambda lp: lp.remove_reader(NOT_A_FILE),
    "remove_reader(unregistered)": lambda lp: lp.remove_reader(1000),
    "remove_writer(unregistered)": lambda lp: lp.remove_writer(1000),
    "run_until_complete(42)": lambda lp: lp.run_until_complete(42),
    "create_task(42)": lambda lp: lp.create_task(42),
    "set_task_factory(1)": lambda lp: lp.set_task_factory(1),
    "add_signal_handler('x')": lambda lp: lp.add_signal_handler("x", print),
    "add_signal_handler(0)": lambda lp: lp.add_signal_handler(0, print),
    "add_signal_handler(SIGKILL)": lambda lp: lp.add_signal_handler(signal.SIGKILL, print),
    "remove_signal_handler(unregistered)": lambda lp: lp.remove_signal_handler(signal.SIGUSR2),
    "run_in_executor(coroutine function)": lambda lp: lp.run_in_executor(None, coroutine_function),
    "set_default_executor(non-executor)": lambda lp: lp.set_default_executor(42),
}


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_same_exception_as_asyncio(name):
    reference = asyncio.SelectorEventLoop()
    ours = cxxloop.new_event_loop()
    try:
        reference.set_debug(True)
        ours.set_debug(True)
        expected = _outcome(reference, BAD_CALLS[name])
        got = _outcome(ours, BAD_CALLS[name])
    finally:
        reference.close()
        ours.close()
    assert got == expected


CLOSED_CALLS = {
    "call_soon": lambda lp: lp.call_soon(print),
    "call_later": lambda lp: lp.call_later(1, print),
    "call_at": lambda lp: lp.call_at(1, print),
    "call_soon_threadsafe": lambda lp: lp.call_soon_threadsafe(print),
    "run_forever": lambda lp: lp.run_forever(),
    "add_reader": lambda lp: lp.add_reader(0, print),
    "remove_reader": lambda lp: lp.remove_reader(0),
    "remove_writer": lambda lp: lp.remove_writer(0),
    "run_in_executor": lambda lp: lp.run_in_executor(None, print),
    "add_signal_handler": lambda lp: lp.add_signal_handler(signal.SIGUSR1, print),
    "close again": lambda lp: lp.close(),
    "is_closed": lambda lp: lp.is_closed(),
}


@pytest.mark.parametrize("name", list(CLOSED_CALLS))
def test_closed_loop_same_as_asyncio(name):
    reference = asyncio.SelectorEventLoop()
    ours = cxxloop.new_event_loop()
    reference.close()
    ours.close()
    assert _outcome(ours, CLOSED_CALLS[name]) == _outcome(reference, CLOSED_CALLS[name])
