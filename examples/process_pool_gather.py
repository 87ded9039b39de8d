"""Pattern 3: asyncio.gather over a ProcessPoolExecutor for CPU-bound work.

Each call counts the primes below a limit in a worker process; gather
collects them in order. The pool is created and used under the
`if __name__ == "__main__"` guard, so it works with the platform's default
start method ('fork' on Linux before Python 3.14) and with 'spawn', which
re-imports this file in every worker.

    python examples/process_pool_gather.py [fork|spawn|forkserver]
"""

import asyncio
import concurrent.futures
import multiprocessing
import os
import sys
import time

import cxxloop

LIMITS = [250_000 * (i + 1) for i in range(8)]


def count_primes(limit: int) -> tuple[int, int]:
    """CPU-bound: the number of primes below limit, and the PID that counted."""
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            for multiple in range(i * i, limit, i):  # plain Python loop: holds the GIL
                sieve[multiple] = 0
    return sum(sieve), os.getpid()


async def gather_in_processes(limits: list[int], method: str | None = None) -> list[tuple[int, int]]:
    """method None: the default start method; else 'fork', 'spawn', 'forkserver'."""
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context(method)
    workers = min(4, os.cpu_count() or 1, len(limits))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return await asyncio.gather(*(loop.run_in_executor(pool, count_primes, n) for n in limits))


async def main(method: str | None) -> list[tuple[int, int]]:
    loop = asyncio.get_running_loop()
    print(f"loop: {type(loop).__module__}.{type(loop).__qualname__}")
    start = time.perf_counter()
    results = await gather_in_processes(LIMITS, method)
    elapsed = time.perf_counter() - start
    for limit, (count, pid) in zip(LIMITS, results, strict=True):
        print(f"primes below {limit}: {count} (worker pid {pid})")
    pids = {pid for _, pid in results}
    print(f"start method {multiprocessing.get_context(method).get_start_method()}, parent pid {os.getpid()}")
    print(f"{len(results)} results from {len(pids)} worker processes in {elapsed:.2f} s")
    return results


if __name__ == "__main__":
    cxxloop.run(main(sys.argv[1] if len(sys.argv) > 1 else None))  # asyncio.run(...) is the stock loop
