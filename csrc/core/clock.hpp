// Monotonic clock shared by the loop and its timers.
//
// loop.time() must equal time.monotonic(), which on Linux reads
// CLOCK_MONOTONIC; reading the same clock here keeps the two comparable.
#pragma once

#include <cstdint>
#include <ctime>

namespace cxxloop {

inline int64_t monotonic_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline double monotonic_seconds() noexcept {
    return double(monotonic_ns()) * 1e-9;
}

// Nanoseconds from `now` until `when` (both in seconds), rounded up so a
// wait of this length never returns before `when`.
inline int64_t ns_until(double when, double now) noexcept {
    double delta = (when - now) * 1e9;
    if (!(delta > 0.0)) return 0;
    if (delta >= 9.0e18) return INT64_MAX;
    int64_t ns = int64_t(delta);
    return double(ns) < delta ? ns + 1 : ns;
}

}  // namespace cxxloop
