#include "wakeup.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace cxxloop {

int Wakeup::open() {
    fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd_ < 0 ? -errno : 0;
}

void Wakeup::close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Wakeup::signal() noexcept {
    if (pending_.exchange(true, std::memory_order_acq_rel)) return;
    uint64_t one = 1;
    // EAGAIN means the counter is saturated, which still wakes the loop.
    ssize_t r;
    do {
        r = write(fd_, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
}

void Wakeup::drain() noexcept {
    uint64_t value;
    ssize_t r;
    do {
        r = read(fd_, &value, sizeof value);
    } while (r < 0 && errno == EINTR);
    pending_.store(false, std::memory_order_release);
}

}  // namespace cxxloop
