// Keeps glibc from returning the heap's top to the kernel after every large
// message.
//
// glibc trims the heap once more than M_TRIM_THRESHOLD bytes at its top are
// free, and that threshold starts at 128 KiB. A loop moving 100 KiB messages
// frees that much several times per message (the received bytes, a stream
// buffer's copies), so each message would shrink the heap with brk() and
// grow it again, paying a page fault for every 4 KiB touched afterwards:
// measured here, that halves a 100 KiB streams echo. glibc raises both
// thresholds by itself once the process frees a block it had mmapped
// (mallopt(3): "dynamic mmap threshold"), which most programs doing large
// I/O soon do by chance; this does it once, on purpose.
#pragma once

namespace cxxloop {

// Called when a loop is made; only the first call does anything. A no-op
// outside glibc, and when the process set any malloc threshold itself
// (environment or mallopt), which turns glibc's dynamic adjustment off.
void raise_heap_trim_threshold() noexcept;

}  // namespace cxxloop
