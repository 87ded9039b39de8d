#include "core/timer_heap.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

using cxxloop::TimerHeap;

TEST(TimerHeap, PopsInDeadlineOrder) {
    TimerHeap<int> h;
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> when(0.0, 100.0);
    std::vector<double> deadlines;
    for (int i = 0; i < 5000; ++i) {
        double w = when(rng);
        deadlines.push_back(w);
        h.push(w, i);
    }
    std::sort(deadlines.begin(), deadlines.end());
    for (double expected : deadlines) {
        ASSERT_FALSE(h.empty());
        EXPECT_EQ(h.top().when, expected);
        h.pop();
    }
    EXPECT_TRUE(h.empty());
}

TEST(TimerHeap, EqualDeadlinesAreFifo) {
    TimerHeap<int> h;
    for (int i = 0; i < 100; ++i) h.push(i % 2 ? 1.0 : 2.0, i);
    for (int i = 1; i < 100; i += 2) EXPECT_EQ(h.pop(), i);
    for (int i = 0; i < 100; i += 2) EXPECT_EQ(h.pop(), i);
}

TEST(TimerHeap, ExtractIfKeepsHeapOrder) {
    TimerHeap<int> h;
    for (int i = 0; i < 1000; ++i) h.push(double((i * 7919) % 1000), i);
    auto removed = h.extract_if([](int item) { return item % 3 == 0; });
    EXPECT_EQ(removed.size(), 334u);
    for (const auto& e : removed) EXPECT_EQ(e.item % 3, 0);
    EXPECT_EQ(h.size(), 666u);
    double last = -1.0;
    while (!h.empty()) {
        EXPECT_GE(h.top().when, last);
        last = h.top().when;
        EXPECT_NE(h.pop() % 3, 0);
    }
}

TEST(TimerHeap, TakeAllHandsOverEverything) {
    TimerHeap<int> h;
    for (int i = 0; i < 10; ++i) h.push(double(10 - i), i);
    std::vector<int> seen;
    for (const auto& e : h.take_all()) seen.push_back(e.item);
    EXPECT_TRUE(h.empty());
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(TimerHeap, ForEachVisitsAll) {
    TimerHeap<int> h;
    for (int i = 0; i < 50; ++i) h.push(double(i), i);
    int sum = 0;
    h.for_each([&](int item) { sum += item; });
    EXPECT_EQ(sum, 49 * 50 / 2);
}
