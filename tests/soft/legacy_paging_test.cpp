// Paging outside long mode (SDM Vol. 3 §4.3 32-bit paging with 4 MiB PSE pages and 4 KiB
// pages; §4.4 PAE paging with its four PDPTEs), as 32-bit multiboot kernels and the Linux
// 32-bit entry paths use it.
#include <gtest/gtest.h>

#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A 32-bit flat protected-mode vCPU with CR3/CR4 as given, running `code` at 0x8000.
std::unique_ptr<probe::ProbeGuest> prot32(const Bytes& code, std::uint64_t cr3, std::uint64_t cr4) {
    auto g = soft_guest(probe::CpuMode::Real, code, 4 * 1024 * 1024);
    auto& v = soft_vcpu(*g);
    Sregs s = *v.get_sregs();
    Segment flat;
    flat.base = 0;
    flat.limit = 0xffffffff;
    flat.present = 1;
    flat.s = 1;
    flat.db = 1;
    flat.g = 1;
    s.cs = flat;
    s.cs.selector = 0x08;
    s.cs.type = 0xb;
    s.ds = s.es = s.ss = s.fs = s.gs = flat;
    s.ds.selector = s.es.selector = s.ss.selector = 0x10;
    s.ds.type = s.es.type = s.ss.type = s.fs.type = s.gs.type = 3;
    s.cr0 = x86::kCr0Pe | x86::kCr0Pg | x86::kCr0Et;
    s.cr3 = cr3;
    s.cr4 = cr4;
    s.efer = 0;
    EXPECT_TRUE(v.set_sregs(s).ok());
    return g;
}

struct NullIo final : IoHandler {
    void pio_read(std::uint16_t, std::span<std::uint8_t>) override {}
    void pio_write(std::uint16_t, std::span<const std::uint8_t>) override {}
    void mmio_read(std::uint64_t, std::span<std::uint8_t>) override {}
    void mmio_write(std::uint64_t, std::span<const std::uint8_t>) override {}
};

// mov eax, [0x400010]; mov dword [0x400020], 0x1234; hlt
const Bytes kCode = {0xa1, 0x10, 0x00, 0x40, 0x00, 0xc7, 0x05, 0x20,
                     0x00, 0x40, 0x00, 0x34, 0x12, 0x00, 0x00, 0xf4};

TEST(SoftLegacyPaging, ThirtyTwoBitPagingWithPseAndFourKilobytePages) {
    auto g = prot32(kCode, 0x10000, 0x10);  // CR4.PSE
    auto& m = g->memory();
    // PDE 0: 4 MiB identity page (PS); PDE 1 -> PT at 0x11000; PTE 0: 0x400000 -> 0x100000.
    ASSERT_TRUE(m.write_obj(GuestAddress(0x10000), std::uint32_t{0x83}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x10004), std::uint32_t{0x11003}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x11000), std::uint32_t{0x100003}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x100010), std::uint32_t{0xcafef00d}).ok());
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    EXPECT_EQ(soft_vcpu(*g).get_regs()->rax, 0xcafef00dU);
    EXPECT_EQ(*m.read_obj<std::uint32_t>(GuestAddress(0x100020)), 0x1234U);
    EXPECT_EQ(*m.read_obj<std::uint32_t>(GuestAddress(0x11000)) & 0x60, 0x60U) << "A and D set";
}

TEST(SoftLegacyPaging, PaePagingThroughPdptes) {
    auto g = prot32(kCode, 0x12000, 0x20);  // CR4.PAE
    auto& m = g->memory();
    // PDPTE 0 -> PD 0x13000; PDE 0: 2 MiB identity; PDE 2 -> PT 0x14000; PTE 0 -> 0x180000.
    ASSERT_TRUE(m.write_obj(GuestAddress(0x12000), std::uint64_t{0x13001}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x13000), std::uint64_t{0x83}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x13010), std::uint64_t{0x14003}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x14000), std::uint64_t{0x180003}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x180010), std::uint32_t{0x600dcafe}).ok());
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    EXPECT_EQ(soft_vcpu(*g).get_regs()->rax, 0x600dcafeU);
    EXPECT_EQ(*m.read_obj<std::uint32_t>(GuestAddress(0x180020)), 0x1234U);
}

}  // namespace
}  // namespace vireo::soft::test
