#include "arch/x86_64/boot_cpu.h"

#include <cstring>

#include <gtest/gtest.h>

namespace vireo::x86 {
namespace {

GuestMemory ram() {
    const MemoryRegionSpec spec{GuestAddress(0), 2 << 20};
    return std::move(GuestMemory::create(std::span(&spec, 1))).value();
}

TEST(BootCpu, LongModeEntryState) {
    auto mem = ram();
    auto st = setup_boot_cpu(mem, EntryMode::Long64, 0x100200, 0x7000, Sregs{});
    ASSERT_TRUE(st.ok()) << st.error().message();
    EXPECT_EQ(st->regs.rip, 0x100200U);
    EXPECT_EQ(st->regs.rsi, 0x7000U);
    EXPECT_EQ(st->regs.rflags, 0x2U);  // IF clear
    EXPECT_EQ(st->sregs.cs.selector, kBootCsSelector);
    EXPECT_EQ(st->sregs.cs.l, 1);
    EXPECT_EQ(st->sregs.cs.db, 0);
    EXPECT_EQ(st->sregs.ds.selector, kBootDsSelector);
    EXPECT_EQ(st->sregs.ss.selector, kBootDsSelector);
    EXPECT_EQ(st->sregs.efer, kEferLme | kEferLma);
    EXPECT_TRUE(st->sregs.cr0 & kCr0Pg);
    EXPECT_TRUE(st->sregs.cr4 & kCr4Pae);
    EXPECT_EQ(st->sregs.cr3, kPml4Address);
    // The GDT entry the CS cache came from is in memory at the selector's slot.
    EXPECT_EQ(*mem.read_obj<std::uint64_t>(GuestAddress(kBootGdtAddress + kBootCsSelector)),
              0x00af9b000000ffffULL);
}

TEST(BootCpu, IdentityMapCoversFourGiB) {
    auto mem = ram();
    ASSERT_TRUE(setup_boot_cpu(mem, EntryMode::Long64, 0, 0, Sregs{}).ok());
    // Walk the tables for a few addresses: PML4[0] -> PDPT[i] -> PD entry = 2 MiB page.
    for (std::uint64_t va : {0x0ULL, 0x100000ULL, 0x3fe00000ULL, 0xbfe00000ULL, 0xffe00000ULL}) {
        const auto pml4e = *mem.read_obj<std::uint64_t>(GuestAddress(kPml4Address));
        const auto pdpte = *mem.read_obj<std::uint64_t>(
            GuestAddress((pml4e & ~0xfffULL) + ((va >> 30) & 511) * 8));
        const auto pde = *mem.read_obj<std::uint64_t>(
            GuestAddress((pdpte & ~0xfffULL) + ((va >> 21) & 511) * 8));
        EXPECT_EQ(pde & 0x83, 0x83U) << std::hex << va;  // present, writable, 2 MiB
        EXPECT_EQ(pde & ~0x1fffffULL, va & ~0x1fffffULL) << std::hex << va;
    }
}

TEST(BootCpu, PvhEntryIsFlat32BitWithoutPaging) {
    auto mem = ram();
    auto st = setup_boot_cpu(mem, EntryMode::Protected32, 0x1000000, 0x6000, Sregs{});
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->regs.rbx, 0x6000U);
    EXPECT_EQ(st->regs.rip, 0x1000000U);
    EXPECT_FALSE(st->sregs.cr0 & kCr0Pg);
    EXPECT_TRUE(st->sregs.cr0 & kCr0Pe);
    EXPECT_EQ(st->sregs.efer, 0U);
    EXPECT_EQ(st->sregs.cs.db, 1);
    EXPECT_EQ(st->sregs.cs.l, 0);
    EXPECT_EQ(st->sregs.cs.limit, 0xffffffffU);
}

TEST(BootCpu, MsrsEnableMtrrWriteBack) {
    bool found = false;
    for (const auto& m : boot_msrs()) {
        if (m.index == 0x2ff) {
            EXPECT_EQ(m.data, (1ULL << 11) | 6);
            found = true;
        }
    }
    EXPECT_TRUE(found);
}

TEST(BootCpu, LapicLintsAreVirtualWire) {
    LapicState lapic;
    lapic.write(0x350, 0x10000);  // masked, fixed
    lapic.write(0x360, 0x10000);
    setup_lapic_lints(lapic);
    EXPECT_EQ(lapic.read(0x350), 0x10700U);
    EXPECT_EQ(lapic.read(0x360), 0x10400U);
}

TEST(BootCpu, ResetVectorWritesTheResetRegister) {
    auto mem = ram();
    ASSERT_TRUE(install_reset_vector(mem, 0x602, 0x1).ok());
    std::uint8_t code[10] = {};
    ASSERT_TRUE(mem.read(GuestAddress(kResetVectorAddress), code).ok());
    const std::uint8_t want[10] = {0xba, 0x02, 0x06, 0xb0, 0x01, 0xee, 0xfa, 0xf4, 0xeb, 0xfd};
    EXPECT_EQ(0, std::memcmp(code, want, sizeof(want)));
}

}  // namespace
}  // namespace vireo::x86
