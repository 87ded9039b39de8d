// The slow-callback watch: what the loop's thread and a watchdog thread
// share (cxxloop.watch(); the Watchdog type is in loop_watch.cpp).
//
// The loop's thread reads no clock for it. Around each callback it bumps
// `seq` (odd while a callback runs, even between callbacks); the watchdog
// thread, without the GIL, looks at `seq` every tick, and a callback whose
// seq it keeps seeing for `threshold` is slow: it marks it in `flagged`,
// which the loop's thread compares with the callback's seq when it ends.
// So a reported callback ran at least the threshold; one that ran a tick
// longer than that is always reported. The watchdog then takes the GIL to
// sample the loop's thread's stack, and again after `report_after` to
// report the callback while it still runs.
#pragma once

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "loop.hpp"

namespace cxxloop::py {

struct CoreLoop;

struct WatchShared {
    // Written by the loop's thread and read by the watchdog's, on one cache
    // line: the watchdog reads it once a tick.
    alignas(64) std::atomic<uint64_t> seq{0};
    // Written by the watchdog: the seq of the callback found slow, and when
    // the watchdog first saw it running (monotonic ns).
    std::atomic<uint64_t> flagged{0};
    std::atomic<int64_t> flagged_since{0};

    // Under `mu`: the watchdog's settings, and `generation`, which a new
    // watch of the loop, a stopped watch and the loop's end each change, so
    // that the watchdog of an earlier generation stops.
    alignas(64) std::mutex mu;
    std::condition_variable changed;
    uint64_t generation = 0;
    int64_t threshold_ns = 0;
    int64_t report_after_ns = 0;  // 0: no report while running
    int64_t tick_ns = 0;

    // Under the GIL, read by the watchdog when it holds it.
    CoreLoop* loop = nullptr;      // null once the loop is gone
    PyObject* running = nullptr;   // the entry running now (borrowed)
    int refs = 1;                  // the loop's and each Watchdog's
    pid_t pid = getpid();          // whose watchdog thread it is

    // A new generation: the watchdog of the previous one wakes and stops.
    uint64_t next_generation() {
        if (getpid() != pid) {
            // A forked child: the watchdog thread stayed in the parent,
            // maybe holding `mu` as it forked.
            return ++generation;
        }
        uint64_t g;
        {
            std::lock_guard<std::mutex> lock(mu);
            g = ++generation;
        }
        changed.notify_all();
        return g;
    }
};

// Drops a reference; with the GIL.
inline void release_watch(WatchShared* w) {
    if (--w->refs == 0) delete w;
}

// The watched part of run_observed: marks `entry` running, and returns the
// seq it runs as, or 0 for a callback run inside another one (loop._run_once
// from a callback), which the outer one's watch covers.
inline uint64_t watch_begin(WatchShared& w, PyObject* entry) noexcept {
    if (w.running) return 0;
    w.running = entry;
    uint64_t seq = w.seq.load(std::memory_order_relaxed) + 1;
    w.seq.store(seq, std::memory_order_release);
    return seq;
}

// Marks the end of the callback that began as `seq`; true if the watchdog
// found it slow.
inline bool watch_end(WatchShared& w, uint64_t seq) noexcept {
    w.running = nullptr;
    w.seq.store(seq + 1, std::memory_order_release);
    return w.flagged.load(std::memory_order_acquire) == seq;
}

// run_once's way to run a callback while timing or watching, `Run` being
// its way to run one otherwise. Inline: while only watched (the common
// case in production), this runs per callback.
template <int (*Run)(CoreLoop*, PyObject*)>
[[gnu::always_inline]] inline int run_observed(CoreLoop* self, PyObject* entry) {
    LoopStats& st = self->s.stats;
    if (st.timing) return run_timed(self, entry);
    // The watch outlives anything the callback does (LoopStats::watch).
    WatchShared& w = *st.watch;
    uint64_t seq = watch_begin(w, entry);
    int rc = Run(self, entry);
    if (seq && watch_end(w, seq)) [[unlikely]] return report_slow(self, entry, seq, 0, rc);
    return rc;
}

int init_watchdog_type(PyObject* module);

}  // namespace cxxloop::py
