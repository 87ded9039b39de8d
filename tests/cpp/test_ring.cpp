#include "core/ring.hpp"

#include <gtest/gtest.h>

#include <memory>

using cxxloop::Ring;

TEST(Ring, FifoOrderAcrossGrowth) {
    Ring<int> r;
    for (int i = 0; i < 1000; ++i) r.push_back(i);
    EXPECT_EQ(r.size(), 1000u);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(r.pop_front(), i);
    EXPECT_TRUE(r.empty());
}

TEST(Ring, WrapsAroundWithoutLosingOrder) {
    Ring<int> r;
    int next_in = 0, next_out = 0;
    // Keep the ring partly full while head and tail pass the capacity many times.
    for (int round = 0; round < 100; ++round) {
        for (int i = 0; i < 50; ++i) r.push_back(next_in++);
        for (int i = 0; i < 45; ++i) EXPECT_EQ(r.pop_front(), next_out++);
    }
    EXPECT_EQ(r.size(), size_t(next_in - next_out));
    for (size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], next_out + int(i));
}

TEST(Ring, SwapExchangesContents) {
    Ring<int> a, b;
    a.push_back(1);
    a.push_back(2);
    b.push_back(9);
    a.swap(b);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(a.pop_front(), 9);
    EXPECT_EQ(b.pop_front(), 1);
    EXPECT_EQ(b.pop_front(), 2);
}

TEST(Ring, MoveOnlyElementsSurviveGrowth) {
    Ring<std::unique_ptr<int>> r;
    for (int i = 0; i < 200; ++i) r.push_back(std::make_unique<int>(i));
    for (int i = 0; i < 200; ++i) EXPECT_EQ(*r.pop_front(), i);
}
