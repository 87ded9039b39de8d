"""Pattern 2: run a coroutine from synchronous code.

1. Start a loop for it: cxxloop.run(coro), or asyncio.Runner with cxxloop's
   loop factory when several calls should share one loop.
2. Synchronous code in a worker thread hands coroutines to the loop that is
   running in the main thread, with asyncio.run_coroutine_threadsafe, and
   blocks on the concurrent.futures.Future it gets back (errors included).
3. The mirror image: the loop runs in a background thread and the main
   thread's synchronous code submits to it.

    python examples/coroutine_from_sync.py
"""

import asyncio
import threading

import cxxloop


async def double(x: int) -> int:
    await asyncio.sleep(0.01)
    return x * 2


async def where(x: int) -> tuple[int, str]:
    """Doubles x and says which thread's loop ran it."""
    await asyncio.sleep(0.01)
    assert asyncio.current_task() is not None
    return x * 2, threading.current_thread().name


async def fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("raised inside the loop")


def start_a_loop() -> dict:
    """1. Plain synchronous code that needs a coroutine's result."""
    first = cxxloop.run(double(1))
    print(f"cxxloop.run(double(1)) -> {first}")
    with asyncio.Runner(loop_factory=cxxloop.new_event_loop) as runner:
        loop_type = type(runner.get_loop())
        second, third = runner.run(double(2)), runner.run(double(3))
    print(f"Runner on {loop_type.__module__}.{loop_type.__qualname__}: -> {second} {third} (one loop, two runs)")
    return {"run": first, "runner": (second, third), "loop_type": loop_type}


def sync_library_code(loop: asyncio.AbstractEventLoop, values: list[int]) -> dict:
    """Ordinary blocking code; it only knows a loop object to submit to."""
    futures = [asyncio.run_coroutine_threadsafe(where(v), loop) for v in values]
    results = [f.result(timeout=5) for f in futures]
    try:
        asyncio.run_coroutine_threadsafe(fails(), loop).result(timeout=5)
        error = None
    except ValueError as exc:
        error = str(exc)
    return {"results": results, "error": error, "caller": threading.current_thread().name}


async def loop_in_main_thread() -> dict:
    """2. The loop runs here; a worker thread runs synchronous code against it."""
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    outcome: dict = {}

    def worker() -> None:
        try:
            outcome.update(sync_library_code(loop, [10, 20, 30]))
        finally:
            loop.call_soon_threadsafe(finished.set)

    thread = threading.Thread(target=worker, name="sync-worker")
    thread.start()
    await finished.wait()  # the loop keeps running the submitted coroutines meanwhile
    thread.join()
    outcome["loop_thread"] = threading.current_thread().name
    values = [value for value, _ in outcome["results"]]
    ran_on = sorted({name for _, name in outcome["results"]})
    print(f"worker thread {outcome['caller']} -> {values}, run by the loop in thread {', '.join(ran_on)}")
    print(f"worker thread {outcome['caller']} caught ValueError: {outcome['error']}")
    return outcome


def loop_in_background_thread() -> dict:
    """3. The loop runs in a background thread; this thread's code submits."""
    loop = cxxloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loop-thread")
    thread.start()
    try:
        value, ran_on = asyncio.run_coroutine_threadsafe(where(21), loop).result(timeout=5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    print(f"{threading.current_thread().name} -> {value}, run by the loop in thread {ran_on}")
    return {"value": value, "ran_on": ran_on}


if __name__ == "__main__":
    start_a_loop()
    cxxloop.run(loop_in_main_thread())  # the one-line switch: asyncio.run(...) is the stock loop
    loop_in_background_thread()
