// virtio-balloon without a transport: PFN lists (hostile ones too) turned into released page runs,
// inflate/deflate/reporting queues against real guest memory, the statistics queue's hold-and-
// return protocol, the configuration space and the saved state.
#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "devices/virtio/virtio_balloon.h"
#include "virtio_device_fixture.h"

namespace vireo::virtio {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPfnList = 0x8000;  // where the tests put PFN lists and statistics
constexpr std::uint8_t kPattern = 0xab;

GuestMemory two_regions(std::uint64_t first, std::uint64_t gap, std::uint64_t second) {
    std::array<MemoryRegionSpec, 2> spec{
        {{GuestAddress{0}, first}, {GuestAddress{first + gap}, second}}};
    return std::move(GuestMemory::create(spec).value());
}

TEST(PfnRuns, JoinsConsecutivePagesAndDropsOutsideRam) {
    GuestMemory mem = two_regions(1 << 20, 1 << 20, 1 << 20);  // [0,1M) and [2M,3M)
    const std::array<std::uint32_t, 9> pfns{5, 6, 7, 9, 0xffffffff, 256, 255, 512, 513};
    const PfnRuns r = pfn_runs(pfns, mem);
    EXPECT_EQ(r.valid, 7U);
    EXPECT_EQ(r.invalid, 2U);  // 0xffffffff (16 TiB) and 256 (the gap)
    const std::vector<PageRun> want{
        {5 * kPage, 3}, {9 * kPage, 1}, {255 * kPage, 1}, {512 * kPage, 2}};
    EXPECT_EQ(r.runs, want);
}

TEST(PfnRuns, NeverJoinsAcrossAdjacentRegions) {
    GuestMemory mem = two_regions(1 << 20, 0, 1 << 20);  // [0,1M) then [1M,2M) back to back
    const std::array<std::uint32_t, 3> pfns{254, 255, 256};
    const PfnRuns r = pfn_runs(pfns, mem);
    EXPECT_EQ(r.valid, 3U);
    const std::vector<PageRun> want{{254 * kPage, 2}, {256 * kPage, 1}};
    EXPECT_EQ(r.runs, want);  // each run lies in one region: discard()'s contract
}

TEST(PfnRuns, EmptyAndAllInvalidLists) {
    GuestMemory mem = two_regions(1 << 20, 0, 1 << 20);
    EXPECT_TRUE(pfn_runs({}, mem).runs.empty());
    const std::array<std::uint32_t, 3> bad{0x80000000, 0xffffffff, 512};
    const PfnRuns r = pfn_runs(bad, mem);
    EXPECT_TRUE(r.runs.empty());
    EXPECT_EQ(r.invalid, 3U);
}

class VirtioBalloonTest : public VirtioDeviceTest {
protected:
    void SetUp() override {
        VirtioDeviceTest::SetUp();
        for (int i = 0; i < 2; ++i) {
            queues.emplace_back(kMaxQueueSize);
            kicks.push_back(EventFd::create().value());
            extra[i].configure(queues.back());
        }
    }
    TestRing& ring(std::size_t i) { return i < 2 ? rings[i] : extra[i - 2]; }
    void fill_page(std::uint64_t pfn, std::uint8_t value) {
        std::vector<std::uint8_t> page(kPage, value);
        ASSERT_TRUE(mem->write(GuestAddress{pfn * kPage}, page));
    }
    std::uint8_t byte_of_page(std::uint64_t pfn) {
        return mem->read_obj<std::uint8_t>(GuestAddress{pfn * kPage + 100}).value();
    }
    // Polls `done` for up to 2 s: the device releases inflated pages (and counts them) after it
    // answers, so what a test sees right after wait_used() may still be on its way.
    template <typename Pred>
    static void eventually(Pred done) {
        for (int i = 0; i < 2000 && !done(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    // An inflated page's byte once released.
    std::uint8_t released_byte(std::uint64_t pfn) {
        eventually([&] { return byte_of_page(pfn) == 0; });
        return byte_of_page(pfn);
    }
    void put_pfns(std::initializer_list<std::uint32_t> pfns) {
        std::uint64_t at = kPfnList;
        for (auto p : pfns) {
            ASSERT_TRUE(mem->write_obj(GuestAddress{at}, p));
            at += 4;
        }
    }
    std::string metrics(const VirtioBalloon& b) { return b.metrics_extra(); }
    // The metrics once they show `needle`.
    std::string metrics_with(const VirtioBalloon& b, const std::string& needle) {
        eventually([&] { return b.metrics_extra().find(needle) != std::string::npos; });
        return b.metrics_extra();
    }

    TestRing extra[2] = {{0x9000, 0xa000, 0xb000}, {0xc000, 0xd000, 0xe000}};
};

TEST_F(VirtioBalloonTest, FeaturesAndQueuesFollowTheConfiguration) {
    VirtioBalloon plain(BalloonConfig{});
    EXPECT_EQ(plain.device_type(), 5);
    EXPECT_EQ(plain.device_features(), 0U);
    EXPECT_EQ(plain.queue_max_sizes().size(), 2U);
    VirtioBalloon all(BalloonConfig{.amount_mib = 0,
                                    .deflate_on_oom = true,
                                    .stats_polling_interval_s = 1,
                                    .free_page_reporting = true});
    EXPECT_EQ(all.device_features(), (1U << kBalloonFeatureStatsVq) |
                                         (1U << kBalloonFeatureDeflateOnOom) |
                                         (1U << kBalloonFeatureReporting));
    EXPECT_EQ(all.queue_max_sizes().size(), 4U);
}

TEST_F(VirtioBalloonTest, ConfigSpaceHasTheTargetAndTheDriversActual) {
    VirtioBalloon b(BalloonConfig{.amount_mib = 3});
    int notified = 0;
    b.set_config_notifier([&] { ++notified; });
    std::array<std::uint8_t, 8> c{};
    b.read_config(0, c);
    EXPECT_EQ(c[0] | c[1] << 8 | c[2] << 16, 3 * 256);  // num_pages, 4 KiB pages
    b.set_target_mib(7);
    EXPECT_EQ(notified, 1);
    b.read_config(0, c);
    EXPECT_EQ(c[0] | c[1] << 8, 7 * 256);
    // The driver writes `actual`; num_pages is read-only; a 2-byte write changes 2 bytes.
    const std::array<std::uint8_t, 4> actual{0x34, 0x12, 0, 0};
    b.write_config(4, actual);
    const std::array<std::uint8_t, 4> target{1, 2, 3, 4};
    b.write_config(0, target);
    const std::array<std::uint8_t, 2> high{0x01, 0x00};
    b.write_config(6, high);
    EXPECT_EQ(b.actual_pages(), 0x11234U);
    b.read_config(0, c);
    EXPECT_EQ(c[0] | c[1] << 8, 7 * 256);
    // Reads past the structure (or at a hostile offset) are zeros.
    std::array<std::uint8_t, 4> past{9, 9, 9, 9};
    b.read_config(0xfffffffffffffff0ULL, past);
    EXPECT_EQ(past, (std::array<std::uint8_t, 4>{}));
    EXPECT_EQ(b.config().amount_mib, 7U);
}

TEST_F(VirtioBalloonTest, InflateReleasesValidPagesAndSkipsHostileOnes) {
    VirtioBalloon b(BalloonConfig{});
    for (std::uint64_t pfn : {0x150, 0x151, 0x152, 0x160}) {
        fill_page(pfn, kPattern);
    }
    ASSERT_TRUE(activate(b, 2));
    // Two valid neighbours, 16 TiB, a PFN inside the rings' own pages' neighbour range beyond
    // RAM (2 MiB = PFN 0x200), another valid page; plus a trailing half PFN.
    put_pfns({0x150, 0x151, 0xffffffff, 0x200, 0x160});
    ring(0).add(*mem, {{kPfnList, 5 * 4 + 2, false}});
    kicks[0].signal();
    ASSERT_TRUE(ring(0).wait_used(*mem, 1));
    EXPECT_EQ(ring(0).used_len(*mem, 0), 0U);
    EXPECT_EQ(released_byte(0x150), 0);
    EXPECT_EQ(released_byte(0x151), 0);
    EXPECT_EQ(released_byte(0x160), 0);
    EXPECT_EQ(byte_of_page(0x152), kPattern);  // not in the list: untouched
    const std::string m = metrics_with(b, "\"released_bytes\":12288");
    EXPECT_NE(m.find("\"inflate_count\":3"), std::string::npos) << m;
    EXPECT_NE(m.find("\"invalid_pfns\":2"), std::string::npos) << m;
    EXPECT_NE(m.find("\"released_bytes\":12288"), std::string::npos) << m;
    EXPECT_FALSE(irq.needs_reset.load());
    b.reset();
}

TEST_F(VirtioBalloonTest, InflatedNeighboursInAnyOrderGoInOneRelease) {
    VirtioBalloon b(BalloonConfig{});
    for (std::uint64_t pfn = 0x150; pfn < 0x154; ++pfn) {
        fill_page(pfn, kPattern);
    }
    ASSERT_TRUE(activate(b, 2));
    put_pfns({0x153, 0x151, 0x152, 0x150, 0x170});  // the driver's order is not the address order
    ring(0).add(*mem, {{kPfnList, 5 * 4, false}});
    kicks[0].signal();
    ASSERT_TRUE(ring(0).wait_used(*mem, 1));
    for (std::uint64_t pfn = 0x150; pfn < 0x154; ++pfn) {
        EXPECT_EQ(released_byte(pfn), 0) << pfn;
    }
    const std::string m = metrics_with(b, "\"released_runs\":2");
    EXPECT_NE(m.find("\"released_runs\":2"), std::string::npos) << m;  // 0x150-0x153, 0x170
    b.reset();
}

TEST_F(VirtioBalloonTest, RepeatedPfnsInOneBufferAreReleasedHarmlessly) {
    // A hostile driver lists one page three times and its neighbour twice: after the sort the
    // repeats stand side by side; each is a page inside RAM, released again, nothing else.
    VirtioBalloon b(BalloonConfig{});
    fill_page(0x150, kPattern);
    fill_page(0x151, kPattern);
    fill_page(0x152, kPattern);
    ASSERT_TRUE(activate(b, 2));
    put_pfns({0x151, 0x150, 0x150, 0x151, 0x150});
    ring(0).add(*mem, {{kPfnList, 5 * 4, false}});
    kicks[0].signal();
    ASSERT_TRUE(ring(0).wait_used(*mem, 1));
    EXPECT_EQ(released_byte(0x150), 0);
    EXPECT_EQ(released_byte(0x151), 0);
    const std::string m = metrics_with(b, "\"released_runs\":4");  // 150, 150, 150-151, 151
    EXPECT_NE(m.find("\"released_runs\":4"), std::string::npos) << m;
    EXPECT_NE(m.find("\"invalid_pfns\":0"), std::string::npos) << m;
    EXPECT_EQ(byte_of_page(0x152), kPattern);
    EXPECT_FALSE(irq.needs_reset.load());
    b.reset();
}

TEST_F(VirtioBalloonTest, DeflateOnlyAcknowledges) {
    VirtioBalloon b(BalloonConfig{});
    fill_page(0x150, kPattern);
    ASSERT_TRUE(activate(b, 2));
    put_pfns({0x150, 0x7fffffff});
    ring(1).add(*mem, {{kPfnList, 8, false}});
    kicks[1].signal();
    ASSERT_TRUE(ring(1).wait_used(*mem, 1));
    EXPECT_EQ(byte_of_page(0x150), kPattern);
    const std::string m = metrics(b);
    EXPECT_NE(m.find("\"deflate_count\":1"), std::string::npos) << m;
    EXPECT_NE(m.find("\"invalid_pfns\":1"), std::string::npos) << m;
    b.reset();
}

TEST_F(VirtioBalloonTest, ReportedRangesAreReleasedWholePagesOnly) {
    // Reporting without statistics: the reporting queue is the third (index 2).
    VirtioBalloon b(BalloonConfig{.stats_polling_interval_s = 1, .free_page_reporting = true});
    for (std::uint64_t pfn = 0x100; pfn < 0x110; ++pfn) {
        fill_page(pfn, kPattern);
    }
    ASSERT_TRUE(activate(b, 4, 1ULL << kBalloonFeatureReporting));
    // 0x100..0x103 whole; a range starting mid-page 0x108 and ending mid-page 0x10a releases
    // only 0x109.
    ring(2).add(*mem, {{0x100 * kPage, 4 * kPage, true}});
    ring(2).add(*mem, {{0x108 * kPage + 8, 2 * kPage, true}});
    kicks[2].signal();
    ASSERT_TRUE(ring(2).wait_used(*mem, 2));
    for (std::uint64_t pfn = 0x100; pfn < 0x104; ++pfn) {
        EXPECT_EQ(byte_of_page(pfn), 0) << pfn;
    }
    EXPECT_EQ(byte_of_page(0x104), kPattern);
    EXPECT_EQ(byte_of_page(0x108), kPattern);
    EXPECT_EQ(byte_of_page(0x109), 0);
    EXPECT_EQ(byte_of_page(0x10a), kPattern);
    const std::string m = metrics(b);
    EXPECT_NE(m.find("\"free_page_report_count\":2"), std::string::npos) << m;
    EXPECT_NE(m.find("\"free_page_report_freed\":20480"), std::string::npos) << m;
    EXPECT_EQ(ring(3).used_idx(*mem), 0);
    b.reset();
}

// One statistic as the driver lays it out: le16 tag, le64 value.
void put_stat(GuestMemory& mem, std::uint64_t at, std::uint16_t tag, std::uint64_t value) {
    ASSERT_TRUE(mem.write_obj(GuestAddress{at}, tag));
    ASSERT_TRUE(mem.write_obj(GuestAddress{at + 2}, value));
}

TEST_F(VirtioBalloonTest, StatisticsAreHeldAndHandedBackEachPoll) {
    VirtioBalloon b(BalloonConfig{.amount_mib = 1, .stats_polling_interval_s = 60});
    EXPECT_FALSE(b.set_stats_interval(0));  // cannot switch them off
    ASSERT_TRUE(activate(b, 3, 1ULL << kBalloonFeatureStatsVq));
    put_stat(*mem, kPfnList, 4, 1000);       // free_memory
    put_stat(*mem, kPfnList + 10, 5, 4000);  // total_memory
    put_stat(*mem, kPfnList + 20, 99, 7);    // unknown: ignored
    ring(2).add(*mem, {{kPfnList, 30, false}});
    kicks[2].signal();
    // Held: not used until a poll. The first poll came at activation, before the buffer.
    for (int i = 0; i < 1000 && b.stats()->guest.size() < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto s = b.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->target_pages, 256U);
    ASSERT_EQ(s->guest.size(), 2U);
    EXPECT_EQ(s->guest[0].first, "free_memory");
    EXPECT_EQ(s->guest[0].second, 1000U);
    EXPECT_EQ(s->guest[1].first, "total_memory");
    EXPECT_EQ(ring(2).used_idx(*mem), 0);
    // A new interval polls at once: the buffer comes back for fresh figures.
    ASSERT_TRUE(b.set_stats_interval(30));
    ASSERT_TRUE(ring(2).wait_used(*mem, 1));
    EXPECT_EQ(b.config().stats_polling_interval_s, 30U);
    b.reset();
}

// PATCH /balloon and PATCH /balloon/statistics come from the VMM thread at any moment: while the
// device thread serves inflate buffers and the statistics queue, and while the guest resets the
// device. Every buffer is still answered, every target change raises one configuration
// interrupt, and nothing is released twice or lost (ASan/UBSan run this too).
TEST_F(VirtioBalloonTest, PatchesRaceTheDeviceThreadAndAReset) {
    VirtioBalloon b(BalloonConfig{.amount_mib = 0, .stats_polling_interval_s = 1});
    std::atomic<int> notified{0};
    b.set_config_notifier([&] { notified.fetch_add(1); });
    ASSERT_TRUE(activate(b, 3, 1ULL << kBalloonFeatureStatsVq));
    put_stat(*mem, kPfnList + 0x800, 4, 1000);
    ring(2).add(*mem, {{kPfnList + 0x800, 10, false}});
    kicks[2].signal();

    std::atomic<bool> stop{false};
    int patches = 0;
    std::thread vmm;
    // Stopped and joined however the test ends (a failed ASSERT returns early).
    struct Joiner {
        std::atomic<bool>& stop;
        std::thread& t;
        ~Joiner() {
            stop.store(true);
            if (t.joinable()) {
                t.join();
            }
        }
    } joiner{stop, vmm};
    vmm = std::thread([&] {
        for (std::uint32_t i = 0; !stop.load(); ++i) {
            b.set_target_mib(i % 64);
            ++patches;
            EXPECT_TRUE(b.set_stats_interval(1 + i % 3));
            static_cast<void>(b.stats());
            static_cast<void>(b.config());
            static_cast<void>(b.metrics_extra());
        }
    });
    // 200 inflate buffers of 4 PFNs each, one at a time as the driver sends them.
    for (std::uint16_t n = 1; n <= 200; ++n) {
        const auto pfn = static_cast<std::uint32_t>(0x100 + (n % 64) * 4);
        put_pfns({pfn, pfn + 1, pfn + 2, pfn + 3});
        ring(0).add(*mem, {{kPfnList, 16, false}});
        kicks[0].signal();
        ASSERT_TRUE(ring(0).wait_used(*mem, n)) << "buffer " << n << " not answered";
    }
    b.reset();  // the guest's reset, with PATCHes still coming
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop.store(true);
    vmm.join();  // `patches` is final from here
    EXPECT_EQ(notified.load(), patches);
    const std::string m = metrics(b);
    EXPECT_NE(m.find("\"inflate_count\":800"), std::string::npos) << m;
    EXPECT_NE(m.find("\"invalid_pfns\":0"), std::string::npos) << m;
    EXPECT_FALSE(irq.needs_reset.load());
    EXPECT_EQ(b.actual_pages(), 0U);  // reset clears the driver's `actual`
}

TEST_F(VirtioBalloonTest, StatisticsOffRefusesQueriesAndSwitchingOn) {
    VirtioBalloon b(BalloonConfig{.amount_mib = 1});
    EXPECT_FALSE(b.stats());
    EXPECT_FALSE(b.set_stats_interval(5));
    EXPECT_TRUE(b.set_stats_interval(0));
}

TEST_F(VirtioBalloonTest, SavedStateRoundTripsAndHostileStatesAreRefused) {
    VirtioBalloon a(BalloonConfig{.amount_mib = 9, .stats_polling_interval_s = 2});
    a.set_target_mib(12);
    const std::array<std::uint8_t, 4> actual{0x00, 0x0c, 0, 0};
    a.write_config(4, actual);
    const auto saved = a.save_device_state();

    VirtioBalloon b(BalloonConfig{.amount_mib = 9, .stats_polling_interval_s = 2});
    ASSERT_TRUE(b.restore_device_state(saved));
    EXPECT_EQ(b.config().amount_mib, 12U);
    EXPECT_EQ(b.actual_pages(), 0xc00U);

    VirtioBalloon off(BalloonConfig{.amount_mib = 9});
    EXPECT_FALSE(off.restore_device_state(saved));  // statistics on in the state, off here
    EXPECT_FALSE(b.restore_device_state(std::span(saved).first(saved.size() - 1)));
    EXPECT_FALSE(b.restore_device_state({}));
}

}  // namespace
}  // namespace vireo::virtio
