"""Pattern 1: wrap a blocking function into a coroutine with run_in_executor.

The blocking calls run in the loop's default thread pool, so they overlap:
four 0.2 s sleeps finish in about 0.2 s, not 0.8 s.
"""

import asyncio
import threading
import time

import cxxloop


def blocking_io(name: str, seconds: float) -> str:
    time.sleep(seconds)  # stands for a blocking library call
    return f"{name} done in {threading.current_thread().name}"


async def as_coroutine(name: str, seconds: float) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, blocking_io, name, seconds)


async def main() -> float:
    start = time.perf_counter()
    results = await asyncio.gather(*(as_coroutine(f"job{i}", 0.2) for i in range(4)))
    elapsed = time.perf_counter() - start
    for line in results:
        print(line)
    print(f"4 blocking calls of 0.2 s took {elapsed:.2f} s")
    return elapsed


if __name__ == "__main__":
    cxxloop.run(main())
