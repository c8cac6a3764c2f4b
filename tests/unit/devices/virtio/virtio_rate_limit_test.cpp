// Rate limiters on the virtio devices (issue 15): a throttled request waits on the ring (never
// failed, never dropped) and is served when the limiter's timer fires; an update (PATCH) wakes a
// blocked queue at once; the buckets travel in the device's saved state. Timings are bounded one
// way only (at least), with limits far from the test's own scheduling noise.
#include <atomic>
#include <chrono>
#include <thread>

#include "base/state_archive.h"
#include "devices/virtio/virtio_rng.h"
#include "virtio_device_fixture.h"

namespace vireo::virtio {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::unique_ptr<RateLimiter> limiter(const RateLimiterConfig& c) {
    auto r = RateLimiter::create(c);
    EXPECT_TRUE(r) << r.error().message();
    return std::move(r.value());
}

// Waits (up to `limit`) for `n` used chains.
bool used_within(const TestRing& ring, const GuestMemory& mem, std::uint16_t n,
                 milliseconds limit) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
        if (ring.used_idx(mem) >= n) {
            return true;
        }
        std::this_thread::sleep_for(milliseconds(1));
    }
    return ring.used_idx(mem) >= n;
}

class VirtioBlkLimitTest : public VirtioBlkTest {
protected:
    // Read sector `sector` into 0x20000 + 0x1000 * i, status at 0x12000 + i.
    void add_read(std::uint16_t i, std::uint64_t sector) {
        header(0x10000 + 0x100ULL * i, kBlkTypeIn, sector);
        rings[0].add(*mem, {{0x10000 + 0x100ULL * i, 16, false},
                            {0x20000 + 0x1000ULL * i, 512, true},
                            {0x12000 + i, 1, true}});
    }
};

TEST_F(VirtioBlkLimitTest, OpsLimitSpreadsRequestsAndServesThemAll) {
    auto blk = open(false);
    // 2 requests per 300 ms: 2 at once, then one every 150 ms.
    blk->set_rate_limiter(limiter({.ops = BucketConfig{2, 0, 300}}));
    ASSERT_TRUE(activate(*blk, 1));
    const auto t0 = Clock::now();
    for (std::uint16_t i = 0; i < 5; ++i) {
        add_read(i, i);
    }
    kicks[0].signal();
    ASSERT_TRUE(used_within(rings[0], *mem, 2, milliseconds(2000)));
    // Kicks while throttled cost a counter, nothing more.
    kicks[0].signal();
    kicks[0].signal();
    ASSERT_TRUE(used_within(rings[0], *mem, 5, milliseconds(5000)));
    EXPECT_GE(Clock::now() - t0, milliseconds(400));
    for (std::uint16_t i = 0; i < 5; ++i) {
        EXPECT_EQ(status(0x12000 + i), kBlkStatusOk) << i;
        EXPECT_EQ(mem->read_obj<std::uint8_t>(GuestAddress{0x20000 + 0x1000ULL * i}).value(), i);
    }
    const std::string metrics = blk->metrics_extra();
    EXPECT_NE(metrics.find("\"rate_limiter_throttled_events\":"), std::string::npos) << metrics;
    EXPECT_GE(blk->rate_limiter()->counters().timer_events, 1U);
    blk->reset();
}

TEST_F(VirtioBlkLimitTest, BandwidthCountsDataBytesAndAnUpdateWakesTheQueue) {
    auto blk = open(false);
    // 1 KiB an hour: two 512-byte reads, then nothing until the limit changes.
    blk->set_rate_limiter(limiter({.bandwidth = BucketConfig{1024, 0, 3600 * 1000}}));
    ASSERT_TRUE(activate(*blk, 1));
    for (std::uint16_t i = 0; i < 4; ++i) {
        add_read(i, 10 + i);
    }
    kicks[0].signal();
    ASSERT_TRUE(used_within(rings[0], *mem, 2, milliseconds(2000)));
    std::this_thread::sleep_for(milliseconds(200));
    EXPECT_EQ(rings[0].used_idx(*mem), 2);  // held back, not failed
    EXPECT_TRUE(blk->rate_limiter()->blocked());
    // A flush carries no data: it still waits behind the blocked queue (in order).
    blk->rate_limiter()->update({.bandwidth = BucketConfig{}});  // PATCH: size 0 lifts it
    ASSERT_TRUE(used_within(rings[0], *mem, 4, milliseconds(2000)));
    for (std::uint16_t i = 0; i < 4; ++i) {
        EXPECT_EQ(status(0x12000 + i), kBlkStatusOk) << i;
    }
    blk->reset();
}

