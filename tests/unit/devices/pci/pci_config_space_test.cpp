#include "devices/pci/pci_config_space.h"

#include <array>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

PciHeader test_header() {
    return PciHeader{.vendor_id = 0x1af4,
                     .device_id = 0x1042,
                     .class_code = 0x018000,  // mass storage, other
                     .revision_id = 0x01,
                     .subsystem_vendor_id = 0x1af4,
                     .subsystem_id = 0x0002,
                     .interrupt_pin = PciInterruptPin::IntA};
}

void write8(PciConfigSpace& c, std::uint16_t off, std::uint8_t v) {
    c.write(off, std::span(&v, 1));
}
void write16(PciConfigSpace& c, std::uint16_t off, std::uint16_t v) {
    const std::array<std::uint8_t, 2> b{static_cast<std::uint8_t>(v),
                                        static_cast<std::uint8_t>(v >> 8)};
    c.write(off, b);
}
void write32(PciConfigSpace& c, std::uint16_t off, std::uint32_t v) {
    const std::array<std::uint8_t, 4> b{
        static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
        static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
    c.write(off, b);
}

// The guest's BAR sizing dance (PCI Local Bus 3.0 §6.2.5.1): save, write all-ones, read back,
// restore. Returns what it read back.
std::uint32_t size_bar(PciConfigSpace& c, std::uint16_t off) {
    const std::uint32_t saved = c.read32(off);
    write32(c, off, 0xffffffff);
    const std::uint32_t probe = c.read32(off);
    write32(c, off, saved);
    EXPECT_EQ(c.read32(off), saved);
    return probe;
}

TEST(PciConfigSpace, HeaderFields) {
    PciConfigSpace c(test_header());
    EXPECT_EQ(c.read16(pci::kVendorId), 0x1af4);
    EXPECT_EQ(c.read16(pci::kDeviceId), 0x1042);
    EXPECT_EQ(c.read32(0x00), 0x10421af4U);
    EXPECT_EQ(c.read32(pci::kRevisionId), 0x01800001U);  // class 01/80/00, revision 1
    EXPECT_EQ(c.read8(pci::kHeaderType), 0x00);
    EXPECT_EQ(c.read16(pci::kSubsystemVendorId), 0x1af4);
    EXPECT_EQ(c.read16(pci::kSubsystemId), 0x0002);
    EXPECT_EQ(c.read8(pci::kInterruptPin), 1);
    EXPECT_EQ(c.interrupt_pin(), PciInterruptPin::IntA);
    EXPECT_EQ(c.read16(pci::kStatus), 0);  // no capabilities yet
    EXPECT_EQ(c.read8(pci::kCapabilitiesPointer), 0);
    EXPECT_EQ(c.read16(pci::kCommand), 0);
}

TEST(PciConfigSpace, ReadOnlyFieldsIgnoreWrites) {
    PciConfigSpace c(test_header());
    write32(c, 0x00, 0xdeadbeef);       // vendor/device
    write32(c, 0x08, 0xffffffff);       // revision/class
    write8(c, pci::kHeaderType, 0x80);  // multi-function bit
    write16(c, pci::kSubsystemId, 0x1234);
    write8(c, pci::kInterruptPin, 3);
    write8(c, pci::kCapabilitiesPointer, 0x40);
    write32(c, pci::kExpansionRom, 0xffffffff);  // no ROM: sizing reads 0
    EXPECT_EQ(c.read32(0x00), 0x10421af4U);
    EXPECT_EQ(c.read32(0x08), 0x01800001U);
    EXPECT_EQ(c.read8(pci::kHeaderType), 0);
    EXPECT_EQ(c.read16(pci::kSubsystemId), 0x0002);
    EXPECT_EQ(c.read8(pci::kInterruptPin), 1);
    EXPECT_EQ(c.read8(pci::kCapabilitiesPointer), 0);
    EXPECT_EQ(c.read32(pci::kExpansionRom), 0U);
    // Interrupt Line and Cache Line Size are the guest's.
    write8(c, pci::kInterruptLine, 0x2a);
    write8(c, pci::kCacheLineSize, 0x10);
    EXPECT_EQ(c.read8(pci::kInterruptLine), 0x2a);
    EXPECT_EQ(c.read8(pci::kCacheLineSize), 0x10);
}

TEST(PciConfigSpace, CommandRegisterBits) {
    PciConfigSpace c(test_header());
    write16(c, pci::kCommand, 0xffff);
    // I/O, memory, bus master, parity, SERR#, INTx disable; the rest hardwired to 0.
    EXPECT_EQ(c.read16(pci::kCommand), 0x0547);
    EXPECT_TRUE(c.io_enabled());
    EXPECT_TRUE(c.memory_enabled());
    EXPECT_TRUE(c.bus_master_enabled());
    EXPECT_TRUE(c.intx_disabled());
    write16(c, pci::kCommand, pci::kCommandMemory);
    EXPECT_FALSE(c.io_enabled());
    EXPECT_TRUE(c.memory_enabled());
    EXPECT_FALSE(c.bus_master_enabled());
    EXPECT_FALSE(c.intx_disabled());
    // A byte write to the high half leaves the low half alone.
    write8(c, pci::kCommand + 1, 0x04);
    EXPECT_TRUE(c.intx_disabled());
    EXPECT_TRUE(c.memory_enabled());
}

TEST(PciConfigSpace, StatusErrorBitsAreWriteOneToClear) {
    PciConfigSpace c(test_header());
    c.raise_status(pci::kStatusReceivedMasterAbort | pci::kStatusSignaledTargetAbort);
    c.set_interrupt_status(true);
    EXPECT_EQ(c.read16(pci::kStatus), pci::kStatusReceivedMasterAbort |
                                          pci::kStatusSignaledTargetAbort | pci::kStatusInterrupt);
    // Writing 0 changes nothing; writing 1 clears only that bit; Interrupt Status is read-only.
    write16(c, pci::kStatus, 0);
    EXPECT_EQ(c.read16(pci::kStatus) & pci::kStatusReceivedMasterAbort,
              pci::kStatusReceivedMasterAbort);
    write16(c, pci::kStatus, pci::kStatusReceivedMasterAbort | pci::kStatusInterrupt);
    EXPECT_EQ(c.read16(pci::kStatus), pci::kStatusSignaledTargetAbort | pci::kStatusInterrupt);
    // A command write in the same dword does not disturb status.
    write32(c, pci::kCommand, 0x0000'0002);
    EXPECT_EQ(c.read16(pci::kStatus), pci::kStatusSignaledTargetAbort | pci::kStatusInterrupt);
    c.set_interrupt_status(false);
    EXPECT_EQ(c.read16(pci::kStatus), pci::kStatusSignaledTargetAbort);
}

TEST(PciConfigSpace, CapabilityChainWalk) {
    PciConfigSpace c(test_header());
    const std::vector<std::uint8_t> a{0x10, 0x01, 0x02};  // 5 bytes with the header
    const std::vector<std::uint8_t> b(14, 0x55);          // 16 bytes
    const std::vector<std::uint8_t> d{0xaa, 0xbb};
    auto oa = c.add_capability(0x09, a);
    auto ob = c.add_capability(0x11, b);
    auto od = c.add_capability(0x09, d);
    ASSERT_TRUE(oa.ok() && ob.ok() && od.ok());
    EXPECT_EQ(*oa, 0x40);
    EXPECT_EQ(*ob, 0x48);  // 0x45 rounded up to a dword
    EXPECT_EQ(*od, 0x58);
    EXPECT_TRUE(c.read16(pci::kStatus) & pci::kStatusCapabilitiesList);

    // Walk the list as a guest does.
    std::vector<std::pair<std::uint8_t, std::uint8_t>> seen;  // (offset, id)
    std::uint8_t ptr = c.read8(pci::kCapabilitiesPointer);
    while (ptr != 0 && seen.size() < 48) {
        EXPECT_EQ(ptr % 4, 0);
        seen.emplace_back(ptr, c.read8(ptr));
        ptr = c.read8(static_cast<std::uint16_t>(ptr + 1));
    }
    ASSERT_EQ(seen.size(), 3U);
    EXPECT_EQ(seen[0], std::make_pair(std::uint8_t{0x40}, std::uint8_t{0x09}));
    EXPECT_EQ(seen[1], std::make_pair(std::uint8_t{0x48}, std::uint8_t{0x11}));
    EXPECT_EQ(seen[2], std::make_pair(std::uint8_t{0x58}, std::uint8_t{0x09}));
    EXPECT_EQ(c.read8(0x42), 0x10);
    EXPECT_EQ(c.read8(0x44), 0x02);
    EXPECT_EQ(c.read8(0x4a), 0x55);
    EXPECT_EQ(c.read16(0x5a), 0xbbaa);

    // Capability bodies are read-only unless made writable.
    write8(c, 0x42, 0xff);
    EXPECT_EQ(c.read8(0x42), 0x10);
    const std::array<std::uint8_t, 1> mask{0x0f};
    c.set_write_mask(0x42, mask);
    write8(c, 0x42, 0xff);
    EXPECT_EQ(c.read8(0x42), 0x1f);
}

TEST(PciConfigSpace, CapabilitiesMustFitBelow0x100) {
    PciConfigSpace c(test_header());
    const std::vector<std::uint8_t> big(0xbe, 0);  // 0x40 + 0xc0 = 0x100 exactly
    ASSERT_TRUE(c.add_capability(0x09, big).ok());
    const std::vector<std::uint8_t> one{0};
    EXPECT_FALSE(c.add_capability(0x09, one).ok());
}

TEST(PciConfigSpace, ExtendedSpaceReadsZeroAndPastTheEndReadsOnes) {
    PciConfigSpace c(test_header());
    EXPECT_EQ(c.read32(0x100), 0U);
    EXPECT_EQ(c.read32(0xffc), 0U);
    write32(c, 0x100, 0xffffffff);
    EXPECT_EQ(c.read32(0x100), 0U);
    std::array<std::uint8_t, 4> b{};
    c.read(0xffe, b);  // straddles the end
    EXPECT_EQ(b, (std::array<std::uint8_t, 4>{0, 0, 0xff, 0xff}));
    c.write(0xffe, b);  // must not write past the array
}

TEST(PciConfigSpace, SizesA32BitMemoryBar) {
    PciConfigSpace c(test_header());
    ASSERT_TRUE(c.add_bar(0, 0x4000, PciBarKind::Memory32, false).ok());
    EXPECT_EQ(c.read32(pci::kBar0), 0U);
    EXPECT_EQ(size_bar(c, pci::kBar0), 0xffffc000U);
    ASSERT_TRUE(c.set_bar_address(0, 0xc0004000).ok());
    EXPECT_EQ(c.read32(pci::kBar0), 0xc0004000U);
    EXPECT_EQ(size_bar(c, pci::kBar0), 0xffffc000U);
    EXPECT_EQ(c.bar_address(0), 0xc0004000U);
    // The guest can move it; the low bits stay the BAR's type.
    write32(c, pci::kBar0, 0xd000'0fff);
    EXPECT_EQ(c.read32(pci::kBar0), 0xd0000000U);
    EXPECT_EQ(c.bar_address(0), 0xd0000000U);
    // Neighbouring unused BARs read 0 and stay 0.
    write32(c, pci::kBar0 + 4, 0xffffffff);
    EXPECT_EQ(c.read32(pci::kBar0 + 4), 0U);
}

TEST(PciConfigSpace, SizesAPrefetchable64BitBar) {
    PciConfigSpace c(test_header());
    ASSERT_TRUE(c.add_bar(2, 0x10000, PciBarKind::Memory64, true).ok());
    const std::uint16_t lo = pci::kBar0 + 8;
    const std::uint16_t hi = pci::kBar0 + 12;
    EXPECT_EQ(c.read32(lo), 0x0000000cU);  // 64-bit (bits 2:1 = 10b), prefetchable (bit 3)
    EXPECT_EQ(size_bar(c, lo), 0xffff000cU);
    EXPECT_EQ(size_bar(c, hi), 0xffffffffU);
    ASSERT_TRUE(c.set_bar_address(2, 0x10'0001'0000).ok());
    EXPECT_EQ(c.read32(lo), 0x0001000cU);
    EXPECT_EQ(c.read32(hi), 0x10U);
    EXPECT_EQ(c.bar_address(2), 0x10'0001'0000U);
    const auto bar = c.bar(2);
    ASSERT_TRUE(bar.has_value());
    EXPECT_EQ(bar->kind, PciBarKind::Memory64);
    EXPECT_EQ(bar->size, 0x10000U);
    EXPECT_TRUE(bar->prefetchable);
    EXPECT_FALSE(c.bar(3).has_value());  // the upper half is not a BAR of its own
    EXPECT_EQ(c.bar_address(3), 0U);
    EXPECT_FALSE(c.set_bar_address(3, 0).ok());
}

TEST(PciConfigSpace, Sizes64BitBarLargerThan4GiB) {
    PciConfigSpace c(test_header());
    ASSERT_TRUE(c.add_bar(0, std::uint64_t{8} << 30, PciBarKind::Memory64, false).ok());
    EXPECT_EQ(size_bar(c, pci::kBar0), 0x00000004U);
    EXPECT_EQ(size_bar(c, pci::kBar0 + 4), 0xfffffffeU);
}

TEST(PciConfigSpace, SizesAnIoBar) {
    PciConfigSpace c(test_header());
    ASSERT_TRUE(c.add_bar(5, 0x20, PciBarKind::Io, false).ok());
    const std::uint16_t off = pci::kBar0 + 20;
    EXPECT_EQ(c.read32(off), 0x1U);
    EXPECT_EQ(size_bar(c, off), 0xffffffe1U);
    ASSERT_TRUE(c.set_bar_address(5, 0x1040).ok());
    EXPECT_EQ(c.read32(off), 0x1041U);
    EXPECT_EQ(c.bar_address(5), 0x1040U);
}

TEST(PciConfigSpace, RejectsBadBars) {
    PciConfigSpace c(test_header());
    EXPECT_FALSE(c.add_bar(6, 0x1000, PciBarKind::Memory32, false).ok());
    EXPECT_FALSE(c.add_bar(-1, 0x1000, PciBarKind::Memory32, false).ok());
    EXPECT_FALSE(c.add_bar(5, 0x1000, PciBarKind::Memory64, false).ok());  // needs 5 and 6
    EXPECT_FALSE(c.add_bar(0, 0x1800, PciBarKind::Memory32, false).ok());  // not a power of 2
    EXPECT_FALSE(c.add_bar(0, 8, PciBarKind::Memory32, false).ok());
    EXPECT_FALSE(c.add_bar(0, std::uint64_t{4} << 30, PciBarKind::Memory32, false).ok());
    EXPECT_FALSE(c.add_bar(0, 0x200, PciBarKind::Io, false).ok());
    EXPECT_FALSE(c.add_bar(0, 0x10, PciBarKind::Io, true).ok());
    ASSERT_TRUE(c.add_bar(0, 0x1000, PciBarKind::Memory64, false).ok());
    EXPECT_FALSE(c.add_bar(1, 0x1000, PciBarKind::Memory32, false).ok());  // taken by BAR 0
    EXPECT_FALSE(c.set_bar_address(0, 0x800).ok());                        // misaligned
    ASSERT_TRUE(c.add_bar(2, 0x1000, PciBarKind::Memory32, false).ok());
    EXPECT_FALSE(c.set_bar_address(2, std::uint64_t{1} << 32).ok());  // beyond 32 bits
}

TEST(PciConfigSpace, SnapshotRoundTripAndIdentityCheck) {
    PciConfigSpace a(test_header());
    ASSERT_TRUE(a.add_bar(0, 0x1000, PciBarKind::Memory32, false).ok());
    ASSERT_TRUE(a.set_bar_address(0, 0xc0000000).ok());
    write16(a, pci::kCommand, pci::kCommandMemory | pci::kCommandBusMaster);
    const auto state = a.save_state();

    PciConfigSpace b(test_header());
    ASSERT_TRUE(b.add_bar(0, 0x1000, PciBarKind::Memory32, false).ok());
    ASSERT_TRUE(b.restore_state(state).ok());
    EXPECT_EQ(b.bar_address(0), 0xc0000000U);
    EXPECT_TRUE(b.memory_enabled());
    EXPECT_TRUE(b.bus_master_enabled());

    auto other_header = test_header();
    other_header.device_id = 0x1041;
    PciConfigSpace other(other_header);
    EXPECT_FALSE(other.restore_state(state).ok());
    EXPECT_EQ(other.read16(pci::kDeviceId), 0x1041);
}

}  // namespace
}  // namespace vireo
