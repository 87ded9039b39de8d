"""Pattern 4: offload to a ThreadPoolExecutor while reporting how many tasks
and threads are in flight."""

import asyncio
import concurrent.futures
import threading
import time

import cxxloop


def blocking_work(i: int) -> int:
    time.sleep(0.05)
    return i * i


async def worker(pool: concurrent.futures.ThreadPoolExecutor, i: int) -> int:
    return await asyncio.get_running_loop().run_in_executor(pool, blocking_work, i)


async def report(done: asyncio.Event) -> list[tuple[int, int]]:
    samples = []
    while not done.is_set():
        # This reporter itself is one of the tasks.
        samples.append((len(asyncio.all_tasks()), threading.active_count()))
        print(f"tasks in flight: {samples[-1][0]:3d}   threads: {samples[-1][1]:3d}")
        await asyncio.sleep(0.02)
    return samples


async def main() -> tuple[list[int], list[tuple[int, int]]]:
    done = asyncio.Event()
    reporter = asyncio.create_task(report(done))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = await asyncio.gather(*(worker(pool, i) for i in range(40)))
    done.set()
    samples = await reporter
    print(f"results: {len(results)}, sum {sum(results)}")
    print(f"after: tasks {len(asyncio.all_tasks())}, threads {threading.active_count()}")
    return results, samples


if __name__ == "__main__":
    cxxloop.run(main())
