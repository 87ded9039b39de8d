"""Pattern 4: offload blocking work to a ThreadPoolExecutor while reporting
how many asyncio tasks and OS threads are alive.

40 jobs of 0.05 s each go to a pool of 8 threads, one task per job. A
reporter task samples len(asyncio.all_tasks()) and threading.active_count()
every 20 ms while the work is in flight.

    python examples/thread_pool_counts.py
"""

import asyncio
import concurrent.futures
import threading
import time

import cxxloop

JOBS = 40
WORKERS = 8
DELAY = 0.05


class Running:
    """How many jobs are inside a pool thread right now (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.now -= 1


running = Running()


def blocking_work(i: int) -> tuple[int, str]:
    with running:
        time.sleep(DELAY)  # stands for blocking I/O
        return i * i, threading.current_thread().name


async def job(pool: concurrent.futures.ThreadPoolExecutor, i: int) -> tuple[int, str]:
    return await asyncio.get_running_loop().run_in_executor(pool, blocking_work, i)


async def report(stop: asyncio.Event) -> list[dict]:
    samples = []
    while not stop.is_set():
        sample = {
            "tasks": len(asyncio.all_tasks()),  # main, this reporter, and the unfinished jobs
            "threads": threading.active_count(),  # main thread and the pool's threads
            "running": running.now,
        }
        samples.append(sample)
        tasks, threads, now = sample["tasks"], sample["threads"], sample["running"]
        print(f"in flight: tasks {tasks:3d}   threads {threads:3d}   jobs in threads {now:2d}")
        await asyncio.sleep(0.02)
    return samples


async def main() -> dict:
    loop = asyncio.get_running_loop()
    print(f"loop: {type(loop).__module__}.{type(loop).__qualname__}")
    before = len(asyncio.all_tasks()), threading.active_count()
    print(f"before: tasks {before[0]}, threads {before[1]}")
    stop = asyncio.Event()
    reporter = asyncio.create_task(report(stop), name="reporter")
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="offload") as pool:
        results = await asyncio.gather(*(asyncio.create_task(job(pool, i), name=f"job{i}") for i in range(JOBS)))
    elapsed = time.perf_counter() - start
    stop.set()
    samples = await reporter
    after = len(asyncio.all_tasks()), threading.active_count()
    squares = [square for square, _ in results]
    threads_used = sorted({name for _, name in results})
    print(f"results: {len(squares)} squares, sum {sum(squares)}, in {elapsed:.2f} s")
    print(f"peak: tasks {max(s['tasks'] for s in samples)}, threads {max(s['threads'] for s in samples)}, "
          f"jobs in threads {max(s['running'] for s in samples)}")
    print(f"pool threads used: {len(threads_used)} ({', '.join(threads_used)})")
    print(f"after: tasks {after[0]}, threads {after[1]}")
    return {"squares": squares, "samples": samples, "threads_used": threads_used, "before": before, "after": after}


if __name__ == "__main__":
    cxxloop.run(main())  # the one-line switch: asyncio.run(main()) is the stock loop
