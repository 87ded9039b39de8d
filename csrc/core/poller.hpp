// The I/O readiness interface the loop is written against.
//
// epoll is the one poller; a kqueue or io_uring poller would implement the same
// four operations so the loop never changes when one is added.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace cxxloop {

enum Interest : uint32_t {
    kReadable = 1u << 0,
    kWritable = 1u << 1,
    // Only in PollEvent::ready: the peer shut its side down or the fd
    // failed. An edge-triggered reader needs it: data and FIN that arrive
    // together give one edge, and the short read of the data must not be
    // taken to mean "nothing left", or the EOF is never seen.
    kHangup = 1u << 2,
};

struct PollEvent {
    uint64_t token;   // what the caller registered the fd with
    uint32_t ready;   // kReadable | kWritable (errors and hang-ups set both) | kHangup
};

class Poller {
public:
    virtual ~Poller() = default;

    // Each returns 0 or a negative errno. `interest` is a mask of Interest;
    // `edge` selects edge-triggered notification (transports) instead of
    // level-triggered (add_reader / add_writer).
    virtual int add(int fd, uint32_t interest, uint64_t token, bool edge) = 0;
    virtual int modify(int fd, uint32_t interest, uint64_t token, bool edge) = 0;
    virtual int remove(int fd) = 0;

    // Waits up to timeout_ns (negative: forever) and fills at most `cap`
    // events. Returns the count, or a negative errno (-EINTR included).
    virtual int wait(int64_t timeout_ns, PollEvent* out, size_t cap) = 0;
};

// Returns nullptr and sets errno if the kernel refuses.
std::unique_ptr<Poller> make_epoll_poller();

}  // namespace cxxloop
