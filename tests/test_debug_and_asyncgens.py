"""Debug mode (slow callbacks, PYTHONASYNCIODEBUG) and async generator shutdown."""

import asyncio
import os
import subprocess
import sys
import time

import cxxloop


def test_slow_callback_is_logged_in_debug(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.03)
    with caplog.at_level("WARNING", logger="asyncio"):
        loop.run_until_complete(asyncio.sleep(0))
    assert "Executing <Handle sleep" in caplog.text and "took" in caplog.text


def test_fast_callbacks_are_not_logged(loop, caplog):
    loop.set_debug(True)
    loop.call_soon(lambda: None)
    with caplog.at_level("WARNING", logger="asyncio"):
        loop.run_until_complete(asyncio.sleep(0))
    assert "Executing" not in caplog.text


def test_current_handle_is_set_in_debug(loop):
    loop.set_debug(True)
    seen = []
    h = loop.call_soon(lambda: seen.append(loop._current_handle))
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [h]
    assert loop._current_handle is None


def test_set_debug_while_running_enables_origin_tracking(loop):
    async def main():
        loop.set_debug(True)
        await asyncio.sleep(0)
        return sys.get_coroutine_origin_tracking_depth()

    assert loop.run_until_complete(main()) > 0
    assert sys.get_coroutine_origin_tracking_depth() == 0


def test_pythonasynciodebug_environment():
    code = "import cxxloop; print(cxxloop.new_event_loop().get_debug())"
    env = dict(os.environ, PYTHONASYNCIODEBUG="1")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True"
    env.pop("PYTHONASYNCIODEBUG")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_shutdown_asyncgens_finalizes_generators(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(True)

    async def main():
        gen = agen()
        assert await gen.__anext__() == 1
        return gen  # left suspended

    gen = loop.run_until_complete(main())
    assert finalized == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == [True]
    del gen


def test_asyncgen_hooks_installed_only_while_running(loop):
    before = sys.get_asyncgen_hooks()

    async def main():
        return sys.get_asyncgen_hooks()

    during = loop.run_until_complete(main())
    assert during.firstiter == loop._asyncgen_firstiter_hook
    assert sys.get_asyncgen_hooks() == before


def test_run_finalizes_asyncgens_automatically():
    finalized = []

    async def agen():
        try:
            yield 1
        finally:
            finalized.append(True)

    async def main():
        gen = agen()
        await gen.__anext__()
        main.gen = gen

    cxxloop.run(main())
    assert finalized == [True]
