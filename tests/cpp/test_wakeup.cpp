#include "core/wakeup.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/poller.hpp"

using namespace cxxloop;

TEST(Wakeup, SignalMakesFdReadableAndDrainClearsIt) {
    Wakeup w;
    ASSERT_EQ(w.open(), 0);
    auto p = make_epoll_poller();
    ASSERT_EQ(p->add(w.fd(), kReadable, 1, false), 0);
    PollEvent ev[1];
    EXPECT_EQ(p->wait(0, ev, 1), 0);
    w.signal();
    w.signal();  // coalesced with the first
    EXPECT_EQ(p->wait(0, ev, 1), 1);
    w.drain();
    EXPECT_EQ(p->wait(0, ev, 1), 0);
    w.signal();  // a signal after drain wakes again
    EXPECT_EQ(p->wait(0, ev, 1), 1);
}

TEST(Wakeup, ManyThreadsWakeABlockedPoller) {
    Wakeup w;
    ASSERT_EQ(w.open(), 0);
    auto p = make_epoll_poller();
    ASSERT_EQ(p->add(w.fd(), kReadable, 1, false), 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&] {
            for (int k = 0; k < 1000; ++k) w.signal();
        });
    }
    PollEvent ev[1];
    EXPECT_EQ(p->wait(5'000'000'000, ev, 1), 1);
    for (auto& t : threads) t.join();
    w.drain();
    EXPECT_EQ(p->wait(0, ev, 1), 0);
}

// A producer publishes work, then signals; the consumer drains, then looks
// for work. Every published item must be seen without a further signal:
// that is the ordering call_soon_threadsafe relies on.
TEST(Wakeup, NoLostWakeup) {
    Wakeup w;
    ASSERT_EQ(w.open(), 0);
    auto p = make_epoll_poller();
    ASSERT_EQ(p->add(w.fd(), kReadable, 1, false), 0);
    constexpr int kItems = 20000;
    std::atomic<int> published{0};
    std::thread producer([&] {
        for (int i = 0; i < kItems; ++i) {
            published.fetch_add(1, std::memory_order_release);
            w.signal();
        }
    });
    int consumed = 0;
    PollEvent ev[1];
    while (consumed < kItems) {
        int n = p->wait(5'000'000'000, ev, 1);
        ASSERT_EQ(n, 1) << "consumer stalled at " << consumed;
        w.drain();
        consumed = published.load(std::memory_order_acquire);
    }
    producer.join();
    EXPECT_EQ(consumed, kItems);
}

TEST(Wakeup, CloseIsIdempotent) {
    Wakeup w;
    ASSERT_EQ(w.open(), 0);
    EXPECT_GE(w.fd(), 0);
    w.close();
    EXPECT_EQ(w.fd(), -1);
    w.close();
}
