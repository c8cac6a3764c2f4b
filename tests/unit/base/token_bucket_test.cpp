// TokenBucket (issue 15): Firecracker's rate-limiter semantics with the clock driven by the test.
#include "base/token_bucket.h"

#include <limits>

#include <gtest/gtest.h>

namespace vireo {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using R = TokenBucket::Reduction;

const TokenBucket::TimePoint t0{};

TEST(TokenBucket, ZeroSizeOrRefillTimeMeansNoLimit) {
    EXPECT_FALSE(TokenBucket::create(0, 0, 100, t0));
    EXPECT_FALSE(TokenBucket::create(1000, 0, 0, t0));
    EXPECT_FALSE(TokenBucket::create(1000, 0, std::numeric_limits<std::uint64_t>::max(), t0));
    EXPECT_TRUE(TokenBucket::create(1, 0, 1, t0));
}

TEST(TokenBucket, StartsFullAndRefillsEvenly) {
    auto b = TokenBucket::create(1000, 0, 1000, t0).value();  // 1000 tokens per second
    EXPECT_EQ(b.reduce(1000, t0), R::Success);
    EXPECT_EQ(b.reduce(1, t0), R::Failure);
    EXPECT_EQ(b.wait_for(1, t0), milliseconds(1));
    EXPECT_EQ(b.wait_for(250, t0), milliseconds(250));
    EXPECT_EQ(b.reduce(250, t0 + milliseconds(249)), R::Failure);
    EXPECT_EQ(b.reduce(250, t0 + milliseconds(250)), R::Success);
    // Never beyond full, however long it waits.
    EXPECT_EQ(b.reduce(1001, t0 + std::chrono::hours(1)), R::OverConsumption);
    EXPECT_EQ(b.budget(), 0U);
}

// Fractions of a token carry over: 3 tokens per 10 ms asked in 1 ms steps still make 3 per 10 ms.
TEST(TokenBucket, FractionsOfATokenCarryOver) {
    auto b = TokenBucket::create(3, 0, 10, t0).value();
    ASSERT_EQ(b.reduce(3, t0), R::Success);
    int got = 0;
    for (int ms = 1; ms <= 1000; ++ms) {
        if (b.reduce(1, t0 + milliseconds(ms)) == R::Success) {
            ++got;
        }
    }
    EXPECT_EQ(got, 300);
}

TEST(TokenBucket, OneTimeBurstIsSpentFirstAndNeverRefills) {
    auto b = TokenBucket::create(100, 500, 1000, t0).value();
    EXPECT_EQ(b.reduce(450, t0), R::Success);
    EXPECT_EQ(b.one_time_burst(), 50U);
    EXPECT_EQ(b.budget(), 100U);
    EXPECT_EQ(b.reduce(120, t0), R::Success);  // 50 from the burst, 70 from the bucket
    EXPECT_EQ(b.one_time_burst(), 0U);
    EXPECT_EQ(b.budget(), 30U);
    (void)b.reduce(30, t0);
    EXPECT_EQ(b.reduce(100, t0 + std::chrono::seconds(10)), R::Success);
    EXPECT_EQ(b.one_time_burst(), 0U);
}

// A request the burst and bucket cannot cover now takes nothing from either.
TEST(TokenBucket, AFailedRequestSpendsNoBurst) {
    // 5 tokens of burst left and 3 in the bucket (a restored state: a live bucket spends its
    // burst before its budget).
    TokenBucketState s{.size = 10,
                       .refill_time_ms = 1000,
                       .initial_one_time_burst = 20,
                       .one_time_burst = 5,
                       .budget = 3,
                       .debt = 0};
    auto b = TokenBucket::restore(s, t0).value();
    EXPECT_EQ(b.reduce(10, t0), R::Failure);
    EXPECT_EQ(b.one_time_burst(), 5U);
    EXPECT_EQ(b.budget(), 3U);
    EXPECT_EQ(b.wait_for(10, t0), milliseconds(200));  // 2 more tokens at 10 per second
    EXPECT_EQ(b.reduce(10, t0 + milliseconds(200)), R::Success);
    EXPECT_EQ(b.one_time_burst(), 0U);
    EXPECT_EQ(b.budget(), 0U);
}

// Bigger than the bucket: let through (no deadlock), and paid for before anything else passes.
TEST(TokenBucket, OverConsumptionPassesOnceAndIsPaidBack) {
    auto b = TokenBucket::create(1000, 0, 1000, t0).value();
    EXPECT_EQ(b.reduce(3000, t0), R::OverConsumption);
    EXPECT_EQ(b.budget(), 0U);
    // 2000 owed beyond the full bucket, then 1 more: 2.001 s.
    EXPECT_EQ(b.wait_for(1, t0), milliseconds(2001));
    EXPECT_EQ(b.reduce(1, t0 + milliseconds(2000)), R::Failure);
    EXPECT_EQ(b.reduce(1, t0 + milliseconds(2001)), R::Success);
    // And it passes again at once however much is owed: never a deadlock.
    EXPECT_EQ(b.reduce(5000, t0 + milliseconds(2001)), R::OverConsumption);
    EXPECT_EQ(b.wait_for(5000, t0 + milliseconds(2001)), nanoseconds(0));
}

TEST(TokenBucket, GiveBackRestoresWithoutOverfilling) {
    auto b = TokenBucket::create(100, 0, 1000, t0).value();
    ASSERT_EQ(b.reduce(60, t0), R::Success);
    b.give_back(60);
    EXPECT_EQ(b.budget(), 100U);
    b.give_back(1000);
    EXPECT_EQ(b.budget(), 100U);
    auto burst = TokenBucket::create(100, 50, 1000, t0).value();
    ASSERT_EQ(burst.reduce(30, t0), R::Success);
    burst.give_back(std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(burst.one_time_burst(), 50U);
}

TEST(TokenBucket, HugeValuesNeitherOverflowNorWrap) {
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    auto b = TokenBucket::create(kMax, kMax, 1, t0).value();
    EXPECT_EQ(b.reduce(kMax, t0), R::Success);  // the burst
    EXPECT_EQ(b.reduce(kMax, t0), R::Success);  // the bucket
    EXPECT_EQ(b.reduce(1, t0), R::Failure);
    EXPECT_EQ(b.reduce(kMax, t0 + milliseconds(1)), R::Success);
    auto slow = TokenBucket::create(1, 0, kMax / 1'000'000, t0).value();
    ASSERT_EQ(slow.reduce(1, t0), R::Success);
    EXPECT_GT(slow.wait_for(1, t0), std::chrono::hours(24 * 365));
    EXPECT_EQ(slow.reduce(kMax, t0), R::OverConsumption);  // the debt saturates, no wrap
    EXPECT_EQ(slow.reduce(kMax, t0), R::OverConsumption);
    EXPECT_EQ(slow.budget(), 0U);
}

TEST(TokenBucket, StateRoundTripsAndRestoreClampsNonsense) {
    auto b = TokenBucket::create(100, 40, 1000, t0).value();
    ASSERT_EQ(b.reduce(70, t0), R::Success);  // 40 burst + 30
    const TokenBucketState s = b.state();
    EXPECT_EQ(s.budget, 70U);
    EXPECT_EQ(s.one_time_burst, 0U);
    auto r = TokenBucket::restore(s, t0 + std::chrono::hours(5)).value();
    EXPECT_EQ(r.budget(), 70U);  // the refill clock restarts at the restore
    EXPECT_EQ(r.state().initial_one_time_burst, 40U);
    TokenBucketState bad = s;
    bad.budget = 1'000'000;
    bad.one_time_burst = 999;
    auto c = TokenBucket::restore(bad, t0).value();
    EXPECT_EQ(c.budget(), 100U);
    EXPECT_EQ(c.one_time_burst(), 40U);
    bad.size = 0;
    EXPECT_FALSE(TokenBucket::restore(bad, t0));
}

}  // namespace
}  // namespace vireo
