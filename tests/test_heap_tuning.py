"""A loop raises glibc's heap trim threshold (csrc/core/heap_tuning.hpp),
unless the process chose its own malloc thresholds.

Observed through glibc's own accounting: a 512 KiB block is mmapped while
the mmap threshold is at its 128 KiB start, and comes from the heap once
the threshold has been raised."""

import os
import subprocess
import sys
import textwrap

import pytest

from parity import under_asan

pytestmark = pytest.mark.skipif(under_asan(), reason="ASan replaces glibc's malloc, whose thresholds this checks")

PROBE = textwrap.dedent("""
    import ctypes, sys
    import cxxloop

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                     "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Mallinfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "loop":
        cxxloop.new_event_loop().close()
    before = libc.mallinfo2().hblks
    block = libc.malloc(512 * 1024)
    mmapped = libc.mallinfo2().hblks - before
    libc.free(block)
    print(mmapped)
""")


def mmapped_blocks(mode: str, **env: str) -> int:
    """How many mmapped blocks a 512 KiB malloc made in a fresh process."""
    # Without any malloc setting inherited: importing dask.distributed, as
    # another test does, sets MALLOC_TRIM_THRESHOLD_ in os.environ.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**inherited, **env},
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_without_a_loop_a_large_block_is_mmapped():
    # The control: the probe can see the threshold at glibc's default.
    assert mmapped_blocks("no-loop") == 1


def test_after_a_loop_a_large_block_comes_from_the_heap():
    assert mmapped_blocks("loop") == 0


def test_a_threshold_the_process_chose_is_left_alone():
    assert mmapped_blocks("loop", MALLOC_MMAP_THRESHOLD_=str(128 * 1024)) == 1
