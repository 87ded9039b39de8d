#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <cstdint>

using cxxloop::monotonic_ns;
using cxxloop::monotonic_seconds;
using cxxloop::ns_until;

TEST(Clock, Monotonic) {
    int64_t a = monotonic_ns();
    int64_t b = monotonic_ns();
    EXPECT_LE(a, b);
    double s = monotonic_seconds();
    EXPECT_NEAR(s, double(monotonic_ns()) * 1e-9, 1e-3);
}

TEST(Clock, NsUntilRoundsUpSoWaitsNeverEndEarly) {
    double now = 1000.0;
    // 1.5 microseconds that do not divide exactly in binary floating point.
    int64_t ns = ns_until(now + 1.5e-6, now);
    EXPECT_GE(double(ns) * 1e-9 + now, now + 1.5e-6);
    EXPECT_LE(ns, 1501);
    for (double delta : {1e-9, 3.3e-7, 0.1, 1.0 / 3.0, 2.5}) {
        int64_t wait = ns_until(now + delta, now);
        EXPECT_GE(now + double(wait) * 1e-9, now + delta) << delta;
    }
}

TEST(Clock, NsUntilPastAndFarDeadlines) {
    EXPECT_EQ(ns_until(5.0, 10.0), 0);
    EXPECT_EQ(ns_until(10.0, 10.0), 0);
    EXPECT_EQ(ns_until(1e300, 0.0), INT64_MAX);
    EXPECT_EQ(ns_until(__builtin_inf(), 0.0), INT64_MAX);
}
