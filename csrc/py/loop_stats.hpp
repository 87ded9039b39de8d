// The loop's own counters and histograms (loop.stats()), kept where the
// loop already is: a few integers in LoopState that the hot path adds to.
//
// While stats are on, each site pays a plain increment on the loop's
// struct; while off, the one test of LoopStats::on (the callback count is
// added without a test: `on` is 0 or 1). Nothing here reads the clock
// except callback timing (LoopStats::timing), which reads it once per
// callback; the lag of timers uses the time the loop already took to find
// them due. The slow-callback watch (loop_watch.hpp) needs no clock on the
// loop's thread either: a watchdog thread watches the callbacks' sequence.
// Timing and watching go through run_observed (loop_watch.hpp).
#pragma once

#include <sys/types.h>

#include <bit>
#include <cstdint>

#include "../core/clock.hpp"
#include "pyref.hpp"

namespace cxxloop::py {

struct CoreLoop;
struct WatchShared;

// Durations in fixed log2 buckets of microseconds: bucket 0 counts those
// under 1 us, bucket k those in [2^(k-1), 2^k) us, the last one everything
// from 2^(kBuckets-2) us (67 s) up. Adding one is a shift and an increment.
struct Histogram {
    static constexpr int kBuckets = 28;
    uint64_t counts[kBuckets] = {};
    uint64_t sum_ns = 0;

    void add(int64_t ns) noexcept {
        uint64_t n = ns > 0 ? uint64_t(ns) : 0;
        int k = std::bit_width(n / 1000);
        counts[k < kBuckets ? k : kBuckets - 1]++;
        sum_ns += n;
    }
    // The upper bound of bucket k in seconds (the last one has none).
    static double bound(int k) noexcept { return double(uint64_t(1) << k) * 1e-6; }
};

struct LoopStats {
    LoopStats() = default;
    LoopStats(const LoopStats&) = delete;
    LoopStats& operator=(const LoopStats&) = delete;
    ~LoopStats();  // lets a watchdog know the loop is gone

    bool on = true;         // counters kept (set_stats); a watch needs them
    bool timing = false;    // each callback's duration measured (set_stats(timing=True))
    bool watching = false;  // a watchdog watches `watch`
    bool per_callback = false;  // timing || watching: callbacks go through run_observed

    void set_modes(bool on_, bool timing_, bool watching_) noexcept {
        on = on_;
        timing = timing_;
        watching = watching_;
        per_callback = timing || watching;
    }

    uint64_t iterations = 0;
    uint64_t callbacks = 0;  // handles and transports' I/O callbacks run
    uint64_t timers_scheduled = 0;
    uint64_t timers_fired = 0;
    uint64_t timers_cancelled = 0;  // cancelled while still scheduled
    uint64_t io_events = 0;         // fd events the poller reported
    uint64_t bytes_read = 0;        // by transports
    uint64_t bytes_written = 0;
    uint64_t slow_callbacks = 0;  // reported by the watch
    Histogram lag;                // how late due timers were found due
    Histogram durations;          // of callbacks, while timing

    // Timing: one clock read per callback, each one's end being the next
    // one's start within a batch (timing_iteration is the batch).
    uint64_t timing_iteration = ~uint64_t(0);
    int64_t timing_last_ns = 0;

    // Made by the first watch of the loop and kept until the loop goes, so
    // that the hot path's pointer stays valid whatever a callback does to
    // its watch; a later watch reuses it. A reference (WatchShared::refs).
    WatchShared* watch = nullptr;

    void reset() noexcept;
};

// Hot-path sites: a test of `on` and an increment.
inline void note_read(LoopStats& st, ssize_t n) noexcept {
    if (st.on && n > 0) st.bytes_read += uint64_t(n);
}
inline void note_written(LoopStats& st, ssize_t n) noexcept {
    if (st.on && n > 0) st.bytes_written += uint64_t(n);
}
// A due timer popped from the heap `lag_seconds` after its deadline (a
// deadline of -inf, or a replaced loop.time, can make that anything).
inline void note_timer_fired(LoopStats& st, double lag_seconds) noexcept {
    if (!st.on) return;
    st.timers_fired++;
    double ns = lag_seconds * 1e9;
    st.lag.add(!(ns > 0) ? 0 : ns < 9.0e18 ? int64_t(ns) : INT64_MAX);
}

// Runs one ready entry (a handle not cancelled, or a transport's I/O) as
// run_once does (loop_run.cpp).
int run_entry(CoreLoop* self, PyObject* entry);
// run_entry while timing: timed, and watched if a watch is set
// (loop_stats.cpp). Returns what run_entry does, or -1 if reporting a slow
// callback raised SystemExit or KeyboardInterrupt. run_observed
// (loop_watch.hpp) calls it.
int run_timed(CoreLoop* self, PyObject* entry);
// The end of a callback the watchdog found slow (see loop_watch.hpp):
// counted, and reported unless the callback's `rc` < 0 unwinds the loop;
// `started_ns` is when it started, if it was timed, else 0.
[[gnu::cold]] int report_slow(CoreLoop* self, PyObject* entry, uint64_t seq, int64_t started_ns, int rc);

// loop.set_stats and the snapshot behind loop.stats().
extern const PyMethodDef loop_stats_methods[];
// _core.HISTOGRAM_BOUNDS, the buckets' upper bounds in seconds.
int init_stats_constants(PyObject* module);

}  // namespace cxxloop::py
