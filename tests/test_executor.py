"""run_in_executor, set_default_executor, shutdown_default_executor."""

import asyncio
import concurrent.futures
import multiprocessing
import threading
import time
import warnings

import pytest


def test_default_executor_runs_in_another_thread(loop):
    main = threading.get_ident()

    async def go():
        return await loop.run_in_executor(None, threading.get_ident)

    assert loop.run_until_complete(go()) != main


def test_run_in_executor_propagates_exceptions(loop):
    def fail():
        raise LookupError("nope")

    with pytest.raises(LookupError):
        loop.run_until_complete(loop.run_in_executor(None, fail))


def test_set_default_executor(loop):
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="custom")
    loop.set_default_executor(executor)
    name = loop.run_until_complete(loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("custom")
    loop.run_until_complete(loop.shutdown_default_executor())
    assert executor._shutdown


def test_set_default_executor_rejects_process_pool(loop):
    with pytest.raises(TypeError):
        loop.set_default_executor(concurrent.futures.ProcessPoolExecutor())


def test_explicit_process_pool(loop):
    # forkserver: see test_executors_scale.py on fork() from this process.
    ctx = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        result = loop.run_until_complete(loop.run_in_executor(pool, pow, 2, 10))
    assert result == 1024


def test_shutdown_default_executor_then_run_raises(loop):
    loop.run_until_complete(loop.run_in_executor(None, time.sleep, 0))
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_until_complete(loop.run_in_executor(None, time.sleep, 0))


def test_shutdown_default_executor_timeout_warns(loop):
    release = threading.Event()
    loop.run_in_executor(None, release.wait, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.run_until_complete(loop.shutdown_default_executor(timeout=0.05))
    release.set()
    assert any(issubclass(w.category, RuntimeWarning) and "did not finish joining" in str(w.message) for w in caught)


def test_shutdown_default_executor_waits_for_work(loop):
    done = []

    def slow():
        time.sleep(0.05)
        done.append(True)

    loop.run_in_executor(None, slow)
    loop.run_until_complete(loop.shutdown_default_executor())
    assert done == [True]


def test_to_thread_uses_the_loop(loop):
    async def go():
        return await asyncio.to_thread(sum, [1, 2, 3])

    assert loop.run_until_complete(go()) == 6
