#include "poller.hpp"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>

namespace cxxloop {
namespace {

uint32_t to_epoll(uint32_t interest, bool edge) {
    uint32_t ev = 0;
    if (interest & kReadable) ev |= EPOLLIN;
    if (interest & kWritable) ev |= EPOLLOUT;
    if (edge) ev |= EPOLLET | EPOLLRDHUP;
    return ev;
}

// Like selectors.EpollSelector: an error or hang-up wakes both directions,
// so a reader or writer waiting on the fd gets to see the failure.
uint32_t from_epoll(uint32_t ev) {
    uint32_t ready = 0;
    if (ev & ~uint32_t(EPOLLOUT)) ready |= kReadable;
    if (ev & ~uint32_t(EPOLLIN)) ready |= kWritable;
    if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ready |= kHangup;
    return ready;
}

// epoll_pwait2 (Linux 5.11) takes a nanosecond timeout; older kernels only
// take milliseconds, which we round up so timers never fire early.
std::atomic<bool> have_pwait2{true};

int epoll_wait_ns(int epfd, epoll_event* evs, int cap, int64_t timeout_ns) {
#ifdef SYS_epoll_pwait2
    if (timeout_ns > 0 && have_pwait2.load(std::memory_order_relaxed)) {
        timespec ts{time_t(timeout_ns / 1'000'000'000), long(timeout_ns % 1'000'000'000)};
        long n = syscall(SYS_epoll_pwait2, epfd, evs, cap, &ts, nullptr, 0);
        if (n >= 0 || errno != ENOSYS) return int(n);
        have_pwait2.store(false, std::memory_order_relaxed);
    }
#endif
    int ms;
    if (timeout_ns < 0) {
        ms = -1;
    } else {
        int64_t r = (timeout_ns + 999'999) / 1'000'000;
        ms = r > INT_MAX ? INT_MAX : int(r);
    }
    return epoll_wait(epfd, evs, cap, ms);
}

class EpollPoller final : public Poller {
public:
    explicit EpollPoller(int epfd) : epfd_(epfd) {}
    ~EpollPoller() override { close(epfd_); }

    int add(int fd, uint32_t interest, uint64_t token, bool edge) override {
        return ctl(EPOLL_CTL_ADD, fd, interest, token, edge);
    }
    int modify(int fd, uint32_t interest, uint64_t token, bool edge) override {
        return ctl(EPOLL_CTL_MOD, fd, interest, token, edge);
    }
    int remove(int fd) override {
        epoll_event ev{};
        return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : -errno;
    }

    int wait(int64_t timeout_ns, PollEvent* out, size_t cap) override {
        constexpr int kBatch = 256;
        epoll_event evs[kBatch];
        int want = cap < size_t(kBatch) ? int(cap) : kBatch;
        int n = epoll_wait_ns(epfd_, evs, want, timeout_ns);
        if (n < 0) return -errno;
        for (int i = 0; i < n; ++i) out[i] = PollEvent{evs[i].data.u64, from_epoll(evs[i].events)};
        return n;
    }

private:
    int ctl(int op, int fd, uint32_t interest, uint64_t token, bool edge) {
        epoll_event ev{};
        ev.events = to_epoll(interest, edge);
        ev.data.u64 = token;
        return epoll_ctl(epfd_, op, fd, &ev) == 0 ? 0 : -errno;
    }

    int epfd_;
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller() {
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return nullptr;
    return std::make_unique<EpollPoller>(epfd);
}

}  // namespace cxxloop
