"""run_in_executor with thread pools, process pools in every start method,
and dask.distributed's executor, all driven from a cxxloop loop."""

import asyncio
import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import pytest

import cxxloop
from parity import require


def square_with_pid(x):
    return x * x, os.getpid()


def _gather(executor, n):
    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(executor, square_with_pid, i) for i in range(n)))

    return cxxloop.run(main())


def test_thread_pool_fan_out_is_bounded():
    active, peak, lock = [0], [0], threading.Lock()

    def tracked(x):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        threading.Event().wait(0.001)
        with lock:
            active[0] -= 1
        return x

    async def main():
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            return await asyncio.gather(*(loop.run_in_executor(pool, tracked, i) for i in range(500)))

    assert cxxloop.run(main()) == list(range(500))
    assert 1 <= peak[0] <= 4


# fork() copies only the calling thread: a lock that another thread holds at
# that moment stays held in the child for good. glibc's malloc guards
# against that; GCC 12's AddressSanitizer allocator and Python-level locks
# do not. The pytest process has such threads (uvloop's resolver pool, the
# bridges' shared pools), and the ASan run once hung in a forked worker's
# first malloc. So a pool that forks is made in a fresh interpreter whose
# only thread is the main one, and tests that do not care about the start
# method use forkserver (tests/test_executor.py and test_examples.py too).
FRESH_INTERPRETER_TIMEOUT = 120


def check_start_method(method):
    ctx = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        results = _gather(pool, 16)
    assert [r for r, _ in results] == [i * i for i in range(16)]
    assert os.getpid() not in {pid for _, pid in results}


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_process_pool_every_start_method(method):
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
            f"import test_executors_scale; test_executors_scale.check_start_method({method!r})")
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code],
                          capture_output=True, text=True, timeout=FRESH_INTERPRETER_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_process_pool_exception_and_cancellation():
    async def main():
        loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("forkserver")
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            with pytest.raises(ZeroDivisionError):
                await loop.run_in_executor(pool, divmod, 1, 0)
            slow = loop.run_in_executor(pool, time.sleep, 0.2)
            queued = loop.run_in_executor(pool, pow, 2, 5)
            queued.cancel()
            await slow
            return queued.cancelled()

    assert cxxloop.run(main()) is True


def test_dask_distributed_executor():
    distributed = require("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        results = _gather(client.get_executor(), 20)
        worker_pids = set(client.run(os.getpid).values())
    assert [r for r, _ in results] == [i * i for i in range(20)]
    assert {pid for _, pid in results} <= worker_pids
    assert os.getpid() not in worker_pids
