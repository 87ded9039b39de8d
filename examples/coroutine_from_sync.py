"""Pattern 2: run a coroutine from synchronous code.

Two ways: start a loop for it (cxxloop.run, or asyncio.Runner with
cxxloop's loop factory), or hand it to a loop already running in another
thread with asyncio.run_coroutine_threadsafe.
"""

import asyncio
import threading

import cxxloop


async def fetch(x: int) -> int:
    await asyncio.sleep(0.01)
    return x * 2


def sync_caller() -> None:
    print("cxxloop.run:", cxxloop.run(fetch(1)))
    with asyncio.Runner(loop_factory=cxxloop.new_event_loop) as runner:
        print("Runner:", runner.run(fetch(2)), runner.run(fetch(3)))


def from_worker_thread() -> None:
    loop = cxxloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loop-thread")
    thread.start()
    try:
        # Synchronous code in this thread submits to the running loop.
        future = asyncio.run_coroutine_threadsafe(fetch(21), loop)
        print("run_coroutine_threadsafe:", future.result(timeout=5))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


if __name__ == "__main__":
    sync_caller()
    from_worker_thread()
