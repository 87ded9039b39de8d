// Cross-thread wake-up of a loop blocked in its poller (eventfd).
//
// signal() is called by call_soon_threadsafe from any thread; the pending
// flag keeps a burst of calls down to one write until the loop drains.
#pragma once

#include <atomic>

namespace cxxloop {

class Wakeup {
public:
    Wakeup() = default;
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;
    ~Wakeup() { close(); }

    // Returns 0 or a negative errno.
    int open();
    void close() noexcept;
    int fd() const noexcept { return fd_; }

    // Any thread. Async-signal-safe.
    void signal() noexcept;
    // Loop thread, when fd() is readable. Clears the counter first and the
    // flag second, so a signal racing with drain is never lost.
    void drain() noexcept;

private:
    int fd_ = -1;
    std::atomic<bool> pending_{false};
};

}  // namespace cxxloop