// The worst moment for a PATCH: the VMM thread changes the limits again and again while the device
// thread is consuming, blocking and waking. Every request must still be answered, and answered OK.
TEST_F(VirtioBlkLimitTest, UpdatesWhileTheDeviceServesLoseNoRequest) {
    auto blk = open(false);
    blk->set_rate_limiter(limiter({.ops = BucketConfig{4, 0, 20}}));
    ASSERT_TRUE(activate(*blk, 1));
    std::atomic<bool> stop{false};
    RateLimiter* rl = blk->rate_limiter();
    std::thread patcher([&] {
        for (std::uint64_t i = 0; !stop.load(); ++i) {
            switch (i % 4) {
                case 0:
                    rl->update({.ops = BucketConfig{1, 0, 5}});
                    break;
                case 1:
                    rl->update({.bandwidth = BucketConfig{4096, 512, 10}});
                    break;
                case 2:
                    rl->update({.ops = BucketConfig{}});
                    break;
                default:
                    rl->update({.bandwidth = BucketConfig{}, .ops = BucketConfig{3, 0, 7}});
                    break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    });
    // In rounds of 5 three-descriptor chains: the test ring has 16 descriptors.
    constexpr std::uint16_t kRound = 5;
    constexpr std::uint16_t kRequests = 120;
    for (std::uint16_t done = 0; done < kRequests; done += kRound) {
        for (std::uint16_t i = 0; i < kRound; ++i) {
            ASSERT_TRUE(mem->write_obj(GuestAddress{0x12000ULL + i}, std::uint8_t{0xaa}));
            add_read(i, (done + i) % 128);
        }
        kicks[0].signal();
        ASSERT_TRUE(used_within(rings[0], *mem, static_cast<std::uint16_t>(done + kRound),
                                milliseconds(10000)))
            << "after " << rings[0].used_idx(*mem) << " of " << done + kRound;
        for (std::uint16_t i = 0; i < kRound; ++i) {
            ASSERT_EQ(status(0x12000 + i), kBlkStatusOk) << done + i;
        }
    }
    stop = true;
    patcher.join();
    // The limiter did block and wake meanwhile: the race was run, not dodged.
    const auto c = rl->counters();
    EXPECT_GT(c.throttled_events, 0U);
    EXPECT_GT(c.timer_events, 0U);
    blk->reset();
}

TEST_F(VirtioBlkLimitTest, SavedStateCarriesTheBucketsAndReadsTheOlderForm) {
    auto blk = open(false);
    blk->set_rate_limiter(limiter({.ops = BucketConfig{10, 4, 1000}}));
    ASSERT_TRUE(blk->rate_limiter()->consume(0, 6));  // the burst, then 2 of the bucket
    const auto saved = blk->save_device_state();
    blk.reset();  // the image's lock goes with it

    auto other = open(false);
    other->set_rate_limiter(limiter({.ops = BucketConfig{10, 4, 1000}}));
    ASSERT_TRUE(other->restore_device_state(saved));
    const auto s = other->rate_limiter()->state();
    ASSERT_TRUE(s.ops);
    EXPECT_EQ(s.ops->one_time_burst, 0U);
    EXPECT_LE(s.ops->budget, 9U);
    // vireo before rate limiters saved the capacity alone (8 bytes).
    std::uint64_t capacity = 64 * 1024;
    EXPECT_TRUE(other->restore_device_state(save_to_bytes(capacity)));
    capacity = 4096;
    EXPECT_FALSE(other->restore_device_state(save_to_bytes(capacity)));
    // Garbage after the capacity is refused, not half read.
    auto bad = saved;
    bad.push_back(0x42);
    EXPECT_FALSE(other->restore_device_state(bad));
    bad = saved;
    bad.resize(bad.size() - 3);
    EXPECT_FALSE(other->restore_device_state(bad));
}

TEST_F(VirtioDeviceTest, RngBandwidthLimitHoldsRequestsBack) {
    VirtioRng rng;
    rng.set_rate_limiter(limiter({.bandwidth = BucketConfig{64, 0, 3600 * 1000}}));
    ASSERT_TRUE(activate(rng, 1));
    rings[0].add(*mem, {{0x10000, 64, true}});
    rings[0].add(*mem, {{0x20000, 64, true}});
    kicks[0].signal();
    ASSERT_TRUE(used_within(rings[0], *mem, 1, milliseconds(2000)));
    std::this_thread::sleep_for(milliseconds(200));
    EXPECT_EQ(rings[0].used_idx(*mem), 1);
    EXPECT_NE(rng.metrics_extra().find("\"entropy_rate_limiter_throttled\":"), std::string::npos);
    rng.rate_limiter()->update({.bandwidth = BucketConfig{1 << 20, 0, 1000}});
    ASSERT_TRUE(used_within(rings[0], *mem, 2, milliseconds(2000)));
    EXPECT_EQ(rings[0].used_len(*mem, 1), 64U);
    // The saved state is the limiter's; an empty one (vireo before limiters) is accepted.
    const auto saved = rng.save_device_state();
    rng.reset();
    EXPECT_FALSE(saved.empty());
    VirtioRng other;
    other.set_rate_limiter(limiter({}));
    EXPECT_TRUE(other.restore_device_state(saved));
    EXPECT_TRUE(other.rate_limiter()->limits());
    EXPECT_TRUE(other.restore_device_state({}));
    const std::vector<std::uint8_t> junk{1, 2, 3};
    EXPECT_FALSE(other.restore_device_state(junk));
}

}  // namespace
}  // namespace vireo::virtio
