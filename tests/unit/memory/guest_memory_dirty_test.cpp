// GuestMemory's dirty tracking: mark_dirty/take_dirty semantics and concurrency.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "memory/guest_memory.h"

namespace vireo {
namespace {

GuestMemory two_regions() {
    // 100 pages (two words, the second partly used) and 64 pages (exactly one word).
    const MemoryRegionSpec specs[] = {{GuestAddress(0), 100 * kPageSize},
                                      {GuestAddress(1ULL << 30), 64 * kPageSize}};
    auto m = GuestMemory::create(specs);
    EXPECT_TRUE(m.ok());
    return std::move(m).value();
}

std::vector<std::uint64_t> pages_of(const std::vector<std::uint64_t>& bitmap) {
    std::vector<std::uint64_t> pages;
    for (std::size_t w = 0; w < bitmap.size(); ++w) {
        for (unsigned b = 0; b < 64; ++b) {
            if ((bitmap[w] >> b) & 1) {
                pages.push_back(w * 64 + b);
            }
        }
    }
    return pages;
}

using Pages = std::vector<std::uint64_t>;

TEST(DirtyTracking, OffUntilEnabled) {
    auto mem = two_regions();
    EXPECT_FALSE(mem.dirty_tracking());
    mem.mark_dirty(GuestAddress(0), kPageSize);
    ASSERT_TRUE(mem.write_obj(GuestAddress(0), std::uint32_t{1}).ok());
    EXPECT_TRUE(mem.take_dirty(0).empty());
}

TEST(DirtyTracking, EverythingIsDirtyAtFirst) {
    auto mem = two_regions();
    mem.enable_dirty_tracking();
    EXPECT_TRUE(mem.dirty_tracking());
    // Bits past the region's last page stay clear, as in KVM's dirty log.
    EXPECT_EQ(mem.take_dirty(0), (Pages{~0ULL, (1ULL << 36) - 1}));
    EXPECT_EQ(mem.take_dirty(1), (Pages{~0ULL}));
    // Taken means cleared.
    EXPECT_EQ(mem.take_dirty(0), (Pages{0, 0}));
    EXPECT_EQ(mem.take_dirty(1), (Pages{0}));
    EXPECT_TRUE(mem.take_dirty(2).empty());
    // Enabling again changes nothing.
    mem.enable_dirty_tracking();
    EXPECT_EQ(mem.take_dirty(1), (Pages{0}));
}

TEST(DirtyTracking, MarksEveryPageARangeTouches) {
    auto mem = two_regions();
    mem.enable_dirty_tracking();
    static_cast<void>(mem.take_dirty(0));
    static_cast<void>(mem.take_dirty(1));

    mem.mark_dirty(GuestAddress(5 * kPageSize + 100), 1);                   // one byte
    mem.mark_dirty(GuestAddress(10 * kPageSize - 1), 2);                    // straddles 9 and 10
    mem.mark_dirty(GuestAddress(60 * kPageSize), 8 * kPageSize);            // 60-67, across a word
    mem.mark_dirty(GuestAddress(99 * kPageSize), 3 * kPageSize);            // runs off the region
    mem.mark_dirty(GuestAddress(50 * kPageSize), 0);                        // nothing
    mem.mark_dirty(GuestAddress(1ULL << 40), kPageSize);                    // outside RAM
    mem.mark_dirty(GuestAddress((1ULL << 30) - kPageSize), 2 * kPageSize);  // gap into region 1
    mem.mark_dirty(GuestAddress(~0ULL - 10), 100);                          // wraps past 2^64
    EXPECT_EQ(pages_of(mem.take_dirty(0)), (Pages{5, 9, 10, 60, 61, 62, 63, 64, 65, 66, 67, 99}));
    EXPECT_EQ(pages_of(mem.take_dirty(1)), (Pages{0}));

    // A range covering all of RAM and more sets every page of both regions.
    mem.mark_dirty(GuestAddress(0), ~0ULL);
    EXPECT_EQ(mem.take_dirty(0), (Pages{~0ULL, (1ULL << 36) - 1}));
    EXPECT_EQ(mem.take_dirty(1), (Pages{~0ULL}));
}

TEST(DirtyTracking, WriteMarksWhatItWrote) {
    auto mem = two_regions();
    mem.enable_dirty_tracking();
    static_cast<void>(mem.take_dirty(0));
    static_cast<void>(mem.take_dirty(1));
    ASSERT_TRUE(mem.write_obj(GuestAddress(3 * kPageSize + 4094), std::uint32_t{7}).ok());
    ASSERT_TRUE(mem.write_obj(GuestAddress((1ULL << 30) + 63 * kPageSize), std::uint8_t{1}).ok());
    std::uint64_t v = 1;
    EXPECT_FALSE(mem.write_obj(GuestAddress(100 * kPageSize - 4), v).ok());  // fails: no mark
    EXPECT_EQ(pages_of(mem.take_dirty(0)), (Pages{3, 4}));
    EXPECT_EQ(pages_of(mem.take_dirty(1)), (Pages{63}));
    // Reads mark nothing.
    static_cast<void>(mem.read_obj<std::uint64_t>(GuestAddress(0)));
    EXPECT_EQ(pages_of(mem.take_dirty(0)), Pages{});
}

TEST(DirtyTracking, MoveKeepsTheBitmaps) {
    auto a = two_regions();
    a.enable_dirty_tracking();
    static_cast<void>(a.take_dirty(0));
    a.mark_dirty(GuestAddress(kPageSize), 1);
    GuestMemory b = std::move(a);
    EXPECT_TRUE(b.dirty_tracking());
    EXPECT_EQ(pages_of(b.take_dirty(0)), (Pages{1}));
}

TEST(DirtyTracking, ConcurrentMarksAreNeverLost) {
    // Writers mark pages (each thread its own set, some pages shared) while a reader keeps taking
    // the bitmaps: every marked page shows up in some take.
    auto mem = two_regions();
    mem.enable_dirty_tracking();
    static_cast<void>(mem.take_dirty(0));
    static_cast<void>(mem.take_dirty(1));
    constexpr int kWriters = 4;
    constexpr int kRounds = 2000;
    std::atomic<int> writers_done{0};
    std::vector<std::uint64_t> seen0(2, 0);
    std::vector<std::uint64_t> seen1(1, 0);
    auto collect = [&] {
        auto t0 = mem.take_dirty(0);
        auto t1 = mem.take_dirty(1);
        for (std::size_t w = 0; w < t0.size(); ++w) {
            seen0[w] |= t0[w];
        }
        seen1[0] |= t1[0];
    };
    std::thread reader([&] {
        while (writers_done.load() < kWriters) {
            collect();
        }
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < kWriters; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < kRounds; ++i) {
                // Region 0: pages t, t + 4, t + 8, ... (each page by one thread); region 1:
                // page i % 64 by every thread.
                const std::uint64_t page = static_cast<std::uint64_t>(t + 4 * (i % 25));
                mem.mark_dirty(GuestAddress(page * kPageSize), 1);
                mem.mark_dirty(GuestAddress((1ULL << 30) + (i % 64) * kPageSize), kPageSize);
            }
            writers_done.fetch_add(1);
        });
    }
    for (auto& w : writers) {
        w.join();
    }
    reader.join();
    collect();
    EXPECT_EQ(seen0, (Pages{~0ULL, (1ULL << 36) - 1}));
    EXPECT_EQ(seen1, (Pages{~0ULL}));
}

}  // namespace
}  // namespace vireo
