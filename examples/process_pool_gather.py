"""Pattern 3: asyncio.gather over a ProcessPoolExecutor for CPU-bound work.

    python examples/process_pool_gather.py [fork|spawn|forkserver]
"""

import asyncio
import concurrent.futures
import multiprocessing
import os
import sys

import cxxloop


def count_primes(limit: int) -> tuple[int, int]:
    """CPU-bound: primes below limit, and the PID that counted them."""
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return sum(sieve), os.getpid()


async def main(method: str) -> list[tuple[int, int]]:
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context(method)
    limits = [100_000 * (i + 1) for i in range(6)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        results = await asyncio.gather(*(loop.run_in_executor(pool, count_primes, n) for n in limits))
    for limit, (count, pid) in zip(limits, results):
        print(f"primes below {limit}: {count} (worker pid {pid})")
    print(f"parent pid {os.getpid()}, start method {method}")
    return results


if __name__ == "__main__":
    cxxloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "fork"))
