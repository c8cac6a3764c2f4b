#include "arch/x86_64/memory_layout.h"

#include <gtest/gtest.h>

#include "acpi/acpi_tables.h"

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
    EXPECT_EQ(ram_in(map), (256ULL << 20) - (kHighMemoryStart - kEbdaStart));
    EXPECT_EQ(map[3].type, E820Type::Ram);
    EXPECT_EQ(map[3].addr + map[3].size, 256ULL << 20);
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
    // Nothing the guest sees as RAM overlaps the MMIO hole or the IOAPIC/LAPIC; only the ECAM
    // is listed there, as reserved.
    for (const auto& e : map) {
        if (e.type == E820Type::Ram) {
            EXPECT_FALSE(e.addr < k4GiB && e.addr + e.size > kMmioHoleStart);
        } else if (e.addr >= kMmioHoleStart && e.addr < k4GiB) {
            EXPECT_EQ(e.addr, kPciEcamStart);
            EXPECT_EQ(e.size, kPciEcamSize);
        }
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

TEST(MemoryLayout, PciWindowsSitInTheHole) {
    EXPECT_GE(kPciMmio32Start, kMmioHoleStart);
    EXPECT_LE(kPciMmio32Start + kPciMmio32Size, kPciEcamStart);
    EXPECT_LE(kPciEcamStart + kPciEcamSize, kIoapicAddress);
    EXPECT_EQ(kPciEcamSize, (kPciEcamEndBus + 1ULL) << 20);
    // Nothing the guest sees as RAM overlaps a PCI window or the ECAM.
    for (std::uint64_t size :
         {std::uint64_t{kMinMemory}, std::uint64_t{3} << 30, std::uint64_t{5} << 30, kMaxMemory}) {
        for (const auto& e : e820_map(size)) {
            if (e.type != E820Type::Ram) {
                continue;
            }
            EXPECT_FALSE(e.addr < kPciEcamStart + kPciEcamSize &&
                         e.addr + e.size > kPciMmio32Start);
            EXPECT_LE(e.addr + e.size, pci_mmio64_base(size)) << size;
        }
    }
}

TEST(MemoryLayout, Mmio64WindowFollowsRam) {
    // Up to 3 GiB of RAM nothing lives above 4 GiB: the window starts there.
    EXPECT_EQ(pci_mmio64_base(256ULL << 20), k4GiB);
    EXPECT_EQ(pci_mmio64_base(3ULL << 30), k4GiB);
    EXPECT_EQ(pci_mmio64_end(3ULL << 30), k4GiB + kPciMmio64Size);
    // 4 GiB of RAM: 1 GiB above 4 GiB, window at 5 GiB.
    EXPECT_EQ(pci_mmio64_base(4ULL << 30), 5ULL << 30);
    // Rounded up to 1 GiB: 4 GiB + 4 KiB of RAM ends at 5 GiB + 4 KiB.
    EXPECT_EQ(pci_mmio64_base((4ULL << 30) + 4096), 6ULL << 30);
    EXPECT_EQ(pci_mmio64_base(kMaxMemory), kMaxMemory + (1ULL << 30));
    EXPECT_LE(pci_mmio64_end(kMaxMemory), 1ULL << 41);  // needs MAXPHYADDR >= 41
    EXPECT_LE(pci_mmio64_end(3ULL << 30), 1ULL << 37);
}

TEST(MemoryLayout, McfgAndE820AgreeOnTheEcam) {
    acpi::EcamDesc ecam{kPciEcamStart, 0, 0, kPciEcamEndBus};
    const auto mcfg = acpi::build_mcfg(ecam);
    ASSERT_EQ(mcfg.size(), 60U);
    std::uint64_t base = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        base |= std::uint64_t{mcfg[44 + i]} << (8 * i);
    }
    const std::uint64_t size = (std::uint64_t{mcfg[55]} - mcfg[54] + 1) << 20;
    for (std::uint64_t ram : {std::uint64_t{kMinMemory}, std::uint64_t{5} << 30}) {
        int covering = 0;
        for (const auto& e : e820_map(ram)) {
            if (e.type == E820Type::Reserved && e.addr <= base && base + size <= e.addr + e.size) {
                ++covering;
            }
        }
        EXPECT_EQ(covering, 1) << ram;
    }
}

}  // namespace
}  // namespace vireo::layout
