// RateLimiter (issue 15): two buckets, the timer a throttled device waits on, PATCH semantics and
// the saved state. The buckets' arithmetic is TokenBucket's (token_bucket_test.cpp); these tests
// run on the real clock with limits far from the test's own timing (bounds one way only).
#include "base/rate_limiter.h"

#include <poll.h>

#include <chrono>

#include <gtest/gtest.h>

#include "base/state_archive.h"

namespace vireo {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Whether the limiter's timer fires within `limit`.
bool timer_fires(const RateLimiter& r, milliseconds limit) {
    pollfd p{r.timer_fd(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

std::unique_ptr<RateLimiter> make(const RateLimiterConfig& c) {
    auto r = RateLimiter::create(c);
    EXPECT_TRUE(r) << r.error().message();
    return std::move(r.value());
}

TEST(RateLimiter, UnlimitedAlwaysSaysYes) {
    auto r = make({});
    EXPECT_FALSE(r->limits());
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(r->consume(std::uint64_t{1} << 40, 1000));
    }
    EXPECT_FALSE(r->blocked());
    EXPECT_FALSE(timer_fires(*r, milliseconds(0)));
    // A bucket of size 0 or refill time 0 is no limit either.
    auto z = make({.bandwidth = BucketConfig{0, 0, 100}, .ops = BucketConfig{10, 0, 0}});
    EXPECT_FALSE(z->limits());
    EXPECT_TRUE(z->consume(1 << 30, 1 << 20));
}

TEST(RateLimiter, OpsLimitBlocksAndTheTimerUnblocks) {
    // 2 ops per 200 ms: the third request waits about 100 ms for its token.
    auto r = make({.ops = BucketConfig{2, 0, 200}});
    ASSERT_TRUE(r->limits());
    EXPECT_TRUE(r->consume(4096));
    EXPECT_TRUE(r->consume(4096));
    const auto t0 = Clock::now();
    EXPECT_FALSE(r->consume(4096));
    EXPECT_TRUE(r->blocked());
    // While blocked every request is refused at once and counted, the timer still armed.
    EXPECT_FALSE(r->consume(1));
    EXPECT_EQ(r->counters().throttled_events, 2U);
    ASSERT_TRUE(timer_fires(*r, milliseconds(5000)));
    EXPECT_GE(Clock::now() - t0, milliseconds(90));
    r->on_timer();
    EXPECT_FALSE(r->blocked());
    EXPECT_EQ(r->counters().timer_events, 1U);
    EXPECT_TRUE(r->consume(4096));
}

TEST(RateLimiter, TheCoarseClockLagsAndTheTimersTokenIsThereOnTime) {
    // consume() refills against CLOCK_MONOTONIC_COARSE first (never ahead of the precise clock,
    // at most a few ticks behind), then against the precise clock before it refuses: so a
    // request retried when the timer fires always finds the token it waited for, although the
    // coarse clock may not have reached that moment yet (1 op per 10 ms; the tick is 1-4 ms).
    const auto coarse = RateLimiter::coarse_now();
    const auto precise = Clock::now();
    EXPECT_LE(coarse, precise);
    EXPECT_LT(precise - coarse, milliseconds(1000));
    auto r = make({.ops = BucketConfig{1, 0, 10}});
    ASSERT_TRUE(r->consume(1));
    for (int i = 0; i < 20; ++i) {
        ASSERT_FALSE(r->consume(1)) << i;
        ASSERT_TRUE(timer_fires(*r, milliseconds(5000))) << i;
        r->on_timer();
        ASSERT_TRUE(r->consume(1)) << "the token the timer waited for is missing, round " << i;
    }
}

TEST(RateLimiter, ShortBandwidthGivesTheOpBack) {
    auto r = make({.bandwidth = BucketConfig{1000, 0, 1000}, .ops = BucketConfig{10, 0, 1000}});
    EXPECT_TRUE(r->consume(1000));
    EXPECT_FALSE(r->consume(500));  // bytes short: the op it took goes back
    const auto s = r->state();
    ASSERT_TRUE(s.ops && s.bandwidth);
    EXPECT_EQ(s.ops->budget, 9U);
    EXPECT_LE(s.bandwidth->budget, 10U);  // refilled a little at most
}

TEST(RateLimiter, ARequestBeyondTheBucketGoesThroughOnce) {
    auto r = make({.bandwidth = BucketConfig{1000, 0, 1000}});
    EXPECT_TRUE(r->consume(1 << 20));  // big I/O never deadlocks
    EXPECT_FALSE(r->consume(1));       // and the bucket is empty (with a debt) after it
}

TEST(RateLimiter, OneTimeBurstIsSpentFirst) {
    auto r = make({.bandwidth = BucketConfig{100, 1000, 100000}});
    EXPECT_TRUE(r->consume(1000));  // the burst
    EXPECT_TRUE(r->consume(100));   // the bucket
    EXPECT_FALSE(r->consume(100));
}

TEST(RateLimiter, UpdateReplacesRemovesOrKeepsBuckets) {
    auto r = make({.bandwidth = BucketConfig{1000, 0, 100000}, .ops = BucketConfig{5, 0, 100000}});
    EXPECT_TRUE(r->consume(1000));
    // No bucket named: nothing changes.
    r->update({});
    EXPECT_FALSE(r->consume(1));
    r->on_timer();  // (a test shortcut: pretend the timer fired)
    // A new bandwidth bucket is fresh and full, its burst armed; ops stay as they were.
    r->update({.bandwidth = BucketConfig{2000, 500, 100000}});
    auto s = r->state();
    ASSERT_TRUE(s.bandwidth && s.ops);
    EXPECT_EQ(s.bandwidth->budget, 2000U);
    EXPECT_EQ(s.bandwidth->one_time_burst, 500U);
    EXPECT_EQ(s.ops->budget, 4U);
    // Size 0 removes a bucket.
    r->update({.ops = BucketConfig{0, 0, 0}});
    EXPECT_FALSE(r->state().ops);
    EXPECT_TRUE(r->limits());
}

TEST(RateLimiter, UpdateWakesABlockedDevice) {
    auto r = make({.bandwidth = BucketConfig{1000, 0, 3600 * 1000}});  // one refill an hour
    EXPECT_TRUE(r->consume(1000));
    EXPECT_FALSE(r->consume(1000));
    ASSERT_TRUE(r->blocked());
    // Lifting the limit fires the timer at once, so the device serves its queue again.
    r->update({.bandwidth = BucketConfig{}});
    ASSERT_TRUE(timer_fires(*r, milliseconds(2000)));
    r->on_timer();
    EXPECT_TRUE(r->consume(1 << 30));
    EXPECT_FALSE(r->limits());
}

TEST(RateLimiter, StateRoundTripRestoresUnblockedWithTheTimerDisarmed) {
    auto a =
        make({.bandwidth = BucketConfig{1000, 300, 3600 * 1000}, .ops = BucketConfig{7, 0, 1}});
    EXPECT_TRUE(a->consume(900, 3));
    EXPECT_FALSE(a->consume(1000));
    ASSERT_TRUE(a->blocked());
    const RateLimiterState saved = a->state();
    auto b = make({});
    ASSERT_TRUE(b->restore(saved));
    EXPECT_FALSE(b->blocked());
    EXPECT_FALSE(timer_fires(*b, milliseconds(300)));
    const auto s = b->state();
    ASSERT_TRUE(s.bandwidth && s.ops);
    EXPECT_EQ(s.bandwidth->budget, saved.bandwidth->budget);
    EXPECT_EQ(s.bandwidth->one_time_burst, 0U);
    EXPECT_EQ(s.bandwidth->initial_one_time_burst, 300U);
    EXPECT_EQ(s.ops->size, 7U);
    // Through the archive, as a snapshot carries it.
    RateLimiterState copy = saved;
    auto bytes = save_to_bytes(copy);
    auto loaded = load_from_bytes<RateLimiterState>(bytes);
    ASSERT_TRUE(loaded);
    ASSERT_TRUE(loaded->bandwidth);
    EXPECT_EQ(loaded->bandwidth->budget, saved.bandwidth->budget);
    EXPECT_EQ(loaded->ops->size, 7U);
}

TEST(RateLimiter, RestoreRefusesANonsenseStateAndKeepsItsBuckets) {
    auto r = make({.ops = BucketConfig{3, 0, 1000}});
    RateLimiterState bad;
    bad.bandwidth = TokenBucketState{.size = 0, .refill_time_ms = 100};
    auto res = r->restore(bad);
    ASSERT_FALSE(res);
    EXPECT_NE(res.error().message().find("bandwidth"), std::string::npos);
    ASSERT_TRUE(r->state().ops);
    EXPECT_EQ(r->state().ops->size, 3U);
}

}  // namespace
}  // namespace vireo
