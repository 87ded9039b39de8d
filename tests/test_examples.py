"""The examples run unchanged on cxxloop and compute what they claim.

Each example runs as a subprocess with this interpreter (the venv's python)
under `-W error`, and its printed values are checked. The same patterns are
then run in-process, on cxxloop and on the stock asyncio loop, asserting on
the returned values rather than on text.
"""

import asyncio
import concurrent.futures
import hashlib
import importlib
import multiprocessing
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cxxloop
from parity import require

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ["sync_in_executor", "coroutine_from_sync", "process_pool_gather", "thread_pool_counts"]
LOOP_LINE = "loop: cxxloop._loop.Loop"

LOOP_FACTORIES = [
    pytest.param(cxxloop.new_event_loop, id="cxxloop"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]


def run_example(name, *args, strict=True):
    """Run examples/<name> with this python; with strict, stderr must stay empty."""
    flags = ["-W", "error"] if strict else []
    proc = subprocess.run(
        [sys.executable, *flags, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, proc.stderr
    if strict:
        assert proc.stderr == ""
    return proc.stdout


@pytest.fixture(scope="module")
def ex():
    """The example modules, imported by name (so spawn workers can import them too)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield type("Examples", (), {name: importlib.import_module(name) for name in NAMES})
    finally:
        sys.path.remove(str(EXAMPLES))
        for name in NAMES:
            sys.modules.pop(name, None)


def run_on(factory, coro):
    with asyncio.Runner(loop_factory=factory) as runner:
        if factory is cxxloop.new_event_loop:
            assert type(runner.get_loop()) is cxxloop.Loop
        return runner.run(coro)


def primes_below(limit):
    """Reference count, independent of the example's sieve."""
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\0\0"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return sum(sieve)


# --- 1. a blocking function wrapped into a coroutine -------------------------


def test_sync_in_executor_example():
    out = run_example("sync_in_executor.py")
    assert LOOP_LINE in out.splitlines()
    jobs = re.findall(r"^(job\d): sha256 (\w+) computed in thread (\S+)$", out, re.M)
    assert [name for name, _, _ in jobs] == ["job0", "job1", "job2", "job3"]
    for name, digest, _ in jobs:
        assert digest == hashlib.sha256(name.encode()).hexdigest()[:12]
    loop_thread = re.search(r"^loop thread: (\S+)$", out, re.M).group(1)
    assert loop_thread == "MainThread"
    assert all(thread != loop_thread for _, _, thread in jobs)
    elapsed = float(re.search(r"took ([\d.]+) s", out).group(1))
    assert elapsed < 0.6  # four 0.2 s calls overlapped (0.8 s one after another)
    assert int(re.search(r"heartbeat ticked (\d+) times", out).group(1)) >= 5  # loop was not blocked


@pytest.mark.parametrize("factory", LOOP_FACTORIES)
def test_sync_in_executor_in_process(ex, factory):
    m = ex.sync_in_executor
    report = run_on(factory, m.main())
    assert [name for name, _, _ in report["results"]] == [f"job{i}" for i in range(m.JOBS)]
    assert all(thread != report["loop_thread"] for _, _, thread in report["results"])
    assert report["elapsed"] < 0.6 and report["ticks"] >= 5

    def fail(kind):
        raise kind("from the pool")

    async def more():
        ident = await m.to_coroutine(threading.get_ident)()
        exc = None
        try:
            await m.to_coroutine(fail)(kind=LookupError)  # kwargs go through functools.partial
        except LookupError as e:
            exc = e
        return ident, exc

    ident, exc = run_on(factory, more())
    assert ident != threading.get_ident()  # the work ran in another thread
    assert isinstance(exc, LookupError) and str(exc) == "from the pool"


# --- 2. a coroutine run from synchronous code --------------------------------


def test_coroutine_from_sync_example():
    lines = run_example("coroutine_from_sync.py").splitlines()
    assert lines == [
        "cxxloop.run(double(1)) -> 2",
        "Runner on cxxloop._loop.Loop: -> 4 6 (one loop, two runs)",
        "worker thread sync-worker -> [20, 40, 60], run by the loop in thread MainThread",
        "worker thread sync-worker caught ValueError: raised inside the loop",
        "MainThread -> 42, run by the loop in thread loop-thread",
    ]


def test_coroutine_from_sync_in_process(ex):
    m = ex.coroutine_from_sync
    started = m.start_a_loop()
    assert started == {"run": 2, "runner": (4, 6), "loop_type": cxxloop.Loop}

    outcome = cxxloop.run(m.loop_in_main_thread())
    assert outcome["results"] == [(20, "MainThread"), (40, "MainThread"), (60, "MainThread")]
    assert outcome["caller"] == "sync-worker" and outcome["loop_thread"] == "MainThread"
    assert outcome["error"] == "raised inside the loop"

    assert m.loop_in_background_thread() == {"value": 42, "ran_on": "loop-thread"}


def test_run_coroutine_threadsafe_from_many_threads(ex):
    """Several sync threads submit to one running cxxloop loop at once."""
    m = ex.coroutine_from_sync

    async def main():
        loop = asyncio.get_running_loop()

        def sync_caller(base):
            futures = [asyncio.run_coroutine_threadsafe(m.where(base + k), loop) for k in range(10)]
            return [f.result(timeout=5) for f in futures]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return await asyncio.gather(*(loop.run_in_executor(pool, sync_caller, 100 * t) for t in range(4)))

    per_thread = cxxloop.run(main())
    assert [[v for v, _ in r] for r in per_thread] == [[2 * (100 * t + k) for k in range(10)] for t in range(4)]
    assert {name for r in per_thread for _, name in r} == {"MainThread"}


# --- 3. gather over a ProcessPoolExecutor ------------------------------------


@pytest.mark.parametrize("method", [None, "fork", "spawn", "forkserver"], ids=lambda m: m or "default")
def test_process_pool_gather_example(method):
    out = run_example("process_pool_gather.py", *([method] if method else []))
    assert LOOP_LINE in out.splitlines()
    rows = [tuple(map(int, m)) for m in re.findall(r"primes below (\d+): (\d+) \(worker pid (\d+)\)", out)]
    assert [limit for limit, _, _ in rows] == [250_000 * (i + 1) for i in range(8)]
    assert {limit: count for limit, count, _ in rows}[1_000_000] == 78498
    assert all(count == primes_below(limit) for limit, count, _ in rows)
    used, parent = re.search(r"start method (\w+), parent pid (\d+)", out).groups()
    if method is None:
        assert used == multiprocessing.get_all_start_methods()[0]  # the platform default
        if sys.platform == "linux" and sys.version_info < (3, 14):
            assert used == "fork"
    else:
        assert used == method
    pids = {pid for _, _, pid in rows}
    assert int(parent) not in pids and len(pids) >= 1  # computed in worker processes


# fork runs in test_process_pool_gather_example, from the example's own
# interpreter; see test_executors_scale.py on fork() from this process.
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_process_pool_gather_in_process(ex, method):
    limits = [20_000, 50_000, 100_000, 30_000]
    results = cxxloop.run(ex.process_pool_gather.gather_in_processes(limits, method))
    assert [count for count, _ in results] == [primes_below(n) for n in limits]
    assert os.getpid() not in {pid for _, pid in results}


# --- 4. a ThreadPoolExecutor with task and thread counts ---------------------


def test_thread_pool_counts_example():
    out = run_example("thread_pool_counts.py")
    assert LOOP_LINE in out.splitlines()
    samples = [
        tuple(map(int, m))
        for m in re.findall(r"in flight: tasks\s+(\d+)\s+threads\s+(\d+)\s+jobs in threads\s+(\d+)", out)
    ]
    assert len(samples) >= 3
    assert max(tasks for tasks, _, _ in samples) > 1
    assert max(tasks for tasks, _, _ in samples) == 40 + 2  # every job, main and the reporter
    assert max(threads for _, threads, _ in samples) > 1
    assert max(threads for _, threads, _ in samples) <= 1 + 8  # the main thread and the pool
    assert max(running for _, _, running in samples) > 1  # jobs really ran side by side
    assert "results: 40 squares, sum 20540" in out  # sum of i*i for i < 40
    assert re.search(r"^pool threads used: 8 \(offload_0, ", out, re.M)
    assert "before: tasks 1, threads 1" in out
    assert "after: tasks 1, threads 1" in out


@pytest.mark.parametrize("factory", LOOP_FACTORIES)
def test_thread_pool_counts_in_process(ex, factory):
    report = run_on(factory, ex.thread_pool_counts.main())
    assert report["squares"] == [i * i for i in range(40)]
    samples = report["samples"]
    assert max(s["tasks"] for s in samples) > 1
    assert max(s["threads"] for s in samples) > report["before"][1]  # pool threads were alive
    assert max(s["running"] for s in samples) > 1
    assert all(name.startswith("offload_") for name in report["threads_used"])
    assert report["before"][0] == report["after"][0] == 1
    assert report["after"][1] == report["before"][1]  # the pool's threads are gone


# --- beyond one machine ------------------------------------------------------


def test_scale_out_dask():
    require("distributed")
    out = run_example("scale_out_dask.py", "--tasks", "6", strict=False)
    assert "6 results" in out
    workers = re.search(r"computed on (\d+) worker processes: (.*)", out)
    assert int(workers.group(1)) >= 1
    assert str(os.getpid()) not in workers.group(2)
