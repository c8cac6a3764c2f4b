#include "machine/memory_layout.h"

#include <gtest/gtest.h>

namespace vireo::layout {
namespace {

using loader::E820Type;

std::uint64_t ram_in(const std::vector<loader::E820Entry>& map) {
    std::uint64_t total = 0;
    for (const auto& e : map) {
        if (e.type == E820Type::Ram) {
            total += e.size;
        }
    }
    return total;
}

TEST(MemoryLayout, SmallGuestIsOneSlotBelowTheHole) {
    const auto regions = ram_regions(256ULL << 20);
    ASSERT_EQ(regions.size(), 1U);
    EXPECT_EQ(regions[0].start.value, 0U);
    EXPECT_EQ(regions[0].size, 256ULL << 20);
    const auto map = e820_map(256ULL << 20);
    EXPECT_EQ(map.back().addr + map.back().size, 256ULL << 20);
    // The EBDA and the BIOS area holding the ACPI tables are not RAM to the guest.
    for (const auto& e : map) {
        if (e.type == E820Type::Ram) {
            EXPECT_FALSE(e.addr < kAcpiStart + 0x20000 && e.addr + e.size > kAcpiStart);
            EXPECT_FALSE(e.addr < kEbdaStart + 0x400 && e.addr + e.size > kEbdaStart);
        }
    }
}

TEST(MemoryLayout, LargeGuestSplitsAroundThe32BitHole) {
    const std::uint64_t size = 4ULL << 30;
    const auto regions = ram_regions(size);
    ASSERT_EQ(regions.size(), 2U);
    EXPECT_EQ(regions[0].size, kMmioHoleStart);
    EXPECT_EQ(regions[1].start.value, k4GiB);
    EXPECT_EQ(regions[1].size, size - kMmioHoleStart);
    const auto map = e820_map(size);
    EXPECT_EQ(map.back().addr, k4GiB);
    EXPECT_EQ(map.back().size, 1ULL << 30);
    // Nothing the guest sees as RAM overlaps the MMIO hole or the IOAPIC/LAPIC.
    for (const auto& e : map) {
        EXPECT_FALSE(e.addr < k4GiB && e.addr + e.size > kMmioHoleStart);
    }
    // All RAM but the EBDA and legacy/BIOS holes (0x9fc00..0x100000) is announced.
    EXPECT_EQ(ram_in(map), size - (kHighMemoryStart - kEbdaStart));
}

TEST(MemoryLayout, MapIsSortedAndDisjoint) {
    for (std::uint64_t size : {std::uint64_t{kMinMemory}, std::uint64_t{1} << 30,
                               std::uint64_t{3} << 30, std::uint64_t{5} << 30}) {
        const auto map = e820_map(size);
        for (std::size_t i = 1; i < map.size(); ++i) {
            EXPECT_LE(map[i - 1].addr + map[i - 1].size, map[i].addr) << size;
        }
    }
}

}  // namespace
}  // namespace vireo::layout
