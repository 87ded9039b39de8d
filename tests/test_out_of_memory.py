"""Running out of memory inside the loop's C++ containers: a failed
allocation is a MemoryError to the caller, as asyncio's own containers
give, never a terminated process; the loop and the transport work on.

The allocations fail for real: a child process lowers its address-space
limit (RLIMIT_AS) once its loop is running, then writes one-byte chunks to
a peer that never reads. A one-byte bytes object is a shared singleton, so
each write costs nothing but an entry of the C++ write queue.

Only cxxloop runs it: asyncio's transport sums its queue on every write
(get_write_buffer_size() for flow control), so the million writes that
fill the limit would take it hours.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from parity import under_asan

CHILD = r"""
import asyncio, resource, socket
import cxxloop

async def main():
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
    resource.setrlimit(resource.RLIMIT_AS, (used() + (64 << 20), resource.RLIM_INFINITY))
    writes = 0
    try:
        while writes < 10_000_000:
            transport.write(b"x")
            writes += 1
        outcome = "never ran out"
    except MemoryError:
        outcome = "MemoryError"
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    queued = transport.get_write_buffer_size()
    transport.write(b"!")  # the queue still takes data
    ran = []
    loop.call_soon(ran.append, 1)
    await asyncio.sleep(0)
    transport.abort()
    b.close()
    await asyncio.sleep(0)
    return outcome, queued > 0, ran == [1]

def used():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()

with asyncio.Runner(loop_factory=cxxloop.new_event_loop) as runner:
    print(*runner.run(main()))
"""


@pytest.mark.skipif(under_asan(),
                    reason="ASan reserves its shadow memory up front: an address-space limit stops it")
def test_a_full_write_queue_is_a_memory_error():
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MemoryError", "True", "True"]
