"""Pattern 1: wrap a blocking (synchronous) function into a coroutine.

`to_coroutine` turns any blocking function into a coroutine function that
runs the call in the loop's default thread pool with loop.run_in_executor.
The loop stays free while the calls block, so four 0.2 s calls overlap and
take about 0.2 s in all, and a heartbeat task keeps ticking meanwhile.

    python examples/sync_in_executor.py
"""

import asyncio
import functools
import hashlib
import threading
import time

import cxxloop

DELAY = 0.2
JOBS = 4


def to_coroutine(func):
    """Wrap a blocking function: `await wrapped(...)` runs it in a thread."""

    @functools.wraps(func)
    async def wrapper(*args, **kwargs):
        loop = asyncio.get_running_loop()
        # run_in_executor takes positional arguments only; partial carries kwargs.
        return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))

    return wrapper


def blocking_digest(name: str, *, delay: float = DELAY) -> tuple[str, str, str]:
    """A blocking call (think requests.get or a DB driver): sleeps, then hashes."""
    time.sleep(delay)
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return name, digest, threading.current_thread().name


digest = to_coroutine(blocking_digest)


async def heartbeat(stop: asyncio.Event) -> int:
    ticks = 0
    while not stop.is_set():
        ticks += 1
        await asyncio.sleep(0.01)
    return ticks


async def main() -> dict:
    loop = asyncio.get_running_loop()
    print(f"loop: {type(loop).__module__}.{type(loop).__qualname__}")
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(stop))
    start = time.perf_counter()
    results = await asyncio.gather(*(digest(f"job{i}", delay=DELAY) for i in range(JOBS)))
    elapsed = time.perf_counter() - start
    stop.set()
    ticks = await beat
    loop_thread = threading.current_thread().name
    for name, hexdigest, thread in results:
        print(f"{name}: sha256 {hexdigest} computed in thread {thread}")
    print(f"loop thread: {loop_thread}")
    print(f"{JOBS} blocking calls of {DELAY:.2f} s took {elapsed:.2f} s (one after another: {JOBS * DELAY:.2f} s)")
    print(f"heartbeat ticked {ticks} times while they blocked")
    return {"results": results, "elapsed": elapsed, "ticks": ticks, "loop_thread": loop_thread}


if __name__ == "__main__":
    cxxloop.run(main())  # the one-line switch: asyncio.run(main()) is the stock loop
