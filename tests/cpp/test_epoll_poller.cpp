#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "core/clock.hpp"
#include "core/poller.hpp"

using namespace cxxloop;

namespace {

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        EXPECT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        if (r >= 0) close(r);
        if (w >= 0) close(w);
    }
};

std::unique_ptr<Poller> poller() {
    auto p = make_epoll_poller();
    EXPECT_NE(p, nullptr);
    return p;
}

}  // namespace

TEST(EpollPoller, ReadableEventCarriesToken) {
    auto p = poller();
    Pipe pipe;
    ASSERT_EQ(p->add(pipe.r, kReadable, 77, false), 0);
    PollEvent ev[4];
    EXPECT_EQ(p->wait(0, ev, 4), 0);
    ASSERT_EQ(write(pipe.w, "x", 1), 1);
    ASSERT_EQ(p->wait(-1, ev, 4), 1);
    EXPECT_EQ(ev[0].token, 77u);
    EXPECT_EQ(ev[0].ready, uint32_t(kReadable));
}

TEST(EpollPoller, LevelTriggeredReportsUntilDrained) {
    auto p = poller();
    Pipe pipe;
    ASSERT_EQ(p->add(pipe.r, kReadable, 1, false), 0);
    ASSERT_EQ(write(pipe.w, "x", 1), 1);
    PollEvent ev[4];
    EXPECT_EQ(p->wait(0, ev, 4), 1);
    EXPECT_EQ(p->wait(0, ev, 4), 1);
    char c;
    ASSERT_EQ(read(pipe.r, &c, 1), 1);
    EXPECT_EQ(p->wait(0, ev, 4), 0);
}

TEST(EpollPoller, EdgeTriggeredReportsOncePerArrival) {
    auto p = poller();
    Pipe pipe;
    ASSERT_EQ(p->add(pipe.r, kReadable, 1, true), 0);
    ASSERT_EQ(write(pipe.w, "x", 1), 1);
    PollEvent ev[4];
    EXPECT_EQ(p->wait(0, ev, 4), 1);
    EXPECT_EQ(p->wait(0, ev, 4), 0);  // still readable, but no new edge
    ASSERT_EQ(write(pipe.w, "y", 1), 1);
    EXPECT_EQ(p->wait(0, ev, 4), 1);
}

TEST(EpollPoller, ModifyAndRemove) {
    auto p = poller();
    Pipe pipe;
    ASSERT_EQ(p->add(pipe.w, kReadable, 5, false), 0);
    PollEvent ev[4];
    EXPECT_EQ(p->wait(0, ev, 4), 0);
    ASSERT_EQ(p->modify(pipe.w, kWritable, 6, false), 0);
    ASSERT_EQ(p->wait(0, ev, 4), 1);
    EXPECT_EQ(ev[0].token, 6u);
    EXPECT_EQ(ev[0].ready, uint32_t(kWritable));
    ASSERT_EQ(p->remove(pipe.w), 0);
    EXPECT_EQ(p->wait(0, ev, 4), 0);
}

TEST(EpollPoller, ErrorsAreNegativeErrno) {
    auto p = poller();
    Pipe pipe;
    EXPECT_EQ(p->add(-1, kReadable, 0, false), -EBADF);
    EXPECT_EQ(p->modify(pipe.r, kReadable, 0, false), -ENOENT);
    EXPECT_EQ(p->remove(pipe.r), -ENOENT);
    ASSERT_EQ(p->add(pipe.r, kReadable, 0, false), 0);
    EXPECT_EQ(p->add(pipe.r, kReadable, 0, false), -EEXIST);
}

// A hang-up wakes a reader and a writer, and is flagged so an
// edge-triggered reader keeps reading until it sees EOF.
TEST(EpollPoller, HangupWakesBothDirections) {
    auto p = poller();
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(p->add(sv[0], kReadable, 3, false), 0);
    close(sv[1]);
    PollEvent ev[4];
    ASSERT_EQ(p->wait(0, ev, 4), 1);
    EXPECT_EQ(ev[0].ready, uint32_t(kReadable | kWritable | kHangup));
    close(sv[0]);
}

TEST(EpollPoller, TimeoutIsHonouredAndNeverEarly) {
    auto p = poller();
    PollEvent ev[1];
    for (int64_t timeout : {int64_t(1'500'000), int64_t(250'000), int64_t(10'000'000)}) {
        int64_t t0 = monotonic_ns();
        EXPECT_EQ(p->wait(timeout, ev, 1), 0);
        int64_t elapsed = monotonic_ns() - t0;
        EXPECT_GE(elapsed, timeout);
        EXPECT_LT(elapsed, timeout + 500'000'000);  // generous: shared CI machine
    }
}

TEST(EpollPoller, CapacityLimitsOneWait) {
    auto p = poller();
    Pipe a, b, c;
    for (Pipe* pp : {&a, &b, &c}) {
        ASSERT_EQ(p->add(pp->w, kWritable, uint64_t(pp->w), false), 0);
    }
    PollEvent ev[2];
    EXPECT_EQ(p->wait(0, ev, 2), 2);
}

namespace {
void on_alarm(int) {}
}  // namespace

TEST(EpollPoller, SignalInterruptsWithEintr) {
    auto p = poller();
    struct sigaction sa {};
    sa.sa_handler = on_alarm;  // no SA_RESTART: epoll_wait is never restarted anyway
    struct sigaction old {};
    ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
    itimerval timer{};
    timer.it_value.tv_usec = 20'000;
    ASSERT_EQ(setitimer(ITIMER_REAL, &timer, nullptr), 0);
    PollEvent ev[1];
    EXPECT_EQ(p->wait(5'000'000'000, ev, 1), -EINTR);
    sigaction(SIGALRM, &old, nullptr);
}
