"""The examples run unchanged on cxxloop and compute what they claim."""

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cxxloop

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sync_in_executor_overlaps_blocking_calls():
    out = run_example("sync_in_executor.py")
    assert out.count("done in") == 4
    elapsed = float(re.search(r"took ([\d.]+) s", out).group(1))
    assert elapsed < 0.8  # four 0.2 s calls ran concurrently, not one by one
    # In process: the work ran on pool threads, not the loop's thread.
    example = load("sync_in_executor")

    async def three():
        return await asyncio.gather(*(example.as_coroutine(f"j{i}", 0) for i in range(3)))

    loop_thread = threading.current_thread().name
    assert all(not line.endswith(loop_thread) for line in cxxloop.run(three()))


def test_coroutine_from_sync():
    out = run_example("coroutine_from_sync.py")
    assert "cxxloop.run: 2" in out
    assert "Runner: 4 6" in out
    assert "run_coroutine_threadsafe: 42" in out


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_process_pool_gather(method):
    out = run_example("process_pool_gather.py", method)
    counts = dict(map(int, m) for m in re.findall(r"primes below (\d+): (\d+)", out))
    assert counts[100_000] == 9592 and counts[600_000] == 49098
    parent = int(re.search(r"parent pid (\d+)", out).group(1))
    workers = {int(p) for p in re.findall(r"worker pid (\d+)", out)}
    assert workers and parent not in workers


def test_thread_pool_counts_reports_work_in_flight():
    out = run_example("thread_pool_counts.py")
    samples = [tuple(map(int, m)) for m in re.findall(r"tasks in flight:\s+(\d+)\s+threads:\s+(\d+)", out)]
    assert samples
    assert max(tasks for tasks, _ in samples) > 2  # workers were tasks in flight
    assert max(threads for _, threads in samples) > 1  # and pool threads existed
    assert "results: 40, sum 20540" in out
    # In process: the same numbers come back from main().
    results, _ = cxxloop.run(load("thread_pool_counts").main())
    assert results == [i * i for i in range(40)]


def test_scale_out_dask():
    out = run_example("scale_out_dask.py", "--tasks", "6")
    assert "6 results" in out
    workers = re.search(r"computed on (\d+) worker processes: (.*)", out)
    assert int(workers.group(1)) >= 1
    assert str(os.getpid()) not in workers.group(2)
